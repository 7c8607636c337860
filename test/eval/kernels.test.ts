import { expect } from 'chai';

import {
  decoderDistanceHistogram,
  rankingMetrics,
  rankingMetricsAsync,
  retrievalRanks,
  retrievalRanksAsync,
  type DistanceHistogram,
  type GroundTruth,
  type RankingMetrics,
} from '../../lib/eval/kernels.js';
import { getThreads, info, setSimdLevel, setThreads, type Matrix, type SparseCodes } from '../../lib/index.js';
import { native } from '../../lib/native/load.js';
import { decoderDistanceHistogramReference, rankingMetricsReference, retrievalRanksReference } from '../helpers/eval-references.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';

// ---- builders --------------------------------------------------------------------------------------

interface CodeSpec {
  rows: number;
  k: number;
  m: number;
  /** Fraction of empty (value 0) slots. */
  empty?: number;
  /** Small integer values in [-2, 3] (exact dot products) instead of floats. */
  ints?: boolean;
  /** Allow the same latent twice in a row (summed as a sparse vector). */
  dupLatents?: boolean;
  /** Allow negative values. */
  signed?: boolean;
}

function randomCodes(rng: Rng, s: CodeSpec): SparseCodes {
  const c: SparseCodes = { rows: s.rows, k: s.k, indices: new Int32Array(s.rows * s.k), values: new Float32Array(s.rows * s.k) };
  for (let r = 0; r < s.rows; r++) {
    const used = new Set<number>();
    for (let t = 0; t < s.k; t++) {
      let j = rng.int(s.m);
      if (!s.dupLatents && s.k <= s.m) while (used.has(j)) j = rng.int(s.m);
      used.add(j);
      c.indices[r * s.k + t] = j;
      let v = s.ints ? rng.int(4) + (s.signed ? -1 : 0) : s.signed ? rng.normal() : Math.exp(rng.normal() * 0.7);
      if (rng.next() < (s.empty ?? 0)) v = 0;
      c.values[r * s.k + t] = v;
    }
  }
  return c;
}

function codesFrom(rows: [number, number][][], k: number): SparseCodes {
  const c: SparseCodes = { rows: rows.length, k, indices: new Int32Array(rows.length * k), values: new Float32Array(rows.length * k) };
  rows.forEach((row, r) => {
    // unused slots: empty, pointing at latents not used by the row
    let filler = 0;
    for (let t = 0; t < k; t++) {
      if (t < row.length) [c.indices[r * k + t], c.values[r * k + t]] = row[t];
      else {
        while (row.some(([j]) => j === filler)) filler++;
        c.indices[r * k + t] = filler++;
      }
    }
  });
  return c;
}

/** 1 to maxPer random ground-truth items per query (repeats allowed). */
function randomGt(rng: Rng, queries: number, items: number, maxPer: number): GroundTruth {
  const offsets = new Int32Array(queries + 1);
  const list: number[] = [];
  for (let q = 0; q < queries; q++) {
    const n = 1 + rng.int(maxPer);
    for (let t = 0; t < n; t++) list.push(rng.int(items));
    offsets[q + 1] = list.length;
  }
  return { offsets, items: Int32Array.from(list) };
}

function diagonalGt(n: number): GroundTruth {
  return { offsets: Int32Array.from({ length: n + 1 }, (_, i) => i), items: Int32Array.from({ length: n }, (_, i) => i) };
}

function randomMatrix(rng: Rng, rows: number, cols: number, ints: boolean, lo = -2, hi = 2): Matrix {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = ints ? lo + rng.int(hi - lo + 1) : rng.normal();
  return { rows, cols, data };
}

function mask(n: number, f: (i: number) => boolean): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (f(i) ? 1 : 0));
}

const simdLevels = ['scalar', 'avx2', 'avx512'] as const;

// ---- retrieval ---------------------------------------------------------------------------------------

