/** benny benchmark of our fused Top-K encode at the shapes (ours only; see compare/run.ts for numpy). */
import b from 'benny';

import { TopKSAE } from '../lib/index.js';

const shapes = [
  [1024, 512, 8192, 32],
  [1024, 768, 12288, 32],
  [4096, 512, 8192, 32],
] as const;

await b.suite(
  'fused Top-K encode',
  ...shapes.map(([B, d, m, k]) => {
    const sae = TopKSAE.create({ d, m, k, seed: 1 });
    const x = { rows: B, cols: d, data: new Float32Array(B * d).map((_, i) => Math.sin(i * 0.37)) };
    return b.add(`B=${B} d=${d} m=${m} k=${k}`, () => {
      sae.encode(x);
    });
  }),
  b.cycle(),
  b.complete(),
);
