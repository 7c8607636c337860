/** The test suite's own comparison helper must be able to fail: NaN, Inf and length mismatches never pass. */
import { expect } from 'chai';

import { worstRatio } from '../helpers/sae.js';

describe('test helpers: worstRatio', () => {
  it('measures the worst |a - b| / (atol + rtol |b|)', () => {
    expect(worstRatio([1, 2, 3], [1, 2, 3], 1e-6, 0).ratio).to.equal(0);
    const w = worstRatio([1, 2.5, 3], [1, 2, 3], 0.25, 0);
    expect(w).to.deep.equal({ ratio: 2, at: 1 });
  });

  it('fails on any non-finite value, wherever it stands, and on a length mismatch', () => {
    expect(worstRatio([NaN, 0, 1], [0, 0, 1], 1, 1).ratio).to.equal(Infinity); // was 0: the NaN was lost
    expect(worstRatio([NaN, 1e15], [0, 0], 1, 1)).to.deep.equal({ ratio: Infinity, at: 0 }); // the 1e15 behind it too
    expect(worstRatio([0, 0, 1], [0, Infinity, 1], 1, 1)).to.deep.equal({ ratio: Infinity, at: 1 });
    expect(worstRatio([NaN], [NaN], 1, 1).ratio).to.equal(Infinity);
    expect(worstRatio([1, 2], [1, 2, 3], 1, 1).ratio).to.equal(Infinity);
  });
});