describe('eval kernels: retrievalRanks', () => {
  const threads = getThreads();
  afterEach(() => setThreads(threads));

  function same(q: SparseCodes, it: SparseCodes, gt: GroundTruth, label: string) {
    const got = retrievalRanks(q, it, gt);
    const want = retrievalRanksReference(q, it, gt);
    expect(Array.from(got.ranks), `${label}: ranks`).to.deep.equal(Array.from(want.ranks));
    expect(Array.from(got.ties), `${label}: ties`).to.deep.equal(Array.from(want.ties));
    return got;
  }

  it('equals the dense reference exactly on random and awkward shapes (integer and float codes)', () => {
    const rng = new Rng(11);
    const shapes: [string, CodeSpec, CodeSpec, number][] = [
      ['ints 40x60', { rows: 40, k: 4, m: 16, ints: true, empty: 0.2 }, { rows: 60, k: 3, m: 16, ints: true, empty: 0.2 }, 3],
      ['1 query x 1 item, k = 1', { rows: 1, k: 1, m: 1, ints: true }, { rows: 1, k: 1, m: 1, ints: true }, 1],
      ['1 query x 50 items', { rows: 1, k: 8, m: 30, ints: true }, { rows: 50, k: 2, m: 30, ints: true }, 4],
      ['70 queries x 1 item', { rows: 70, k: 3, m: 10, ints: true }, { rows: 1, k: 5, m: 10, ints: true }, 1],
      ['k = 1 both sides, m = 5 (many ties)', { rows: 33, k: 1, m: 5, ints: true }, { rows: 47, k: 1, m: 5, ints: true }, 2],
      ['duplicate latents within rows, signed', { rows: 25, k: 6, m: 8, ints: true, signed: true, dupLatents: true }, { rows: 30, k: 6, m: 8, ints: true, signed: true, dupLatents: true }, 3],
      ['mostly empty codes', { rows: 30, k: 4, m: 12, ints: true, empty: 0.8 }, { rows: 40, k: 4, m: 12, ints: true, empty: 0.8 }, 2],
      ['floats 120x200 k=8, m=64', { rows: 120, k: 8, m: 64 }, { rows: 200, k: 8, m: 64, empty: 0.1 }, 3],
      ['signed floats, k 5 vs 11', { rows: 60, k: 5, m: 40, signed: true }, { rows: 90, k: 11, m: 40, signed: true }, 5],
    ];
    for (const [label, qs, is, per] of shapes) {
      const q = randomCodes(rng, qs), it = randomCodes(rng, is);
      same(q, it, randomGt(rng, q.rows, it.rows, per), label);
    }
  });

  it('gives identical items identical scores (they tie), also when their rows sit at different offsets', () => {
    const rng = new Rng(12);
    const it = randomCodes(rng, { rows: 80, k: 7, m: 50 });
    // items 5, 17 and 79 are copies of item 40
    for (const r of [5, 17, 79]) {
      it.indices.copyWithin(r * 7, 40 * 7, 41 * 7);
      it.values.copyWithin(r * 7, 40 * 7, 41 * 7);
    }
    const q = randomCodes(rng, { rows: 30, k: 9, m: 50 });
    const gt: GroundTruth = { offsets: Int32Array.from({ length: 31 }, (_, i) => i), items: new Int32Array(30).fill(40) };
    const r = same(q, it, gt, 'duplicates');
    for (let i = 0; i < 30; i++) expect(r.ties[i]).to.be.at.least(4);
  });

  it('known answers: aligned toy, all-zero codes, all items tied, several ground-truth items, negatives', () => {
    // Exactly aligned toy: row r uses latents {2r, 2r+1} on both sides -> every query finds its item at rank 0.
    const n = 9;
    const toy = codesFrom(Array.from({ length: n }, (_, r) => [[2 * r, 1 + r], [2 * r + 1, 2]]), 2);
    let r = retrievalRanks(toy, toy, diagonalGt(n));
    expect(Array.from(r.ranks)).to.deep.equal(new Array(n).fill(0));
    expect(Array.from(r.ties)).to.deep.equal(new Array(n).fill(1));

    // All-zero codes: every score is 0, so every item ties with the ground truth: rank = items - 1.
    const zq = codesFrom([[], [], []], 3), zi = codesFrom([[], [], [], [], []], 2);
    r = retrievalRanks(zq, zi, { offsets: Int32Array.of(0, 1, 2, 3), items: Int32Array.of(0, 4, 2) });
    expect(Array.from(r.ranks)).to.deep.equal([4, 4, 4]);
    expect(Array.from(r.ties)).to.deep.equal([5, 5, 5]);

    // All items tied: scaled copies of one direction.
    const q1 = codesFrom([[[0, 1], [3, 1]]], 2);
    const same4 = codesFrom([[[0, 1], [3, 1]], [[0, 2], [3, 2]], [[3, 0.5], [0, 0.5]], [[0, 4], [3, 4]]], 2);
    r = retrievalRanks(q1, same4, { offsets: Int32Array.of(0, 1), items: Int32Array.of(0) });
    expect([r.ranks[0], r.ties[0]]).to.deep.equal([3, 4]);

    // Several ground-truth items: the best one counts. q = e0; items e0 (1), e1 (0), (e0+e1)/sqrt2 (0.707).
    const q = codesFrom([[[0, 1]]], 1);
    const items = codesFrom([[[0, 1]], [[1, 1]], [[0, 1], [1, 1]]], 2);
    r = retrievalRanks(q, items, { offsets: Int32Array.of(0, 2), items: Int32Array.of(1, 2) });
    expect([r.ranks[0], r.ties[0]]).to.deep.equal([1, 1]);
    r = retrievalRanks(q, items, { offsets: Int32Array.of(0, 1), items: Int32Array.of(1) });
    expect([r.ranks[0], r.ties[0]]).to.deep.equal([2, 1]); // score 0 is beaten by items 0 and 2

    // A negative target: everything at or above -1 counts against the query.
    r = retrievalRanks(q, codesFrom([[[0, -1]], [[1, 1]], [[0, 3]]], 1), { offsets: Int32Array.of(0, 1), items: Int32Array.of(0) });
    expect([r.ranks[0], r.ties[0]]).to.deep.equal([2, 1]);

    // Duplicate latent slots are summed: (l0: 1) + (l0: 1) is the same direction as (l0: 2).
    const dup = codesFrom([[[0, 1], [0, 1], [1, 0]]], 3);
    r = retrievalRanks(dup, codesFrom([[[0, 2]], [[1, 1]]], 1), { offsets: Int32Array.of(0, 1), items: Int32Array.of(0) });
    expect([r.ranks[0], r.ties[0]]).to.deep.equal([0, 1]);
  });

  it('an explicit m larger than the indices changes nothing', () => {
    const rng = new Rng(13);
    const q = randomCodes(rng, { rows: 20, k: 3, m: 10, ints: true }), it = randomCodes(rng, { rows: 30, k: 3, m: 10, ints: true });
    const gt = randomGt(rng, 20, 30, 2);
    const a = retrievalRanks(q, it, gt), b = retrievalRanks(q, it, gt, { m: 1000 });
    expect(Array.from(b.ranks)).to.deep.equal(Array.from(a.ranks));
    expect(Array.from(b.ties)).to.deep.equal(Array.from(a.ties));
  });

  it('does not depend on the thread count', () => {
    const rng = new Rng(14);
    const q = randomCodes(rng, { rows: 300, k: 6, m: 40 }), it = randomCodes(rng, { rows: 5000, k: 6, m: 40 });
    const gt = randomGt(rng, 300, 5000, 3);
    setThreads(1);
    const a = retrievalRanks(q, it, gt);
    setThreads(Math.max(2, threads));
    const b = retrievalRanks(q, it, gt);
    expect(Array.from(b.ranks)).to.deep.equal(Array.from(a.ranks));
    expect(Array.from(b.ties)).to.deep.equal(Array.from(a.ties));
  });

  it('async resolves to the sync result', async () => {
    const rng = new Rng(15);
    const q = randomCodes(rng, { rows: 50, k: 5, m: 30 }), it = randomCodes(rng, { rows: 70, k: 4, m: 30 });
    const gt = randomGt(rng, 50, 70, 3);
    const s = retrievalRanks(q, it, gt);
    const [a, b] = await Promise.all([retrievalRanksAsync(q, it, gt), retrievalRanksAsync(it, q, randomGt(rng, 70, 50, 2))]);
    expect(Array.from(a.ranks)).to.deep.equal(Array.from(s.ranks));
    expect(Array.from(a.ties)).to.deep.equal(Array.from(s.ties));
    expect(b.ranks.length).to.equal(70);
  });

  it('rejects bad inputs with typed errors (sync and async)', async () => {
    const q = codesFrom([[[0, 1]], [[1, 1]]], 1), it = codesFrom([[[0, 1]], [[2, 1]], [[1, 1]]], 1);
    const gt = diagonalGt(2);
    expectSaeError(() => retrievalRanks(q, it, gt, { m: 2 }), 'ERR_RANGE', /items\.indices has latent 2 at row 1/);
    const neg = codesFrom([[[0, 1]], [[1, 1]]], 1);
    neg.indices[1] = -1;
    expectSaeError(() => retrievalRanks(neg, it, gt), 'ERR_RANGE', /queries\.indices has latent -1/);
    const nan = codesFrom([[[0, 1]], [[1, NaN]]], 1);
    expectSaeError(() => retrievalRanks(nan, it, gt), 'ERR_NONFINITE', /queries\.values.*row 1/);
    expectSaeError(() => retrievalRanks(q, it, { offsets: Int32Array.of(0, 1, 1), items: Int32Array.of(0) }), 'ERR_ARG', /query 1 has no ground-truth/);
    expectSaeError(() => retrievalRanks(q, it, { offsets: Int32Array.of(0, 2, 1), items: Int32Array.of(0, 1) }), 'ERR_ARG', /ascending/);
    expectSaeError(() => retrievalRanks(q, it, { offsets: Int32Array.of(0, 1, 2), items: Int32Array.of(0, 3) }), 'ERR_RANGE', /item 3/);
    expectSaeError(() => retrievalRanks(q, it, { offsets: Int32Array.of(0, 1, 3), items: Int32Array.of(0, 1) }), 'ERR_SHAPE');
    expectSaeError(() => retrievalRanks(q, it, { offsets: Int32Array.of(0, 1), items: Int32Array.of(0) }), 'ERR_SHAPE', /offsets/);
    expectSaeError(() => retrievalRanks(q, it, { offsets: [0, 1, 2] as unknown as Int32Array, items: Int32Array.of(0, 1) }), 'ERR_DTYPE');
    expectSaeError(() => retrievalRanks({ ...q, indices: new Float32Array(2) as unknown as Int32Array }, it, gt), 'ERR_DTYPE');
    expectSaeError(() => retrievalRanks({ ...q, rows: 3 }, it, gt), 'ERR_SHAPE');
    expectSaeError(() => retrievalRanks(q, it, gt, { m: 1.5 }), 'ERR_ARG', /m must be/);
    expectSaeError(() => retrievalRanks(q, it, gt, { m: 0 }), 'ERR_ARG', /m must be/);
    expectSaeError(() => retrievalRanksReference(nan, it, gt), 'ERR_NONFINITE');
    await expectSaeRejection(retrievalRanksAsync(q, it, gt, { m: 2 }), 'ERR_RANGE');
    await expectSaeRejection(retrievalRanksAsync(nan, it, gt), 'ERR_NONFINITE');
    await expectSaeRejection(retrievalRanksAsync(q, it, { offsets: Int32Array.of(0, 1, 1), items: Int32Array.of(0) }), 'ERR_ARG');
  });
});

