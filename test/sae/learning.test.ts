import { expect } from 'chai';

import { TopKSAE, type Matrix } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';

function sparseDictionaryDataFrom(D: Float32Array, rng: Rng, d: number, atoms: number, active: number, rows: number): Float32Array {
  const X = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const chosen = new Set<number>();
    while (chosen.size < active) chosen.add(rng.int(atoms));
    for (const a of chosen) {
      const mag = 0.5 - Math.log(Math.max(rng.next(), 1e-12));
      for (let i = 0; i < d; i++) X[r * d + i] += mag * D[a * d + i];
    }
    for (let i = 0; i < d; i++) X[r * d + i] += 0.01 * rng.normal();
  }
  return X;
}

/** x = sum of `active` random atoms of a unit-norm dictionary with Exp(1)+0.5 magnitudes, plus small noise. */
function sparseDictionaryData(rng: Rng, d: number, atoms: number, active: number, rows: number) {
  const D = new Float32Array(atoms * d);
  for (let a = 0; a < atoms; a++) {
    let n = 0;
    for (let i = 0; i < d; i++) n += (D[a * d + i] = rng.normal()) ** 2;
    for (let i = 0; i < d; i++) D[a * d + i] /= Math.sqrt(n);
  }
  return { D, X: sparseDictionaryDataFrom(D, rng, d, atoms, active, rows) };
}

describe('learning', () => {
  it('recovers a planted sparse dictionary (FVU < 0.1, most atoms at cosine > 0.95)', () => {
    const d = 32, atoms = 48, active = 3, N = 8192, B = 256;
    const rng = new Rng(2024);
    const { D, X } = sparseDictionaryData(rng, d, atoms, active, N);
    const sae = TopKSAE.create({ d, m: 96, k: active, seed: 1, bDecInit: 'mean', device: 'cpu' });
    const batch: Matrix = { rows: B, cols: d, data: new Float32Array(B * d) };
    let last = Infinity;
    for (let epoch = 0; epoch < 40; epoch++) {
      const order = Array.from({ length: N / B }, (_, i) => i).sort(() => rng.next() - 0.5);
      for (const b of order) {
        batch.data.set(X.subarray(b * B * d, (b + 1) * B * d));
        last = sae.step(batch, { lr: 4e-3 }).fvu;
      }
    }
    // FVU of the final model on fresh samples from the same dictionary.
    const evalX: Matrix = { rows: 2048, cols: d, data: sparseDictionaryDataFrom(D, new Rng(7), d, atoms, active, 2048) };
    const recon = sae.decode(sae.encode(evalX));
    let sse = 0, tv = 0;
    for (let i = 0; i < d; i++) {
      let mean = 0;
      for (let r = 0; r < evalX.rows; r++) mean += evalX.data[r * d + i];
      mean /= evalX.rows;
      for (let r = 0; r < evalX.rows; r++) {
        sse += (recon.data[r * d + i] - evalX.data[r * d + i]) ** 2;
        tv += (evalX.data[r * d + i] - mean) ** 2;
      }
    }
    const fvu = sse / tv;
    const W = sae.getWeights().W_dec.data;
    let recovered = 0;
    for (let a = 0; a < atoms; a++) {
      let best = -1;
      for (let j = 0; j < 96; j++) {
        let c = 0;
        for (let i = 0; i < d; i++) c += D[a * d + i] * W[j * d + i];
        best = Math.max(best, c);
      }
      if (best > 0.95) recovered++;
    }
    sae.dispose();
    console.log(`      final train FVU ${last.toFixed(4)}, eval FVU ${fvu.toFixed(4)}, atoms recovered ${recovered}/${atoms}`);
    expect(fvu).to.be.below(0.1);
    expect(recovered).to.be.at.least(Math.ceil(0.8 * atoms));
  });
});
