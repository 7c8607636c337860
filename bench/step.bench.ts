/** benny benchmark of one full training step at (B, d, m, k) = (1024, 512, 8192, 32), ours only. */
import b from 'benny';

import { TopKSAE } from '../lib/index.js';

const [B, d, m, k] = [1024, 512, 8192, 32];
const sae = TopKSAE.create({ d, m, k, seed: 1 });
const x = { rows: B, cols: d, data: new Float32Array(B * d).map((_, i) => Math.sin(i * 0.37)) };

await b.suite(
  'training step',
  b.add(`step B=${B} d=${d} m=${m} k=${k}`, () => {
    sae.step(x, { lr: 5e-4 });
  }),
  b.add(`encode only`, () => {
    sae.encode(x);
  }),
  b.cycle(),
  b.complete(),
);