// ---- ranking -----------------------------------------------------------------------------------------

describe('eval kernels: rankingMetrics', () => {
  const threads = getThreads();
  const simd = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
  afterEach(() => {
    setThreads(threads);
    setSimdLevel(simd);
  });

  function expectSameMetrics(got: RankingMetrics, want: RankingMetrics, ks: number[], label: string, queries?: number[]) {
    const qs = queries ?? Array.from(got.ap, (_, q) => q);
    const pick = (a: Float64Array) => qs.map((q) => a[q]);
    expect(pick(got.ap), `${label}: AP`).to.deep.equal(pick(want.ap));
    expect(pick(got.rr), `${label}: RR`).to.deep.equal(pick(want.rr));
    expect(pick(got.medianRank), `${label}: median rank`).to.deep.equal(pick(want.medianRank));
    for (const q of qs) {
      if (Number.isNaN(want.ndcg10[q])) expect(got.ndcg10[q], `${label}: NDCG q${q}`).to.be.NaN;
      else expect(got.ndcg10[q], `${label}: NDCG q${q}`).to.be.closeTo(want.ndcg10[q], 1e-12);
    }
    expect(Object.keys(got.precisionAt).map(Number).sort((a, b) => a - b)).to.deep.equal([...new Set(ks)].sort((a, b) => a - b));
    for (const k of ks) {
      expect(pick(got.precisionAt[k]), `${label}: P@${k}`).to.deep.equal(pick(want.precisionAt[k]));
      expect(pick(got.recallAt[k]), `${label}: R@${k}`).to.deep.equal(pick(want.recallAt[k]));
    }
  }

  it('equals the full-sort reference exactly on integer data (exact dot products, many exact ties)', () => {
    const rng = new Rng(21);
    const ks = [1, 5, 10, 50, 100];
    const cases: [string, number, number, number, (i: number) => boolean][] = [
      ['15 x 80, d = 5', 15, 80, 5, () => rng.next() < 0.1],
      ['1 query x 1 item', 1, 1, 1, () => true],
      ['3 queries x 1 item, not relevant', 3, 1, 4, () => false],
      ['7 x 50, d = 2, every item relevant', 7, 50, 2, () => true],
      ['9 x 120, d = 3, one relevant item', 9, 120, 3, (i) => i === 77],
      ['20 x 300, d = 8, half relevant', 20, 300, 8, () => rng.next() < 0.5],
      ['5 x 40, d = 1 (scores +-1 and 0 only)', 5, 40, 1, (i) => i % 3 === 0],
      ['12 x 1500, d = 2, 30 % relevant (large tie groups)', 12, 1500, 2, () => rng.next() < 0.3],
    ];
    for (const [label, Q, N, d, rel] of cases) {
      const q = randomMatrix(rng, Q, d, true), x = randomMatrix(rng, N, d, true);
      const relevant = mask(N, rel);
      expectSameMetrics(rankingMetrics(q, x, relevant), rankingMetricsReference(q, x, relevant), ks, label);
      expectSameMetrics(rankingMetrics(q, x, relevant, [3, 2, 1000]), rankingMetricsReference(q, x, relevant, [3, 2, 1000]), [3, 2, 1000], label);
    }
  });

  it('matches the reference on float data wherever no relevant item is within 1e-5 of another score', () => {
    const rng = new Rng(22);
    const [Q, N, d] = [40, 200, 24];
    const q = randomMatrix(rng, Q, d, false), x = randomMatrix(rng, N, d, false);
    const relevant = mask(N, () => rng.next() < 0.03);
    relevant[3] = 1;
    const got = rankingMetrics(q, x, relevant), want = rankingMetricsReference(q, x, relevant);
    // Scores as the reference computes them, to find the queries whose order could flip under float32 dots.
    const robust: number[] = [];
    for (let a = 0; a < Q; a++) {
      const s = Array.from({ length: N }, (_, i) => {
        let dot = 0, nq = 0, nx = 0;
        for (let c = 0; c < d; c++) {
          dot += q.data[a * d + c] * x.data[i * d + c];
          nq += q.data[a * d + c] ** 2;
          nx += x.data[i * d + c] ** 2;
        }
        return dot / Math.sqrt(nq * nx);
      });
      let fragile = false;
      for (let i = 0; i < N && !fragile; i++) if (relevant[i]) for (let j = 0; j < N; j++) if (j !== i && Math.abs(s[i] - s[j]) < 1e-5) fragile = true;
      if (!fragile) robust.push(a);
    }
    expect(robust.length).to.be.at.least(Q / 2);
    expectSameMetrics(got, want, [1, 5, 10, 50, 100], 'float data', robust);
  });

  it('equals the reference exactly with many relevant items spread over the whole score range', () => {
    const rng = new Rng(27);
    // Integers in [-20, 20], d = 3: exact dot products, thousands of distinct scores and some exact ties.
    for (const frac of [0.02, 0.3, 0.9]) {
      const q = randomMatrix(rng, 10, 3, true, -20, 20), x = randomMatrix(rng, 1200, 3, true, -20, 20);
      const relevant = mask(1200, () => rng.next() < frac);
      expectSameMetrics(rankingMetrics(q, x, relevant), rankingMetricsReference(q, x, relevant), [1, 5, 10, 50, 100], `${frac * 100} % relevant`);
    }
  });

  it('known answers by hand', () => {
    // q = e1; items: e1 (1), e2 (0), e1+e2 (0.707), -e1 (-1), 2e1 (1, tied with item 0 but later)
    const q: Matrix = { rows: 1, cols: 2, data: Float32Array.of(1, 0) };
    const x: Matrix = { rows: 5, cols: 2, data: Float32Array.of(1, 0, 0, 1, 1, 1, -1, 0, 2, 0) };
    // ranking 0, 4, 2, 1, 3: the relevant items 2 and 4 are at ranks 2 and 1
    const r = rankingMetrics(q, x, Uint8Array.of(0, 0, 1, 0, 1), [1, 2, 5]);
    expect(r.ap[0]).to.be.closeTo((1 / 2 + 2 / 3) / 2, 1e-15);
    expect(r.rr[0]).to.equal(0.5);
    expect(r.ndcg10[0]).to.be.closeTo((1 / Math.log2(3) + 1 / 2) / (1 + 1 / Math.log2(3)), 1e-15);
    expect(r.medianRank[0]).to.equal(1.5);
    expect([r.precisionAt[1][0], r.precisionAt[2][0], r.precisionAt[5][0]]).to.deep.equal([0, 0.5, 0.4]);
    expect([r.recallAt[1][0], r.recallAt[2][0], r.recallAt[5][0]]).to.deep.equal([0, 0.5, 1]);

    // Every item relevant: perfect scores whatever the order.
    const all = rankingMetrics(q, x, new Uint8Array(5).fill(1), [1, 10]);
    expect([all.ap[0], all.rr[0], all.ndcg10[0], all.medianRank[0]]).to.deep.equal([1, 1, 1, 2]);
    expect([all.precisionAt[1][0], all.precisionAt[10][0], all.recallAt[1][0], all.recallAt[10][0]]).to.deep.equal([1, 0.5, 0.2, 1]);

    // No relevant item: NaN everywhere.
    const none = rankingMetrics(q, x, new Uint8Array(5));
    for (const a of [none.ap, none.rr, none.ndcg10, none.medianRank, none.precisionAt[1], none.recallAt[100]]) expect(a[0]).to.be.NaN;

    // An all-zero query scores every item 0: the ranking is the item order.
    const z = rankingMetrics({ rows: 1, cols: 2, data: new Float32Array(2) }, x, Uint8Array.of(0, 0, 0, 1, 0), [1, 4]);
    expect([z.rr[0], z.medianRank[0], z.precisionAt[4][0], z.recallAt[4][0]]).to.deep.equal([0.25, 3, 0.25, 1]);

    // Duplicate item rows tie: the earlier index ranks first.
    const dup: Matrix = { rows: 3, cols: 2, data: Float32Array.of(0.3, 0.7, 0.3, 0.7, 0.3, 0.7) };
    expect(rankingMetrics(q, dup, Uint8Array.of(0, 0, 1)).medianRank[0]).to.equal(2);
    expect(rankingMetrics(q, dup, Uint8Array.of(1, 0, 0)).medianRank[0]).to.equal(0);
  });

  for (const level of simdLevels)
    it(`gives the reference result at SIMD level ${level} with 1 and 2 threads`, function () {
      if (setSimdLevel(level) !== level) {
        console.log(`      (this CPU has no ${level}: that level is skipped)`);
        this.skip();
      }
      const rng = new Rng(23);
      const q = randomMatrix(rng, 130, 19, true), x = randomMatrix(rng, 257, 19, true);
      const relevant = mask(257, () => rng.next() < 0.2);
      const want = rankingMetricsReference(q, x, relevant);
      for (const t of [1, 2]) {
        setThreads(t);
        expectSameMetrics(rankingMetrics(q, x, relevant), want, [1, 5, 10, 50, 100], `${level}, ${t} threads`);
      }
    });

  it('async resolves to the sync result', async () => {
    const rng = new Rng(24);
    const q = randomMatrix(rng, 30, 12, false), x = randomMatrix(rng, 90, 12, false);
    const relevant = mask(90, (i) => i % 4 === 1);
    const s = rankingMetrics(q, x, relevant, [2, 7]);
    const a = await rankingMetricsAsync(q, x, relevant, [2, 7]);
    expectSameMetrics(a, s, [2, 7], 'async');
  });

  it('rejects bad inputs with typed errors (sync and async)', async () => {
    const q = randomMatrix(new Rng(25), 3, 4, false), x = randomMatrix(new Rng(26), 6, 4, false);
    const rel = new Uint8Array(6).fill(1);
    expectSaeError(() => rankingMetrics(q, { rows: 4, cols: 6, data: x.data }, new Uint8Array(4)), 'ERR_SHAPE', /columns/);
    expectSaeError(() => rankingMetrics(q, x, new Uint8Array(5)), 'ERR_SHAPE', /relevant/);
    expectSaeError(() => rankingMetrics(q, x, new Int8Array(6) as unknown as Uint8Array), 'ERR_DTYPE');
    expectSaeError(() => rankingMetrics(q, x, rel, [0]), 'ERR_ARG', /ks/);
    expectSaeError(() => rankingMetrics(q, x, rel, [2.5]), 'ERR_ARG', /ks/);
    expectSaeError(() => rankingMetrics({ ...q, data: new Float64Array(12) as unknown as Float32Array }, x, rel), 'ERR_DTYPE');
    const bad = { ...x, data: x.data.slice() };
    bad.data[9] = Infinity;
    expectSaeError(() => rankingMetrics(q, bad, rel), 'ERR_NONFINITE', /items.*row 2, column 1/);
    expectSaeError(() => rankingMetricsReference(q, bad, rel), 'ERR_NONFINITE');
    await expectSaeRejection(rankingMetricsAsync(q, bad, rel), 'ERR_NONFINITE');
    await expectSaeRejection(rankingMetricsAsync(q, x, new Uint8Array(2)), 'ERR_SHAPE');
  });
});

