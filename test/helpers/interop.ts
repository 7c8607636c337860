/** Shared pieces of the interop tests: weights exactly representable in float16/bfloat16, dense codes, comparisons. */
import { expect } from 'chai';

import type { SparseCodes } from '../../lib/index.js';
import { Rng } from './random.js';

/** n values of the form i / 2^shift with |i| <= 127: exact in float16, bfloat16 and float32. */
export function exactValues(rng: Rng, n: number, shift = 6): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.max(-127, Math.min(127, Math.round(rng.normal() * 40))) / 2 ** shift;
  return out;
}

export function dense(c: SparseCodes, m: number): Float64Array {
  const out = new Float64Array(c.rows * m);
  for (let r = 0; r < c.rows; r++) for (let t = 0; t < c.k; t++) if (c.values[r * c.k + t] !== 0) out[r * m + c.indices[r * c.k + t]] = c.values[r * c.k + t];
  return out;
}

/**
 * Element-wise closeness with a tolerance relative to the largest magnitude; with `pattern` (dense codes),
 * zeros (inactive latents) must match exactly.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, { rel = 1e-4, pattern = false } = {}): void {
  expect(got.length, what).to.equal(want.length);
  let scale = 1e-30;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    if (pattern && (want[i] === 0) !== (got[i] === 0)) expect.fail(`${what}[${i}]: active ${got[i]} vs ${want[i]}`);
    if (Math.abs(got[i] - want[i]) > rel * scale) expect.fail(`${what}[${i}]: ${got[i]} vs ${want[i]} (scale ${scale})`);
  }
}

/** Rows scaled to unit norm (our 'l2' normalization, for inputs the tests build). */
export function l2Rows(x: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += x[r * d + i] ** 2;
    for (let i = 0; i < d; i++) out[r * d + i] = x[r * d + i] / (Math.sqrt(s) + 1e-12);
  }
  return out;
}

export function rowNorms(x: Float32Array, n: number, d: number): number[] {
  return Array.from({ length: n }, (_, r) => Math.hypot(...Array.from(x.subarray(r * d, (r + 1) * d))));
}
