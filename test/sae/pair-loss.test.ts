import { expect } from 'chai';

import { native } from '../../lib/native/load.js';
import { Rng } from '../helpers/random.js';
import { refPairLoss } from '../helpers/reference.js';

type Kind = 'iso' | 'iso-inner' | 'group';

/** Paired codes with awkward rows: shared latents, argmax ties, the same top-1 latent on both sides, a row
 * whose only active latents are the masked ones, zero-valued padding slots. */
function awkwardCodes(rng: Rng, n: number, k: number, m: number) {
  const idx = new Int32Array(2 * n * k), val = new Float32Array(2 * n * k);
  for (let r = 0; r < 2 * n; r++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j: number;
      do j = rng.int(m);
      while (used.has(j));
      used.add(j);
      idx[r * k + s] = j;
      val[r * k + s] = Math.fround(0.1 + rng.next());
    }
  }
  // pair 0: y shares every latent of x; pair 1: argmax tie inside x; pair 2: both top-1 on latent 7;
  // pair 3: x has only one positive value (everything masked); last slot of every y row of pair 4: padding.
  for (let s = 0; s < k; s++) idx[n * k + s] = idx[s];
  val[1 * k] = val[1 * k + 1] = 5;
  idx[2 * k] = 7;
  val[2 * k] = 9;
  idx[(n + 2) * k] = 7;
  val[(n + 2) * k] = 9;
  for (let s = 1; s < k; s++) val[3 * k + s] = 0;
  val[(n + 4) * k + k - 1] = 0;
  return { idx, val };
}

describe('pair code losses (Iso-Energy, iso-inner, group sparsity)', () => {
  const [n, k, m] = [7, 5, 40];
  for (const kind of ['iso', 'iso-inner', 'group'] as Kind[]) {
    it(`${kind}: loss equals the dense-formula reference; gradient equals float64 finite differences`, () => {
      const rng = new Rng(kind.length * 31 + 1);
      const { idx, val } = awkwardCodes(rng, n, k, m);
      const scale = 0.8;
      const r = native().pairCodeLoss(kind, idx, val, k, n, m, scale);
      const codes = (v: ArrayLike<number>) => ({ k, indices: idx, values: v });
      const want = refPairLoss(kind, codes(val), n, m);
      expect(r.loss).to.be.closeTo(want, 1e-9 * Math.max(1, Math.abs(want)));
      expect(Math.abs(r.loss)).to.be.greaterThan(1e-3);
      const v64 = Float64Array.from(val);
      const h = 1e-6;
      let checked = 0;
      for (let p = 0; p < v64.length; p++) {
        if (val[p] === 0) {
          expect(r.dval[p], `inactive slot ${p}`).to.equal(0);
          continue;
        }
        if (kind === 'iso' && Math.floor(p / k) === 1) continue; // the tie: argmax not differentiable there
        const save = v64[p];
        v64[p] = save + h;
        const up = refPairLoss(kind, codes(v64), n, m);
        v64[p] = save - h;
        const down = refPairLoss(kind, codes(v64), n, m);
        v64[p] = save;
        const fd = (scale * (up - down)) / (2 * h);
        expect(r.dval[p], `slot ${p}`).to.be.closeTo(fd, 1e-5 + 1e-4 * Math.abs(fd));
        checked++;
      }
      expect(checked).to.be.greaterThan(2 * n * k - 3 * k);
    });
  }

  it('the masked positions get no gradient (iso) and a row with nothing left has cosine 0', () => {
    const idx = Int32Array.from([3, 4, 3, 5]), val = Float32Array.from([2, 1, 2, 0.5]); // n = 1, k = 2
    const r = native().pairCodeLoss('iso', idx, val, 2, 1, 8, 1);
    // x: {3: 2, 4: 1}, y: {3: 2, 5: 0.5}; latent 3 is both top-1s: u = {4: 1}, v = {5: 0.5}: cos = 0.
    expect(r.loss).to.equal(-0);
    expect(r.dval[0]).to.equal(0);
    expect(r.dval[2]).to.equal(0);
  });

  it('rejects unknown kinds and out-of-range indices', () => {
    expect(() => native().pairCodeLoss('cosine', new Int32Array(2), new Float32Array(2), 1, 1, 4, 1)).to.throw(/kind/);
    expect(() => native().pairCodeLoss('group', Int32Array.from([0, 9]), new Float32Array(2), 1, 1, 4, 1)).to.throw(/outside/);
  });
});