// ---- decoder-distance histogram ----------------------------------------------------------------------

describe('eval kernels: decoderDistanceHistogram', () => {
  const threads = getThreads();
  const simd = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
  afterEach(() => {
    setThreads(threads);
    setSimdLevel(simd);
  });

  function expectSameHistogram(got: DistanceHistogram, want: DistanceHistogram, label: string) {
    expect(got.corrEdges, label).to.deep.equal(want.corrEdges);
    expect(got.distBins, label).to.equal(want.distBins);
    expect(Array.from(got.counts), `${label}: counts`).to.deep.equal(Array.from(want.counts));
    expect(Array.from(got.pairs), `${label}: pairs`).to.deep.equal(Array.from(want.pairs));
    got.sum.forEach((s, b) => expect(s, `${label}: sum[${b}]`).to.be.closeTo(want.sum[b], 1e-9 * Math.max(1, want.pairs[b])));
  }

  /** corr with values on a grid of quarters (exact in float32, many exactly on the edges), optionally random. */
  function corrMatrix(rng: Rng, mi: number, mt: number, grid: boolean): Matrix {
    const data = new Float32Array(mi * mt);
    for (let i = 0; i < data.length; i++) data[i] = grid ? (rng.int(11) - 3) / 4 : rng.uniform(-1, 1);
    return { rows: mi, cols: mt, data };
  }

  it('equals the reference exactly on integer decoders (pairs on bin edges, dead latents, one corr bin)', () => {
    const rng = new Rng(31);
    const cases: [string, number, number, number, number[] | undefined, number | undefined][] = [
      ['30 x 40, d = 5, quarter edges', 30, 40, 5, [-0.5, 0, 0.25, 0.5, 0.75, 1], 8],
      ['defaults', 25, 33, 4, undefined, undefined],
      ['1 x 1, d = 1', 1, 1, 1, [-1, 1], 3],
      ['one corr bin, 1 dist bin', 17, 9, 3, [0, 1], 1],
      ['97 x 61, d = 7, 200 bins', 97, 61, 7, [-1, -0.25, 0.25, 1], 200],
    ];
    for (const [label, mi, mt, d, corrEdges, distBins] of cases) {
      const a = randomMatrix(rng, mi, d, true), t = randomMatrix(rng, mt, d, true);
      const corr = corrMatrix(rng, mi, mt, true);
      const ai = mask(mi, () => rng.next() < 0.85), at = mask(mt, () => rng.next() < 0.85);
      for (let i = 0; i < mi; i++) if (!ai[i]) corr.data[i * mt] = NaN; // dead latents' NaN correlations are not read
      const opts = { corrEdges, distBins };
      expectSameHistogram(decoderDistanceHistogram(a, t, corr, ai, at, opts), decoderDistanceHistogramReference(a, t, corr, ai, at, opts), label);
    }
  });

  it('matches the reference on float decoders up to pairs within 1e-5 of a distance-bin boundary', () => {
    const rng = new Rng(32);
    const [mi, mt, d, bins] = [60, 70, 16, 50];
    const a = randomMatrix(rng, mi, d, false), t = randomMatrix(rng, mt, d, false);
    const corr = corrMatrix(rng, mi, mt, false);
    const ai = mask(mi, (i) => i % 7 !== 3), at = mask(mt, (j) => j % 5 !== 1);
    const got = decoderDistanceHistogram(a, t, corr, ai, at, { corrEdges: [-1, 0, 0.5, 1], distBins: bins });
    const want = decoderDistanceHistogramReference(a, t, corr, ai, at, { corrEdges: [-1, 0, 0.5, 1], distBins: bins });
    let nearEdge = 0;
    for (let i = 0; i < mi; i++)
      for (let j = 0; j < mt; j++) {
        if (!ai[i] || !at[j]) continue;
        let dot = 0, na = 0, nt = 0;
        for (let c = 0; c < d; c++) {
          dot += a.data[i * d + c] * t.data[j * d + c];
          na += a.data[i * d + c] ** 2;
          nt += t.data[j * d + c] ** 2;
        }
        const u = ((1 - dot / Math.sqrt(na * nt)) / 2) * bins;
        if (Math.abs(u - Math.round(u)) < 5e-6 * bins) nearEdge++; // dist within 1e-5 of a bin boundary
      }
    expect(Array.from(got.pairs)).to.deep.equal(Array.from(want.pairs));
    let l1 = 0;
    got.counts.forEach((c, e) => (l1 += Math.abs(c - want.counts[e])));
    expect(l1).to.be.at.most(2 * nearEdge);
    got.sum.forEach((s, b) => expect(s).to.be.closeTo(want.sum[b], 1e-6 * want.pairs[b]));
  });

  it('known answers by hand', () => {
    // image e1, e2; text e1, -e1, e1+e2 -> distances 0, 2, 1-1/sqrt2 ; 1, 1, 1-1/sqrt2
    const a: Matrix = { rows: 2, cols: 2, data: Float32Array.of(1, 0, 0, 1) };
    const t: Matrix = { rows: 3, cols: 2, data: Float32Array.of(1, 0, -1, 0, 1, 1) };
    const corr: Matrix = { rows: 2, cols: 3, data: new Float32Array(6).fill(0.5) };
    const alive = (n: number) => new Uint8Array(n).fill(1);
    let h = decoderDistanceHistogram(a, t, corr, alive(2), alive(3), { corrEdges: [0, 1], distBins: 4 });
    expect(Array.from(h.counts)).to.deep.equal([3, 0, 2, 1]);
    expect(Array.from(h.pairs)).to.deep.equal([6]);
    expect(h.sum[0]).to.be.closeTo(4 + 2 * (1 - Math.SQRT1_2), 1e-6);

    // Bin edges: c = 0 -> bin 0, 0.5 -> bin 1, 1 -> bin 1 (last bin closed), -0.25 and 1.25 skipped.
    corr.data.set([0, 0.5, 1, -0.25, 1.25, 0.25]);
    h = decoderDistanceHistogram(a, t, corr, alive(2), alive(3), { corrEdges: [0, 0.5, 1], distBins: 2 });
    expect(Array.from(h.pairs)).to.deep.equal([2, 2]);
    // bin 0: (i0,t0) dist 0, (i1,t2) dist 0.29 -> both in the low half; bin 1: (i0,t1) dist 2 (clamped to the top bin), (i0,t2) 0.29
    expect(Array.from(h.counts)).to.deep.equal([2, 0, 1, 1]);

    // Dead latents are skipped; a zero decoder row has cosine 0 (distance 1).
    const z: Matrix = { rows: 2, cols: 2, data: Float32Array.of(0, 0, 0, 1) };
    h = decoderDistanceHistogram(z, t, { rows: 2, cols: 3, data: new Float32Array(6).fill(0.3) }, Uint8Array.of(1, 0), Uint8Array.of(1, 1, 0), { corrEdges: [0, 1], distBins: 4 });
    expect(Array.from(h.counts)).to.deep.equal([0, 0, 2, 0]);
    expect(h.sum[0]).to.equal(2);

    // Nothing alive: all zero.
    h = decoderDistanceHistogram(a, t, corr, new Uint8Array(2), alive(3));
    expect(h.counts.length).to.equal(5 * 200);
    expect(h.counts.every((c) => c === 0) && h.pairs.every((c) => c === 0)).to.equal(true);
  });

  for (const level of simdLevels)
    it(`gives the reference result at SIMD level ${level}, 1 and 2 threads summing bitwise alike`, function () {
      if (setSimdLevel(level) !== level) {
        console.log(`      (this CPU has no ${level}: that level is skipped)`);
        this.skip();
      }
      const rng = new Rng(33);
      const a = randomMatrix(rng, 203, 11, true), t = randomMatrix(rng, 150, 11, true);
      const corr = corrMatrix(rng, 203, 150, true);
      const ai = mask(203, () => rng.next() < 0.9), at = mask(150, () => rng.next() < 0.9);
      const want = decoderDistanceHistogramReference(a, t, corr, ai, at, { distBins: 64 });
      const runs = [1, 2].map((n) => {
        setThreads(n);
        return decoderDistanceHistogram(a, t, corr, ai, at, { distBins: 64 });
      });
      expectSameHistogram(runs[0], want, level);
      expect(Array.from(runs[1].sum)).to.deep.equal(Array.from(runs[0].sum));
      expect(Array.from(runs[1].counts)).to.deep.equal(Array.from(runs[0].counts));
    });

  it('rejects bad inputs with typed errors', () => {
    const rng = new Rng(34);
    const a = randomMatrix(rng, 4, 3, false), t = randomMatrix(rng, 5, 3, false);
    const corr = corrMatrix(rng, 4, 5, false);
    const ai = new Uint8Array(4).fill(1), at = new Uint8Array(5).fill(1);
    expectSaeError(() => decoderDistanceHistogram(a, randomMatrix(rng, 5, 2, false), corr, ai, at), 'ERR_SHAPE', /columns/);
    expectSaeError(() => decoderDistanceHistogram(a, t, { rows: 5, cols: 4, data: corr.data }, ai, at), 'ERR_SHAPE', /corr/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, new Uint8Array(3), at), 'ERR_SHAPE', /aliveImage/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, [1, 1, 1, 1, 1] as unknown as Uint8Array), 'ERR_DTYPE', /aliveText/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, at, { corrEdges: [0, 0.5, 0.5, 1] }), 'ERR_ARG', /ascending/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, at, { corrEdges: [0] }), 'ERR_ARG', /corrEdges/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, at, { corrEdges: [0, NaN] }), 'ERR_ARG', /corrEdges/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, at, { distBins: 0 }), 'ERR_ARG', /distBins/);
    expectSaeError(() => decoderDistanceHistogram(a, t, corr, ai, at, { distBins: 2.5 }), 'ERR_ARG', /distBins/);
    const badDec = { ...t, data: t.data.slice() };
    badDec.data[4] = NaN;
    expectSaeError(() => decoderDistanceHistogram(a, badDec, corr, ai, at), 'ERR_NONFINITE', /textDec.*row 1, column 1/);
    const badCorr = { ...corr, data: corr.data.slice() };
    badCorr.data[2 * 5 + 3] = NaN;
    expectSaeError(() => decoderDistanceHistogram(a, t, badCorr, ai, at), 'ERR_NONFINITE', /row 2, column 3/);
    expectSaeError(() => decoderDistanceHistogramReference(a, t, badCorr, ai, at), 'ERR_NONFINITE');
    at[3] = 0; // the NaN pair is dead now: accepted
    expect(decoderDistanceHistogram(a, t, badCorr, ai, at).pairs.length).to.equal(5);
  });
});

