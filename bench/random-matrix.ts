/** A deterministic [rows, cols] matrix of uniforms in [-1, 1) (an LCG): the benchmarks' inputs. */
import type { Matrix } from '../lib/index.js';

export function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  let s = seed >>> 0;
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2147483648 - 1;
  }
  return { rows, cols, data };
}
