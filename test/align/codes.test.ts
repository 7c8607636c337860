import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { CoactivationCodes, CorrelationAccumulator, SaeError, alignLatents, solveAssignment, type AlignCodesOptions, type CodesAlignment, type SparseCodes } from '../../lib/index.js';
import { packageRoot } from '../../lib/native/load.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';

// ---------------------------------------------------------------------------------------------------------------
// Data: paired Top-K codes with continuous values (so that the optimum is unique), a planted partner structure
// (B latent partner[i] tends to fire with A latent i, with a noisy copy of its value), latents without a partner,
// dead latents (never fire), latents that fire exactly once, a constant latent, and padding slots (value 0).
// ---------------------------------------------------------------------------------------------------------------

interface PairSpec {
  n: number;
  mA: number;
  mB: number;
  k: number;
  /** Probability that an A slot with a partner is carried over to B (0: independent random codes). */
  carry?: number;
  /** Fraction of A latents without a partner. */
  partnerless?: number;
  deadA?: number[];
  deadB?: number[];
  onceA?: number[];
  onceB?: number[];
  /** A latent that fires in every row with the same value (not alive: constant). */
  constantA?: number;
  /** Fraction of slots turned into padding (value 0). */
  padding?: number;
}

interface Pair {
  a: SparseCodes;
  b: SparseCodes;
}

function shuffle<T>(rng: Rng, xs: T[]): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function makePair(seed: number, spec: PairSpec): Pair {
  const rng = new Rng(seed);
  const { n, mA, mB, k } = spec;
  const carry = spec.carry ?? 0, padding = spec.padding ?? 0.03;
  const excludedA = new Set([...(spec.deadA ?? []), ...(spec.onceA ?? []), ...(spec.constantA !== undefined ? [spec.constantA] : [])]);
  const excludedB = new Set([...(spec.deadB ?? []), ...(spec.onceB ?? [])]);
  const eligA = Array.from({ length: mA }, (_, i) => i).filter((i) => !excludedA.has(i));
  const eligB = Array.from({ length: mB }, (_, j) => j).filter((j) => !excludedB.has(j));
  const partner = new Int32Array(mA).fill(-1);
  const targets = shuffle(rng, eligB);
  const nopartner = new Set(shuffle(rng, eligA).slice(0, Math.round((spec.partnerless ?? 0) * eligA.length)));
  eligA.forEach((i, t) => {
    if (t < targets.length && !nopartner.has(i)) partner[i] = targets[t];
  });
  const a: SparseCodes = { rows: n, k, indices: new Int32Array(n * k), values: new Float32Array(n * k) };
  const b: SparseCodes = { rows: n, k, indices: new Int32Array(n * k), values: new Float32Array(n * k) };
  const value = () => Math.exp(0.5 * rng.normal());
  for (let r = 0; r < n; r++) {
    const usedA = new Set<number>(), usedB = new Set<number>();
    for (let s = 0; s < k; s++) {
      let i: number;
      if (s === 0 && spec.constantA !== undefined) {
        i = spec.constantA;
        a.values[r * k + s] = 1.5;
      } else {
        do i = eligA[rng.int(eligA.length)];
        while (usedA.has(i));
        a.values[r * k + s] = value();
      }
      usedA.add(i);
      a.indices[r * k + s] = i;
      let j = -1;
      if (partner[i] >= 0 && !usedB.has(partner[i]) && rng.next() < carry) {
        j = partner[i];
        b.values[r * k + s] = a.values[r * k + s] * Math.exp(0.3 * rng.normal());
      } else {
        do j = eligB[rng.int(eligB.length)];
        while (usedB.has(j));
        b.values[r * k + s] = value();
      }
      usedB.add(j);
      b.indices[r * k + s] = j;
    }
    for (let s = 0; s < k; s++) {
      if (rng.next() < padding && !(s === 0 && spec.constantA !== undefined)) a.values[r * k + s] = 0;
      if (rng.next() < padding) b.values[r * k + s] = 0;
    }
  }
  // Latents that fire exactly once: each takes the last slot of its own row (not already used by it).
  const once = (c: SparseCodes, latents: number[] | undefined, first: number) =>
    (latents ?? []).forEach((lat, q) => {
      const r = first + 7 * q;
      c.indices[r * k + k - 1] = lat;
      c.values[r * k + k - 1] = 0.5 + rng.next();
    });
  once(a, spec.onceA, 3);
  once(b, spec.onceB, 5);
  return { a, b };
}

function slice(c: SparseCodes, r0: number, r1: number): SparseCodes {
  return { rows: r1 - r0, k: c.k, indices: c.indices.slice(r0 * c.k, r1 * c.k), values: c.values.slice(r0 * c.k, r1 * c.k) };
}

