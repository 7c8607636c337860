import { expect } from 'chai';

import { TopKSAE } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';

describe('latent statistics and b_dec initialization', () => {
  it('tracks fire counts and samples since each latent last fired', () => {
    const d = 8, m = 40, k = 3, B = 32;
    const rng = new Rng(17);
    const sae = TopKSAE.create({ d, m, k, seed: 3, deadWindow: 64, device: 'cpu' });
    const fired = new Float64Array(m);
    const lastBatch: number[] = Array(m).fill(-1);
    for (let step = 0; step < 4; step++) {
      const x = { rows: B, cols: d, data: rng.normals(B * d) };
      sae.step(x, { lr: 1e-2 });
      const c = sae.lastCodes();
      c.indices.forEach((j, i) => {
        if (c.values[i] > 0) {
          fired[j]++;
          lastBatch[j] = step;
        }
      });
    }
    const s = sae.latentStats();
    expect(s.samplesSeen).to.equal(4 * B);
    expect(Array.from(s.fireCounts)).to.deep.equal(Array.from(fired));
    for (let j = 0; j < m; j++) {
      // A latent that fired in batch t has been idle for the (3 - t) later batches; never fired: 4 batches.
      const want = lastBatch[j] < 0 ? 4 * B : (3 - lastBatch[j]) * B;
      expect(s.samplesSinceFired[j], `latent ${j}`).to.equal(want);
    }
    const dead = Array.from(s.samplesSinceFired).filter((v) => v >= 64).length / m;
    expect(sae.status().deadFraction).to.be.closeTo(dead, 1e-12);
    sae.dispose();
  });

  it("bDecInit 'mean' sets b_dec to the mean of the first training batch", () => {
    const d = 6, B = 20;
    const rng = new Rng(2);
    const sae = TopKSAE.create({ d, m: 12, k: 2, bDecInit: 'mean', device: 'cpu' });
    expect(Array.from(sae.getWeights().b_dec)).to.deep.equal(Array(d).fill(0));
    const x = { rows: B, cols: d, data: rng.normals(B * d, 3) };
    sae.step(x, { lr: 0 });
    const b = sae.getWeights().b_dec;
    for (let c = 0; c < d; c++) {
      let mean = 0;
      for (let r = 0; r < B; r++) mean += x.data[r * d + c];
      expect(b[c]).to.be.closeTo(mean / B, 1e-6);
    }
    sae.dispose();
  });
});
