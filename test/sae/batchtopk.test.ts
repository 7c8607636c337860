import { expect } from 'chai';

import { TopKSAE } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { preActivations, randomParams, refBatchEncode, roundToF32 } from '../helpers/reference.js';
import { saeFromRef } from '../helpers/sae.js';

describe('BatchTopK', () => {
  it('keeps exactly the B*k largest activations of the batch (exact even when a row needs more than its capacity)', () => {
    const d = 12, m = 40, k = 3, B = 16;
    const rng = new Rng(8);
    const p = roundToF32(randomParams(d, m, () => rng.next()));
    const x = rng.normals(B * d);
    for (let i = 0; i < d; i++) x[5 * d + i] *= 6; // row 5 dominates: it takes far more than 4k latents
    for (const capacity of [0, 4, 40]) {
      const sae = saeFromRef(p, { k, activation: 'batchtopk', batchCapacity: capacity });
      sae.forwardBackward({ rows: B, cols: d, data: x });
      const codes = sae.lastCodes();
      sae.dispose();
      const { sets } = refBatchEncode(p, x, B, k);
      let total = 0;
      for (let b = 0; b < B; b++) {
        const got = new Map<number, number>();
        for (let s = 0; s < codes.k; s++) if (codes.values[b * codes.k + s] > 0) got.set(codes.indices[b * codes.k + s], codes.values[b * codes.k + s]);
        expect([...got.keys()].sort((a, c) => a - c), `row ${b} capacity ${capacity}`).to.deep.equal([...sets[b].keys()].sort((a, c) => a - c));
        for (const [j, v] of got) expect(v).to.be.closeTo(sets[b].get(j)!, 1e-5 * Math.max(1, v));
        total += got.size;
      }
      expect(total).to.equal(B * k);
      expect(sets[5].size).to.be.greaterThan(4 * k);
    }
  });

  it('learns a threshold from training batches and uses it at inference, one row independently of the batch', () => {
    const d = 16, m = 64, k = 4, B = 64;
    const rng = new Rng(12);
    const sae = TopKSAE.create({ d, m, k, activation: 'batchtopk', seed: 2, thresholdMomentum: 0.5, device: 'cpu' });
    expect(sae.status().threshold).to.equal(null);
    const batches = Array.from({ length: 5 }, () => ({ rows: B, cols: d, data: rng.normals(B * d) }));
    const mins: number[] = [];
    for (const xb of batches) {
      sae.forwardBackward(xb);
      const c = sae.lastCodes();
      mins.push(Math.min(...Array.from(c.values).filter((v) => v > 0)));
      sae.applyUpdate(0, 1); // lr 0: weights stay, so the kept minimum is reproducible
    }
    // theta <- 0.5 theta + 0.5 min_kept, starting from the first batch's minimum.
    let theta = mins[0];
    for (const v of mins.slice(1)) theta = 0.5 * theta + 0.5 * v;
    const th = sae.status().threshold!;
    expect(th).to.be.closeTo(theta, 1e-5 * theta);
    // Inference: a row's code is the latents whose pre-activation exceeds theta (at most the capacity).
    const w = sae.getWeights();
    const p = { d, m, W_enc: Float64Array.from(w.W_enc.data), b_enc: Float64Array.from(w.b_enc), W_dec: Float64Array.from(w.W_dec.data), b_dec: Float64Array.from(w.b_dec) };
    const xs = { rows: 8, cols: d, data: rng.normals(8 * d) };
    const all = sae.encode(xs);
    expect(all.k).to.equal(4 * k);
    const pre = preActivations(p, xs.data, 8);
    for (let b = 0; b < 8; b++) {
      const want = Array.from({ length: m }, (_, j) => j).filter((j) => pre[b * m + j] > th).sort((a, c) => pre[b * m + c] - pre[b * m + a]).slice(0, 4 * k);
      const got = Array.from(all.indices.subarray(b * all.k, (b + 1) * all.k)).filter((_, s) => all.values[b * all.k + s] > 0);
      expect(got).to.deep.equal(want);
      const single = sae.encode({ rows: 1, cols: d, data: xs.data.subarray(b * d, (b + 1) * d) });
      expect(Array.from(single.indices)).to.deep.equal(Array.from(all.indices.subarray(b * all.k, (b + 1) * all.k)));
    }
    sae.dispose();
  });

  it('trains: loss goes down and the mean L0 equals k', () => {
    const d = 16, m = 64, k = 4, B = 128;
    const rng = new Rng(1);
    const sae = TopKSAE.create({ d, m, k, activation: 'batchtopk', seed: 4, device: 'cpu' });
    const x = { rows: B, cols: d, data: rng.normals(B * d) };
    const first = sae.step(x, { lr: 1e-2 });
    let last = first;
    for (let s = 0; s < 60; s++) last = sae.step(x, { lr: 1e-2 });
    expect(last.loss).to.be.below(first.loss * 0.8);
    expect(last.l0).to.equal(k);
    sae.dispose();
  });
});
