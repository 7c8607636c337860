/** A tiny aligned pair built in the test process (two random SAEs aligned on random paired data). */
import { AlignedPair, CorrelationAccumulator, Normalizer, TopKSAE } from '../../lib/index.js';
import type { Matrix } from '../../lib/types.js';
import { Rng } from '../helpers/random.js';

export function randomMatrix(rng: Rng, rows: number, cols: number): Matrix {
  return { rows, cols, data: rng.normals(rows * cols) };
}

export function tinyPair(opts: { d?: number; m?: number; k?: number; seed?: number } = {}): AlignedPair {
  const { d = 12, m = 24, k = 4, seed = 1 } = opts;
  const rng = new Rng(seed);
  using image = TopKSAE.create({ d, m, k, seed });
  using text = TopKSAE.create({ d, m, k, seed: seed + 1 });
  const x = randomMatrix(rng, 400, d);
  const y: Matrix = { rows: x.rows, cols: d, data: x.data.map((v) => v + 0.3 * rng.normal()) };
  const norm = new Normalizer('l2');
  norm.apply('image', x.data, x.rows, d);
  norm.apply('text', y.data, y.rows, d);
  using acc = new CorrelationAccumulator(m, m);
  acc.add(image.encode(x), text.encode(y));
  return AlignedPair.fromCorrelation(image, text, acc.result(), { normalizer: norm });
}