// ---- the raw binding -------------------------------------------------------------------------------

describe('eval kernels: the raw binding never crashes on bad arguments', () => {
  it('answers typed errors for missing, short or mistyped arguments', async () => {
    const n = native();
    const i32 = (k: number) => new Int32Array(k), f32 = (k: number) => new Float32Array(k);
    expectSaeError(() => (n.retrievalRanks as unknown as () => unknown)(), 'ERR_ARG');
    expectSaeError(() => n.retrievalRanks(i32(1), f32(1), 2, 1, i32(1), f32(1), 1, 1, i32(2), i32(1), 0), 'ERR_SHAPE');
    expectSaeError(() => n.retrievalRanks(i32(2), f32(2), 2, 1, i32(1), f32(1), 1, 1, i32(2), i32(2), 0), 'ERR_SHAPE', /gt\.offsets/);
    expectSaeError(() => n.retrievalRanks(i32(1), f32(1), 1, 1, i32(1), f32(1), 1, 1, i32(2), i32(1), -1), 'ERR_ARG');
    await expectSaeRejection(
      (async () => n.retrievalRanksAsync(i32(1), f32(1), 1, 1, i32(1), f32(1), 1, 1, Int32Array.of(0, 1), Int32Array.of(5), 0))(),
      'ERR_RANGE',
    );
    expectSaeError(() => n.rankingMetrics(f32(4), 2, f32(1), 1, 2, new Uint8Array(1), i32(0)), 'ERR_SHAPE', /items\.data/);
    expectSaeError(() => n.rankingMetrics(f32(4), 2, f32(2), 1, 2, new Uint8Array(1), Int32Array.of(0)), 'ERR_ARG');
    expectSaeError(() => n.rankingMetrics(f32(4), 2, f32(2), 1, 2, new Uint8Array(0), i32(0)), 'ERR_SHAPE');
    expectSaeError(() => n.decoderDistanceHistogram(f32(2), 1, f32(2), 1, 2, f32(1), new Uint8Array(1), new Uint8Array(1), Float64Array.of(0), 4), 'ERR_ARG');
    expectSaeError(() => n.decoderDistanceHistogram(f32(2), 1, f32(2), 1, 2, f32(0), new Uint8Array(1), new Uint8Array(1), Float64Array.of(0, 1), 4), 'ERR_SHAPE');
    expectSaeError(() => n.decoderDistanceHistogram(f32(2), 1, f32(2), 1, 2, f32(1), new Uint8Array(1), new Uint8Array(1), Float64Array.of(1, 0), 4), 'ERR_ARG');
  });
});