function storeOf(p: Pair, mA: number, mB: number, opts?: { rowStart?: number; tag?: string }): CoactivationCodes {
  const s = new CoactivationCodes(mA, mB, opts);
  s.add(p.a, p.b);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------------------------

type Arr = ArrayLike<number>;

/** Element-wise identity (Object.is, so -0 vs 0 and NaN are caught too), with the first difference named. */
function expectArrayEqual(got: Arr | undefined, want: Arr | undefined, what: string): void {
  expect(got === undefined, `${what}: presence`).to.equal(want === undefined);
  if (!got || !want) return;
  expect(got.length, `${what}: length`).to.equal(want.length);
  let diffs = 0, first = -1;
  for (let i = 0; i < got.length; i++)
    if (!Object.is(got[i], want[i]) && !(got[i] === 0 && want[i] === 0)) {
      if (first < 0) first = i;
      diffs++;
    }
  expect(first, `${what}: ${diffs} entries differ, the first at [${first}]: got ${got[first]}, want ${want[first]}`).to.equal(-1);
}

/** The two alignments are the same: statistics, matching, correlations and objective (===). */
function expectSameAlignment(got: CodesAlignment, want: CodesAlignment, what: string): void {
  expect(got.n, `${what}: n`).to.equal(want.n);
  for (const key of ['firesA', 'firesB', 'aliveA', 'aliveB', 'meanA', 'meanB', 'stdA', 'stdB'] as const) expectArrayEqual(got[key], want[key], `${what}: ${key}`);
  expectArrayEqual(got.rowToCol, want.rowToCol, `${what}: rowToCol`);
  expectArrayEqual(got.perm, want.perm, `${what}: perm`);
  expectArrayEqual(got.matchedCorrelation, want.matchedCorrelation, `${what}: matchedCorrelation`);
  expect(got.objective, `${what}: objective (got ${got.objective}, want ${want.objective})`).to.equal(want.objective);
}

/** The structural invariants of one alignment: rowToCol a matching of alive latents, perm a bijection, objective the sum. */
function checkAlignment(r: CodesAlignment, mA: number, mB: number, signed: boolean, what: string): void {
  expect(r.rowToCol.length, what).to.equal(mA);
  expect(r.matchedCorrelation.length, what).to.equal(mA);
  const usedB = new Set<number>();
  let pairs = 0, obj = 0;
  let aliveA = 0, aliveB = 0;
  r.aliveA.forEach((x) => (aliveA += x));
  r.aliveB.forEach((x) => (aliveB += x));
  for (let i = 0; i < mA; i++) {
    const j = r.rowToCol[i];
    if (j < 0) {
      expect(r.matchedCorrelation[i], `${what}: unmatched A latent ${i} has correlation 0`).to.equal(0);
      continue;
    }
    expect(j, what).to.be.below(mB);
    expect(usedB.has(j), `${what}: B latent ${j} matched twice`).to.equal(false);
    usedB.add(j);
    expect(r.aliveA[i] && r.aliveB[j], `${what}: matched pair ${i} -> ${j} is alive`).to.equal(1);
    pairs++;
    const c = r.matchedCorrelation[i];
    expect(Math.abs(c), what).to.be.at.most(1 + 1e-6);
    obj += signed ? c : Math.abs(c);
  }
  expect(pairs, `${what}: min(alive A, alive B) pairs`).to.equal(Math.min(aliveA, aliveB));
  expect(Math.abs(obj - r.objective), `${what}: objective is the sum of the matched correlations`).to.be.at.most(1e-9 * Math.max(1, Math.abs(r.objective)));
  if (mA === mB) {
    expect(r.perm, `${what}: perm when mA == mB`).to.be.instanceOf(Int32Array);
    const perm = r.perm!;
    expect(new Set(perm).size, `${what}: perm is a bijection`).to.equal(mA);
    for (let i = 0; i < mA; i++) {
      expect(perm[i], what).to.be.within(0, mB - 1);
      if (r.rowToCol[i] >= 0) expect(perm[i], `${what}: perm extends rowToCol`).to.equal(r.rowToCol[i]);
    }
    // Leftover latents are paired in ascending order.
    const leftA: number[] = [], leftB: number[] = [];
    for (let i = 0; i < mA; i++) if (r.rowToCol[i] < 0) leftA.push(i);
    for (let j = 0; j < mB; j++) if (!usedB.has(j)) leftB.push(j);
    expect(leftA.map((i) => perm[i]), `${what}: leftovers ascending`).to.deep.equal(leftB);
  } else {
    expect(r.perm, `${what}: no perm when mA != mB`).to.equal(undefined);
  }
}

/** The dense and the large-m path on one store: identical results; both valid. Returns the dense one. */
function expectPathsAgree(s: CoactivationCodes, opts: AlignCodesOptions, what: string): { dense: CodesAlignment; large: CodesAlignment } {
  const dense = s.align({ ...opts, path: 'dense' });
  const large = s.align({ ...opts, path: 'large' });
  expect(dense.plan.path, what).to.equal('dense');
  expect(large.plan.path, what).to.equal('large');
  const signed = opts.signed ?? true;
  checkAlignment(dense, s.mA, s.mB, signed, `${what} (dense)`);
  checkAlignment(large, s.mA, s.mB, signed, `${what} (large)`);
  expectSameAlignment(large, dense, `${what}: large vs dense`);
  expect(large.largeStats.rounds, what).to.be.at.least(1);
  return { dense, large };
}

/** CorrelationAccumulator over the same codes (CPU), for the independent references. */
function accumulatorOf(p: Pair, mA: number, mB: number, minFires = 1) {
  using acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
  acc.add(p.a, p.b);
  return acc.result({ minFires });
}

/** The alive submatrix of a dense correlation (C or |C|), with the alive latents' indices. */
function aliveSubmatrix(r: ReturnType<typeof accumulatorOf>, signed: boolean) {
  const mA = r.correlation.rows, mB = r.correlation.cols;
  const ra: number[] = [], rb: number[] = [];
  for (let i = 0; i < mA; i++) if (r.aliveA[i]) ra.push(i);
  for (let j = 0; j < mB; j++) if (r.aliveB[j]) rb.push(j);
  const data = new Float32Array(ra.length * rb.length);
  for (let x = 0; x < ra.length; x++)
    for (let y = 0; y < rb.length; y++) {
      const c = r.correlation.data[ra[x] * mB + rb[y]];
      data[x * rb.length + y] = signed ? c : Math.abs(c);
    }
  return { ra, rb, cost: { rows: ra.length, cols: rb.length, data } };
}

// ---------------------------------------------------------------------------------------------------------------

describe('CoactivationCodes', () => {
  describe('the large-m path equals the dense path (same float32 correlations, same certified optimum)', () => {
    const M = 300, N = 4000, K = 6;
    const cases: Array<{ name: string; spec: PairSpec; minFires?: number }> = [
      { name: `random codes m=${M}, N=${N}, k=${K}`, spec: { n: N, mA: M, mB: M, k: K } },
      { name: 'correlation-like (B a noisy permutation of A, 70% carried)', spec: { n: N, mA: M, mB: M, k: K, carry: 0.7 } },
      { name: 'partnerless latents (30% of A without a partner)', spec: { n: N, mA: M, mB: M, k: K, carry: 0.7, partnerless: 0.3 } },
      {
        name: 'dead, once-firing (minFires 2) and constant latents',
        spec: { n: N, mA: M, mB: M, k: K, carry: 0.7, deadA: [0, 17, 42, 299], deadB: [5, 6, 150], onceA: [3, 100, 200], onceB: [7, 250], constantA: 1 },
        minFires: 2,
      },
      { name: 'rectangular 200 x 260', spec: { n: N, mA: 200, mB: 260, k: K, carry: 0.7, partnerless: 0.1 } },
      { name: 'rectangular 260 x 200', spec: { n: N, mA: 260, mB: 200, k: K, carry: 0.7, partnerless: 0.1 } },
      { name: 'rectangular 260 x 200, independent codes, dead latents', spec: { n: N, mA: 260, mB: 200, k: K, deadA: [1, 2, 3], deadB: [0, 199] } },
    ];
    cases.forEach((c, q) => {
      for (const signed of [true, false]) {
        it(`${c.name}, signed ${signed}`, () => {
          const p = makePair(100 + q, c.spec);
          using s = storeOf(p, c.spec.mA, c.spec.mB);
          const { dense } = expectPathsAgree(s, { signed, minFires: c.minFires }, c.name);
          // Some real alignment must be present for the identity to mean anything.
          let matched = 0;
          dense.rowToCol.forEach((j) => (matched += j >= 0 ? 1 : 0));
          expect(matched).to.be.above(100);
          if (c.spec.carry) expect(dense.objective / matched, 'mean matched correlation of a planted pairing').to.be.above(0.2);
          if (c.spec.mA !== c.spec.mB) {
            expect(dense.perm).to.equal(undefined);
            expect(Array.from(dense.rowToCol).filter((j) => j < 0).length, 'unmatched A latents').to.be.at.least(Math.max(0, c.spec.mA - c.spec.mB));
          }
        });
      }
    });

    // A latent that fires once (value v, n rows) has mean v/n and std v sqrt(n-1)/n whatever v is, so all of them
    // share g = mean/std and their rank-one correlations with any column are equal: the optimum is not unique
    // among them. Both paths must still reach the same objective (===), agree on every other latent, and give
    // the tied latents the same multiset of correlations.
    for (const signed of [true, false])
      it(`once-firing latents alive under minFires 1 (tied among themselves), signed ${signed}`, () => {
        const onceA = [3, 100, 200];
        const spec: PairSpec = { n: N, mA: M, mB: M, k: K, carry: 0.7, deadA: [0, 17], deadB: [5], onceA, onceB: [7, 250] };
        using s = storeOf(makePair(104, spec), M, M);
        const dense = s.align({ signed, minFires: 1, path: 'dense' });
        const large = s.align({ signed, minFires: 1, path: 'large' });
        checkAlignment(dense, M, M, signed, 'dense');
        checkAlignment(large, M, M, signed, 'large');
        for (const i of onceA) expect(dense.aliveA[i]).to.equal(1);
        expect(large.objective, `objective: large ${large.objective}, dense ${dense.objective}`).to.equal(dense.objective);
        for (let i = 0; i < M; i++) {
          if (onceA.includes(i)) continue;
          expect(large.rowToCol[i], `rowToCol[${i}]`).to.equal(dense.rowToCol[i]);
          expect(large.matchedCorrelation[i], `matchedCorrelation[${i}]`).to.equal(dense.matchedCorrelation[i]);
        }
        const tied = (r: CodesAlignment) => onceA.map((i) => r.matchedCorrelation[i]).sort((x, y) => x - y);
        expect(tied(large)).to.deep.equal(tied(dense));
        expect(new Set(onceA.map((i) => large.rowToCol[i]))).to.deep.equal(new Set(onceA.map((i) => dense.rowToCol[i])));
      });

    it('dead and once-firing latents: alive masks follow minFires, constant latents are not alive, perm pairs them in ascending order', () => {
      const spec: PairSpec = { n: 2000, mA: 120, mB: 120, k: 5, carry: 0.7, deadA: [0, 50], deadB: [9], onceA: [3, 60], onceB: [7], constantA: 1 };
      const p = makePair(7, spec);
      using s = storeOf(p, spec.mA, spec.mB);
      const r2 = s.align({ minFires: 2 }), r1 = s.align({ minFires: 1 });
      for (const i of [0, 50, 3, 60, 1]) expect(r2.aliveA[i], `A ${i} (minFires 2)`).to.equal(0);
      for (const j of [9, 7]) expect(r2.aliveB[j], `B ${j} (minFires 2)`).to.equal(0);
      expect(r2.firesA[3]).to.equal(1);
      expect(r2.firesA[0]).to.equal(0);
      expect(r1.aliveA[3], 'a latent that fired once is alive under minFires 1').to.equal(1);
      expect(r1.aliveA[1], 'a constant latent is never alive').to.equal(0);
      expect(r1.firesA[1]).to.equal(2000);
      for (const i of [0, 50, 1]) expect(r2.rowToCol[i]).to.equal(-1);
      checkAlignment(r2, 120, 120, true, 'minFires 2');
      checkAlignment(r1, 120, 120, true, 'minFires 1');
    });

    for (const keepCofiring of [true, false])
      it(`keepCofiring ${keepCofiring}: the same result, ${keepCofiring ? 'one pass over the codes (entries kept)' : 'one pass per pricing round'}`, () => {
        const spec: PairSpec = { n: N, mA: M, mB: M, k: K, carry: 0.7, partnerless: 0.3 };
        const p = makePair(21, spec);
        using s = storeOf(p, M, M);
        for (const signed of [true, false]) {
          const dense = s.align({ signed, path: 'dense' });
          const large = s.align({ signed, path: 'large', keepCofiring });
          expectSameAlignment(large, dense, `keepCofiring ${keepCofiring}, signed ${signed}`);
          expect(large.largeStats.cached, JSON.stringify(large.largeStats)).to.equal(keepCofiring);
          if (keepCofiring) expect(large.largeStats.rowPasses, JSON.stringify(large.largeStats)).to.equal(1);
          else {
            expect(large.largeStats.rowPasses, JSON.stringify(large.largeStats)).to.be.above(1);
            // one pass for the candidates, then (at least) one per pricing round
            expect(large.largeStats.rowPasses, JSON.stringify(large.largeStats)).to.be.at.least(1 + large.largeStats.rounds);
          }
          expect(large.largeStats.cofirePairs).to.be.above(0);
        }
      });

    it('more and fewer candidates give the same optimum', () => {
      const spec: PairSpec = { n: N, mA: M, mB: M, k: K, carry: 0.7, partnerless: 0.3 };
      using s = storeOf(makePair(22, spec), M, M);
      const dense = s.align({ path: 'dense' });
      for (const candidates of [1, 4, 64]) expectSameAlignment(s.align({ path: 'large', candidates }), dense, `candidates ${candidates}`);
    });

    it('addAsync and alignAsync give the results of add and align', async () => {
      const spec: PairSpec = { n: 3000, mA: 150, mB: 170, k: 5, carry: 0.7 };
      const p = makePair(23, spec);
      using s = storeOf(p, spec.mA, spec.mB);
      using t = new CoactivationCodes(spec.mA, spec.mB);
      await t.addAsync(slice(p.a, 0, 1000), slice(p.b, 0, 1000));
      await t.addAsync(slice(p.a, 1000, 3000), slice(p.b, 1000, 3000));
      expect(t.rows).to.equal(3000);
      for (const path of ['dense', 'large'] as const) expectSameAlignment(await t.alignAsync({ path }), s.align({ path }), `async ${path}`);
    });
  });

  describe('the dense path equals CorrelationAccumulator + alignLatents / solveAssignment', () => {
    for (const signed of [true, false])
      it(`square correlation-like case, signed ${signed}: perm equal, objective within 1e-9 relative`, () => {
        const spec: PairSpec = { n: 4000, mA: 300, mB: 300, k: 6, carry: 0.7, partnerless: 0.2, deadA: [4], deadB: [8], onceA: [11] };
        const p = makePair(31, spec);
        using s = storeOf(p, 300, 300);
        const r = s.align({ signed, path: 'dense', minFires: 2 });
        const acc = accumulatorOf(p, 300, 300, 2);
        expectArrayEqual(r.aliveA, acc.aliveA, 'aliveA');
        expectArrayEqual(r.aliveB, acc.aliveB, 'aliveB');
        expectArrayEqual(r.firesA, acc.firesA, 'firesA');
        for (let i = 0; i < 300; i++) {
          expect(Math.abs(r.meanA[i] - acc.meanA[i])).to.be.at.most(1e-12 * Math.max(1, Math.abs(acc.meanA[i])));
          expect(Math.abs(r.stdA[i] - acc.stdA[i])).to.be.at.most(1e-12 * Math.max(1, Math.abs(acc.stdA[i])));
        }
        const perm = alignLatents(acc, { signed, device: 'cpu' });
        expectArrayEqual(r.perm, perm, 'perm vs alignLatents');
        let obj = 0, worst = 0;
        for (let i = 0; i < 300; i++) {
          if (!acc.aliveA[i] || !acc.aliveB[perm[i]]) continue;
          const c = acc.correlation.data[i * 300 + perm[i]];
          obj += signed ? c : Math.abs(c);
          worst = Math.max(worst, Math.abs(c - r.matchedCorrelation[i]));
        }
        expect(worst, 'matched correlations vs the accumulator').to.be.at.most(1e-6);
        expect(Math.abs(r.objective - obj) / Math.abs(obj), `objective ${r.objective} vs ${obj}`).to.be.at.most(1e-9);
      });

    for (const [mA, mB] of [[200, 260], [260, 200]])
      for (const signed of [true, false])
        it(`rectangular ${mA} x ${mB}, signed ${signed}: objective of solveAssignment over the alive submatrix`, () => {
          const spec: PairSpec = { n: 4000, mA, mB, k: 6, carry: 0.7, partnerless: 0.1, deadA: [0, 1], deadB: [2] };
          const p = makePair(40 + mA, spec);
          using s = storeOf(p, mA, mB);
          const r = s.align({ signed, path: 'dense' });
          const acc = accumulatorOf(p, mA, mB);
          const { ra, rb, cost } = aliveSubmatrix(acc, signed);
          const want = solveAssignment(cost, { maximize: true, device: 'cpu' });
          expect(Math.abs(r.objective - want.objective) / Math.abs(want.objective), `objective ${r.objective} vs ${want.objective}`).to.be.at.most(1e-9);
          const rowToCol = new Int32Array(mA).fill(-1);
          want.rowToCol.forEach((c, x) => {
            if (c >= 0) rowToCol[ra[x]] = rb[c];
          });
          expectArrayEqual(r.rowToCol, rowToCol, 'rowToCol vs solveAssignment');
          expect(r.perm).to.equal(undefined);
        });
  });

  it('certification at m = 600: the large path reaches the optimum of the dense solver over the accumulator correlation', () => {
    const m = 600;
    const spec: PairSpec = { n: 6000, mA: m, mB: m, k: 8, carry: 0.6, partnerless: 0.3, deadA: [10, 20], deadB: [30] };
    const p = makePair(60, spec);
    using s = storeOf(p, m, m);
    const acc = accumulatorOf(p, m, m);
    for (const signed of [true, false]) {
      const large = s.align({ signed, path: 'large' });
      expect(large.plan.path).to.equal('large');
      const { cost } = aliveSubmatrix(acc, signed);
      const want = solveAssignment(cost, { maximize: true, algorithm: 'dense', device: 'cpu' });
      expect(Math.abs(large.objective - want.objective), `signed ${signed}: large ${large.objective} vs dense solver ${want.objective}`).to.be.at.most(1e-6);
      // The large path's claimed objective is real: its pairs' accumulator correlations add up to it.
      let obj = 0;
      for (let i = 0; i < m; i++) {
        const j = large.rowToCol[i];
        if (j < 0) continue;
        const c = acc.correlation.data[i * m + j];
        expect(Math.abs(c - large.matchedCorrelation[i])).to.be.at.most(1e-6);
        obj += signed ? c : Math.abs(c);
      }
      expect(Math.abs(obj - large.objective)).to.be.at.most(1e-6);
      checkAlignment(large, m, m, signed, `m=${m} signed ${signed}`);
    }
  });

  describe('shards', () => {
    const M = 200, N = 3000;
    const spec: PairSpec = { n: N, mA: M, mB: M, k: 6, carry: 0.7, partnerless: 0.2, deadA: [3], onceB: [9] };
    const p = makePair(80, spec);
    const cuts = [0, 1111, 2020, N];
    const shardOf = (q: number, tag = 'pair-x') => {
      const s = new CoactivationCodes(M, M, { rowStart: cuts[q], tag });
      // two appends per shard
      const mid = (cuts[q] + cuts[q + 1]) >> 1;
      s.add(slice(p.a, cuts[q], mid), slice(p.b, cuts[q], mid));
      s.add(slice(p.a, mid, cuts[q + 1]), slice(p.b, mid, cuts[q + 1]));
      return s;
    };
    let whole: { dense: CodesAlignment; large: CodesAlignment };
    let wholeInfo: ReturnType<CoactivationCodes['info']>;
    before(() => {
      using s = storeOf(p, M, M, { tag: 'pair-x' });
      wholeInfo = s.info();
      whole = { dense: s.align({ path: 'dense' }), large: s.align({ path: 'large' }) };
      expectSameAlignment(whole.large, whole.dense, 'one pass');
    });
    const expectWhole = (s: CoactivationCodes, what: string) => {
      expect(s.rows, what).to.equal(N);
      expectSameAlignment(s.align({ path: 'dense' }), whole.dense, `${what} (dense)`);
      expectSameAlignment(s.align({ path: 'large' }), whole.large, `${what} (large)`);
    };

    it('three row ranges built in any order and merged in any order equal one store holding all rows', () => {
      const orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]];
      for (const order of orders) {
        const shards = [2, 1, 0].map((q) => ({ q, s: shardOf(q) })).sort((x, y) => order.indexOf(x.q) - order.indexOf(y.q));
        try {
          // into the first shard
          const target = shards[0].s;
          for (const { s } of shards.slice(1)) target.merge(s);
          expectWhole(target, `merged into shard ${order[0]} in order ${order}`);
          expect(target.info().nnzA).to.equal(wholeInfo.nnzA);
          expect(target.info().nnzB).to.equal(wholeInfo.nnzB);
          // into an empty store
          using empty = new CoactivationCodes(M, M, { tag: 'pair-x' });
          for (const { q } of shards) {
            using again = shardOf(q);
            empty.merge(again);
          }
          expectWhole(empty, `merged into an empty store in order ${order}`);
        } finally {
          for (const { s } of shards) s.dispose();
        }
      }
    });

    it('through serialize / deserialize', () => {
      const bytes = [2, 0, 1].map((q) => {
        using s = shardOf(q);
        return s.serialize();
      });
      for (const b of bytes) expect(new TextDecoder().decode(b.subarray(0, 8))).to.equal('CMSAECS1');
      const stores = bytes.map((b) => CoactivationCodes.deserialize(b));
      try {
        expect(stores.map((s) => s.rows)).to.deep.equal([N - cuts[2], cuts[1], cuts[2] - cuts[1]]);
        expect(stores[0].info().tag).to.equal('pair-x');
        stores[1].merge(stores[0]);
        stores[1].merge(stores[2]);
        expectWhole(stores[1], 'deserialized shards');
        // The merged store serializes and reads back whole, too.
        using round = CoactivationCodes.deserialize(stores[1].serialize());
        expectWhole(round, 'the merged store, serialized and read back');
      } finally {
        for (const s of stores) s.dispose();
      }
      // Rows added after reading a shard continue after its last row.
      using first = CoactivationCodes.deserialize(bytes[1]);
      first.add(slice(p.a, cuts[1], N), slice(p.b, cuts[1], N));
      expectWhole(first, 'a shard read back, then the rest of the rows added');
    });

    it('through writeShard / readShard in a temporary directory', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'cmsae-codes-'));
      try {
        const files: string[] = [];
        for (const q of [1, 2, 0]) {
          using s = shardOf(q);
          const f = path.join(dir, `shard-${q}.cmsae`);
          await s.writeShard(f);
          files.push(f);
        }
        const stores = await Promise.all(files.map((f) => CoactivationCodes.readShard(f)));
        try {
          for (const s of stores.slice(1)) stores[0].merge(s);
          expectWhole(stores[0], 'shards written and read back');
        } finally {
          for (const s of stores) s.dispose();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('shards written by two child processes merge into the one-pass result', async function () {
      this.timeout(120_000);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'cmsae-codes-proc-'));
      const lib = pathToFileURL(path.join(packageRoot(), 'lib', 'index.ts')).href;
      // The child reads its rows (raw int32 / float32 arrays) and writes a shard for its row range.
      const script = `
        const { CoactivationCodes } = await import(${JSON.stringify(lib)});
        const { readFile } = await import('node:fs/promises');
        const [input, output, rowStart, rows, k, m, tag] = process.argv.slice(1);
        const buf = await readFile(input);
        const n = Number(rows) * Number(k);
        const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
        const part = (q, T) => new T(ab, q * n * 4, n);
        const a = { rows: Number(rows), k: Number(k), indices: part(0, Int32Array), values: part(1, Float32Array) };
        const b = { rows: Number(rows), k: Number(k), indices: part(2, Int32Array), values: part(3, Float32Array) };
        const s = new CoactivationCodes(Number(m), Number(m), { rowStart: Number(rowStart), tag });
        await s.addAsync(a, b);
        await s.writeShard(output);
        console.log(JSON.stringify(s.info()));
      `;
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
            cwd: packageRoot(),
            env: { ...process.env, CMSAE_THREADS: '2' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '', stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      try {
        const split = 1700;
        const ranges = [[split, N], [0, split]];
        const jobs = ranges.map(async ([r0, r1], q) => {
          const a = slice(p.a, r0, r1), b = slice(p.b, r0, r1);
          const input = path.join(dir, `rows-${q}.bin`), output = path.join(dir, `shard-${q}.cmsae`);
          await writeFile(input, Buffer.concat([a.indices, a.values, b.indices, b.values].map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength))));
          const r = await run([input, output, String(r0), String(r1 - r0), String(spec.k), String(M), 'pair-x']);
          expect(r.code, r.stderr).to.equal(0);
          const info = JSON.parse(r.stdout.trim().split('\n').pop()!);
          expect(info.rows).to.equal(r1 - r0);
          return output;
        });
        const outputs = await Promise.all(jobs);
        using merged = new CoactivationCodes(M, M, { tag: 'pair-x' });
        for (const f of outputs.reverse()) {
          using s = await CoactivationCodes.readShard(f);
          merged.merge(s);
        }
        expectWhole(merged, 'shards from two processes');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('refusals', () => {
    const spec: PairSpec = { n: 400, mA: 40, mB: 50, k: 4, carry: 0.5 };
    const p = makePair(90, spec);

    it('overlapping row ranges (ERR_ARG), different sizes (ERR_SHAPE), different tags (ERR_ARG); the target is unchanged', () => {
      using s0 = storeOf(p, 40, 50, { tag: 't' });
      const before = s0.align();
      using s1 = new CoactivationCodes(40, 50, { rowStart: 399, tag: 't' });
      s1.add(slice(p.a, 0, 10), slice(p.b, 0, 10));
      expectSaeError(() => s0.merge(s1), 'ERR_ARG', /overlap/);
      expectSaeError(() => s1.merge(s0), 'ERR_ARG', /overlap/);
      using same = storeOf(p, 40, 50, { tag: 't' });
      expectSaeError(() => s0.merge(same), 'ERR_ARG', /overlap/);
      expectSaeError(() => s0.merge(s0), 'ERR_ARG');
      using wide = new CoactivationCodes(40, 51, { rowStart: 400, tag: 't' });
      expectSaeError(() => s0.merge(wide), 'ERR_SHAPE');
      using tall = new CoactivationCodes(41, 50, { rowStart: 400, tag: 't' });
      expectSaeError(() => s0.merge(tall), 'ERR_SHAPE');
      using other = new CoactivationCodes(40, 50, { rowStart: 400, tag: 'u' });
      other.add(slice(p.a, 0, 10), slice(p.b, 0, 10));
      expectSaeError(() => s0.merge(other), 'ERR_ARG', /tag/);
      using untagged = new CoactivationCodes(40, 50, { rowStart: 400 });
      expectSaeError(() => s0.merge(untagged), 'ERR_ARG', /tag/);
      expectSaeError(() => s0.merge({} as CoactivationCodes), 'ERR_ARG');
      expect(s0.rows).to.equal(400);
      expectSameAlignment(s0.align(), before, 'after the refused merges');
      // A range that touches but does not overlap is fine.
      using next = new CoactivationCodes(40, 50, { rowStart: 400, tag: 't' });
      next.add(slice(p.a, 0, 10), slice(p.b, 0, 10));
      s0.merge(next);
      expect(s0.rows).to.equal(410);
    });

    it('corrupt, truncated and foreign shards: ERR_FORMAT (readShard names the file)', async () => {
      using s = storeOf(p, 40, 50, { tag: 't' });
      const good = s.serialize();
      using back = CoactivationCodes.deserialize(good);
      expect(back.rows).to.equal(400);
      const flipped = good.slice();
      flipped[good.length >> 1] ^= 0x10;
      expectSaeError(() => CoactivationCodes.deserialize(flipped), 'ERR_FORMAT');
      for (const cut of [good.length - 1, good.length - 8, good.length >> 1, 30, 12, 8, 3, 0])
        expectSaeError(() => CoactivationCodes.deserialize(good.subarray(0, cut)), 'ERR_FORMAT');
      const trailing = new Uint8Array(good.length + 4);
      trailing.set(good);
      expectSaeError(() => CoactivationCodes.deserialize(trailing), 'ERR_FORMAT');
      const badMagic = good.slice();
      badMagic[0] = 'X'.charCodeAt(0);
      expectSaeError(() => CoactivationCodes.deserialize(badMagic), 'ERR_FORMAT', /magic/);
      const badVersion = good.slice();
      badVersion[8] = 99;
      expectSaeError(() => CoactivationCodes.deserialize(badVersion), 'ERR_FORMAT', /version/);
      expectSaeError(() => CoactivationCodes.deserialize(new TextEncoder().encode('{"rows": 3}')), 'ERR_FORMAT');
      expectSaeError(() => CoactivationCodes.deserialize([1, 2, 3] as unknown as Uint8Array), 'ERR_DTYPE');

      const dir = await mkdtemp(path.join(os.tmpdir(), 'cmsae-codes-bad-'));
      try {
        const files = { corrupt: flipped, truncated: good.subarray(0, good.length - 100), foreign: new TextEncoder().encode(JSON.stringify({ mA: 40, mB: 50, rows: [] })) };
        for (const [name, bytes] of Object.entries(files)) {
          const f = path.join(dir, `${name}.json`);
          await writeFile(f, bytes);
          await expectSaeRejection(CoactivationCodes.readShard(f), 'ERR_FORMAT', new RegExp(f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
        }
        const ok = path.join(dir, 'ok.cmsae');
        await s.writeShard(ok);
        expect(Buffer.compare(await readFile(ok), Buffer.from(good))).to.equal(0);
        using read = await CoactivationCodes.readShard(ok);
        expectSameAlignment(read.align(), s.align(), 'shard read back');
        try {
          await CoactivationCodes.readShard(path.join(dir, 'missing.cmsae'));
          expect.fail('reading a missing shard must fail');
        } catch (e) {
          expect(e).to.be.instanceOf(SaeError);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('bad codes (NaN -> ERR_NONFINITE, index >= m -> ERR_RANGE, negative index, repeated latent) leave the store unchanged', async () => {
      using s = storeOf(p, 40, 50);
      const before = s.info();
      const withNaN = slice(p.a, 0, 100);
      withNaN.values[99 * 4 + 2] = NaN; // the last row: nothing before it may be kept
      expectSaeError(() => s.add(withNaN, slice(p.b, 0, 100)), 'ERR_NONFINITE');
      const inf = slice(p.b, 0, 100);
      inf.values[5] = Infinity;
      expectSaeError(() => s.add(slice(p.a, 0, 100), inf), 'ERR_NONFINITE');
      const far = slice(p.b, 0, 100);
      far.indices[99 * 4 + 3] = 50; // mB = 50
      expectSaeError(() => s.add(slice(p.a, 0, 100), far), 'ERR_RANGE');
      const negative = slice(p.a, 0, 100);
      negative.indices[50 * 4] = -1;
      expectSaeError(() => s.add(negative, slice(p.b, 0, 100)), 'ERR_RANGE');
      const twice = slice(p.a, 0, 100);
      twice.indices[60 * 4 + 1] = twice.indices[60 * 4];
      twice.values[60 * 4 + 1] = 1;
      twice.values[60 * 4] = 1;
      expectSaeError(() => s.add(twice, slice(p.b, 0, 100)), 'ERR_ARG');
      expectSaeError(() => s.add(slice(p.a, 0, 100), slice(p.b, 0, 99)), 'ERR_SHAPE');
      expectSaeError(() => s.add({ ...slice(p.a, 0, 10), indices: new Float32Array(40) } as unknown as SparseCodes, slice(p.b, 0, 10)), 'ERR_DTYPE');
      await expectSaeRejection(s.addAsync(withNaN, slice(p.b, 0, 100)), 'ERR_NONFINITE');
      await expectSaeRejection(s.addAsync(slice(p.a, 0, 100), far), 'ERR_RANGE');
      expect(s.info()).to.deep.equal(before);
      expect(s.rows).to.equal(400);
    });

    it('bad options: ERR_ARG', async () => {
      using s = storeOf(p, 40, 50);
      const bad: unknown[] = [
        { path: 'x' },
        { memoryBudget: -1 },
        { memoryBudget: NaN },
        { memoryBudget: Infinity },
        { unknownKey: 1 },
        { signed: 'yes' },
        { minFires: -1 },
        { candidates: 0 },
        { candidates: 1.5 },
        { keepCofiring: 1 },
        'dense',
      ];
      for (const o of bad) {
        expectSaeError(() => s.align(o as AlignCodesOptions), 'ERR_ARG');
        await expectSaeRejection(s.alignAsync(o as AlignCodesOptions), 'ERR_ARG');
      }
      expectSaeError(() => new CoactivationCodes(0, 5), 'ERR_ARG');
      expectSaeError(() => new CoactivationCodes(5, 2.5), 'ERR_ARG');
      expectSaeError(() => new CoactivationCodes(5, 5, { rowStart: -1 }), 'ERR_ARG');
      expectSaeError(() => new CoactivationCodes(5, 5, { tag: 3 as unknown as string }), 'ERR_ARG');
      expectSaeError(() => new CoactivationCodes(5, 5, { rowstart: 1 } as unknown as { rowStart: number }), 'ERR_ARG');
    });
  });

  describe('memory planner', () => {
    const M = 300;
    const spec: PairSpec = { n: 3000, mA: M, mB: M, k: 6, carry: 0.7 };
    const p = makePair(110, spec);

    it("path 'dense' over budget: ERR_NOMEM naming path 'large' and memoryBudget", () => {
      using s = storeOf(p, M, M);
      const e = expectSaeError(() => s.align({ path: 'dense', memoryBudget: 1000 }), 'ERR_NOMEM');
      expect(e.message).to.match(/large/);
      expect(e.message).to.match(/memoryBudget/);
      expectSaeError(() => s.align({ path: 'large', memoryBudget: 1000 }), 'ERR_NOMEM', /memoryBudget/);
      expectSaeError(() => s.align({ memoryBudget: 1000 }), 'ERR_NOMEM', /memoryBudget/);
    });

    it("a budget that fits the large path but not the dense one: 'auto' picks 'large', same result", () => {
      using s = storeOf(p, M, M);
      const ref = s.align({ path: 'large' });
      const pl = ref.plan;
      // plan.dense / plan.large are each path's total (codes, layout and scratch included).
      const fixed = pl.codes + pl.layout + pl.scratch;
      const largeTotal = pl.large, denseTotal = pl.dense;
      expect(largeTotal, JSON.stringify(pl)).to.be.above(fixed);
      expect(denseTotal, JSON.stringify(pl)).to.be.above(largeTotal);
      expect(pl.dense - pl.large, 'the dense submatrix: at least 4 bytes per alive pair').to.be.at.least(4 * 290 * 290);
      const budget = Math.floor((largeTotal + denseTotal) / 2);
      const r = s.align({ memoryBudget: budget });
      expect(r.plan.path, JSON.stringify(r.plan)).to.equal('large');
      expect(r.plan.budget).to.equal(budget);
      expect(r.plan.cache).to.equal(budget - largeTotal);
      // Entries are kept only when all of them fit what is left of the budget.
      if (r.largeStats.cached) expect(r.largeStats.cofirePairs * 8, JSON.stringify({ plan: r.plan, stats: r.largeStats })).to.be.at.most(r.plan.cache);
      expectSameAlignment(r, s.align({ path: 'dense' }), 'auto under a budget vs dense');
      expectSaeError(() => s.align({ path: 'dense', memoryBudget: budget }), 'ERR_NOMEM', /large/);
      // Exactly at the dense total, the dense path fits again.
      expect(s.align({ memoryBudget: denseTotal }).plan.path).to.equal('dense');
      expect(s.align({ memoryBudget: denseTotal - 1 }).plan.path).to.equal('large');
      expectSaeError(() => s.align({ memoryBudget: largeTotal - 1 }), 'ERR_NOMEM');
      // Just above the large total: no room to keep the co-firing entries, the same result.
      const tight = s.align({ memoryBudget: largeTotal + 64, path: 'large' });
      expect(tight.largeStats.cached).to.equal(false);
      expect(tight.largeStats.rowPasses, JSON.stringify(tight.largeStats)).to.be.at.least(1 + tight.largeStats.rounds);
      expectSameAlignment(tight, ref, 'tight budget');
    });

    it("'auto' with the default budget picks 'dense' on a small case", () => {
      using s = storeOf(p, M, M);
      const r = s.align();
      expect(r.plan.path).to.equal('dense');
      expect(r.plan.budget).to.be.above(1e8);
      for (const key of ['codes', 'layout', 'scratch', 'dense', 'large', 'cache'] as const) expect(r.plan[key], key).to.be.a('number').and.at.least(0);
      expect(r.plan.codes).to.equal(s.info().bytes);
      for (const key of ['stats', 'layout', 'solve'] as const) expect(r.seconds[key]).to.be.at.least(0);
    });
  });

  describe('empty stores and all-dead latents', () => {
    const expectTrivial = (r: CodesAlignment, mA: number, mB: number, n: number, what: string) => {
      expect(r.n, what).to.equal(n);
      expect(r.objective, what).to.equal(0);
      expectArrayEqual(r.rowToCol, new Int32Array(mA).fill(-1), `${what}: rowToCol`);
      expectArrayEqual(r.matchedCorrelation, new Float32Array(mA), `${what}: matchedCorrelation`);
      if (mA === mB) expectArrayEqual(r.perm, Int32Array.from({ length: mA }, (_, i) => i), `${what}: perm`);
      else expect(r.perm, what).to.equal(undefined);
    };

    it('an empty store aligns to the ascending pairing with objective 0', async () => {
      for (const [mA, mB] of [[5, 5], [3, 7], [7, 3], [1, 1]]) {
        using s = new CoactivationCodes(mA, mB);
        expect(s.rows).to.equal(0);
        for (const path of ['auto', 'dense', 'large'] as const)
          for (const signed of [true, false]) expectTrivial(s.align({ path, signed }), mA, mB, 0, `empty ${mA}x${mB} ${path} signed ${signed}`);
        expectTrivial(await s.alignAsync(), mA, mB, 0, `empty ${mA}x${mB} async`);
        // An empty store serializes, keeps its rowStart and merges.
        using back = CoactivationCodes.deserialize(s.serialize());
        expect(back.rows).to.equal(0);
        expectTrivial(back.align(), mA, mB, 0, 'empty, read back');
        using t = new CoactivationCodes(mA, mB);
        t.merge(back);
        expectTrivial(t.align(), mA, mB, 0, 'empty merged');
      }
    });

    it('rows whose slots are all padding, constant latents, or minFires above every count: nothing alive, objective 0', () => {
      const rows = 50, k = 3, m = 8;
      const idx = Int32Array.from({ length: rows * k }, (_, q) => q % k);
      using pad = new CoactivationCodes(m, m);
      pad.add({ rows, k, indices: idx, values: new Float32Array(rows * k) }, { rows, k, indices: idx.slice(), values: new Float32Array(rows * k) });
      expect(pad.info().nnzA).to.equal(0);
      for (const path of ['dense', 'large'] as const) expectTrivial(pad.align({ path }), m, m, rows, `all padding, ${path}`);
      using constant = new CoactivationCodes(m, m + 2);
      constant.add({ rows, k, indices: idx, values: new Float32Array(rows * k).fill(2) }, { rows, k, indices: idx.slice(), values: new Float32Array(rows * k).fill(0.5) });
      for (const path of ['dense', 'large'] as const) expectTrivial(constant.align({ path }), m, m + 2, rows, `constant latents, ${path}`);
      using few = storeOf(makePair(120, { n: 100, mA: 20, mB: 20, k: 3, carry: 0.5 }), 20, 20);
      for (const path of ['dense', 'large'] as const) {
        const r = few.align({ path, minFires: 1000 });
        expectTrivial(r, 20, 20, 100, `minFires 1000, ${path}`);
        expect(Array.from(r.aliveA).every((x) => x === 0)).to.equal(true);
      }
      // Alive on one side only: no pairs either.
      const oneSide = new CoactivationCodes(m, m);
      try {
        const vals = Float32Array.from({ length: rows * k }, (_, q) => 1 + (q % 7) / 10);
        oneSide.add({ rows, k, indices: idx, values: vals }, { rows, k, indices: idx.slice(), values: new Float32Array(rows * k) });
        for (const path of ['dense', 'large'] as const) expectTrivial(oneSide.align({ path }), m, m, rows, `alive on A only, ${path}`);
      } finally {
        oneSide.dispose();
      }
    });
  });
});
