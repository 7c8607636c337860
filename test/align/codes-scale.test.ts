/**
 * The large-m path against the dense path at m = 16384 per side (planted heavy-tailed codes, N = 60k): the same
 * objective and the same permutation (minFires 2: latents that fire once are exact ties of one another, whose
 * order is arbitrary), and the correlation of every matched pair equal. Also alignLatents on a code store.
 */
import { expect } from 'chai';

import { CoactivationCodes, alignLatents, getThreads, setThreads } from '../../lib/index.js';
import { PlantedCodes } from '../../lib/synth/planted-codes.js';

describe('large-m alignment at m = 16384', function () {
  this.timeout(300_000);
  const m = 16384;
  let store: CoactivationCodes;
  before(() => {
    const gen = new PlantedCodes({ m, k: 16, seed: 7 });
    store = new CoactivationCodes(m, m);
    for (let r = 0; r < 60_000; r += 20_000) {
      const { a, b } = gen.next(20_000);
      store.add(a, b);
    }
  });
  after(() => store.dispose());

  it('gives the dense path\'s objective and permutation', () => {
    const dense = store.align({ path: 'dense', minFires: 2 });
    const large = store.align({ path: 'large', minFires: 2 });
    expect(dense.plan.path).to.equal('dense');
    expect(large.plan.path).to.equal('large');
    expect(large.objective).to.equal(dense.objective);
    expect(Array.from(large.perm!)).to.deep.equal(Array.from(dense.perm!));
    expect(Array.from(large.matchedCorrelation)).to.deep.equal(Array.from(dense.matchedCorrelation));
    // A real problem: thousands of alive latents, pricing rounds beyond the first, planted pairs recovered.
    expect(large.aliveA.reduce((s, x) => s + x, 0)).to.be.greaterThan(15_000);
    expect(large.largeStats.rounds).to.be.greaterThan(1);
    expect(large.largeStats.cofirePairs).to.be.greaterThan(1e6);
  });

  it('re-forms the co-firing rows every round when they are not kept, with the same result', () => {
    const kept = store.align({ path: 'large', minFires: 2 });
    const reformed = store.align({ path: 'large', minFires: 2, keepCofiring: false });
    expect(reformed.largeStats.cached).to.equal(false);
    expect(reformed.largeStats.rowPasses).to.be.greaterThan(reformed.largeStats.rounds);
    expect(reformed.objective).to.equal(kept.objective);
    expect(Array.from(reformed.perm!)).to.deep.equal(Array.from(kept.perm!));
  });

  it('alignLatents takes the store (and picks the dense path under the default budget)', () => {
    const perm = alignLatents(store, { minFires: 2 });
    expect(Array.from(perm)).to.deep.equal(Array.from(store.align({ path: 'large', minFires: 2 }).perm!));
  });
});

describe('large-m alignment is independent of the thread count', function () {
  this.timeout(120_000);
  it('same permutation, objective and sparse graph with 1, 2 and 3 threads', () => {
    const before = getThreads();
    const m = 3000;
    const gen = new PlantedCodes({ m, k: 16, seed: 11 });
    using store = new CoactivationCodes(m, m);
    const { a, b } = gen.next(30_000);
    store.add(a, b);
    try {
      const runs = [1, 2, 3].map((t) => {
        setThreads(t);
        return store.align({ path: 'large' });
      });
      for (const r of runs.slice(1)) {
        expect(r.objective).to.equal(runs[0].objective);
        expect(Array.from(r.perm!)).to.deep.equal(Array.from(runs[0].perm!));
        expect(r.largeStats.edges, 'the same sparse graph').to.equal(runs[0].largeStats.edges);
        expect(r.largeStats.violations).to.equal(runs[0].largeStats.violations);
      }
    } finally {
      setThreads(before);
    }
  });
});
