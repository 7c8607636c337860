// The native monosemanticity kernel (native/eval/monosemanticity.cc) against its plain references: the former
// TypeScript loops (bit for bit, thread counts 1 and 2) and the O(N^2) definition (awkward shapes, a latent
// named twice in a row, negative activations).
import { expect } from 'chai';

import { monosemanticityScores, monosemanticityScoresAsync, type MsSide } from '../../lib/eval/monosemanticity.js';
import { getThreads, setThreads, type Matrix, type SparseCodes } from '../../lib/index.js';
import { monosemanticityReference, monosemanticityScoresReference } from '../helpers/eval-references.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng, randomCodes } from '../helpers/random.js';

interface Shape {
  rows: number;
  k: number;
  d: number;
  m: number;
  minFires: number;
  /** Share of empty (0) slots. */
  empty: number;
}

/** Random codes (distinct latents per row), with latent 0 active in every row when m > k (the centred pass). */
function codesFor(rng: Rng, s: Shape): SparseCodes {
  const c = randomCodes(rng, s.rows, s.m, s.k, (r) => (r.next() < s.empty ? 0 : r.uniform(0.05, 3)));
  if (s.m > s.k)
    for (let r = 0; r < s.rows; r++) {
      const slot = Array.from(c.indices.subarray(r * s.k, (r + 1) * s.k)).indexOf(0);
      const at = r * s.k + (slot >= 0 ? slot : 0);
      c.indices[at] = 0;
      c.values[at] = 40 + 1e-3 * rng.next(); // nearly constant: the precision case
    }
  return c;
}

function external(rng: Rng, rows: number, d: number): Matrix {
  const data = rng.normals(rows * d);
  for (let r = 0; r < rows; r++) data[r * d] += 3 * (r % 3); // clusters, rows never all zero
  return { rows, cols: d, data };
}

function expectBitwise(got: MsSide, want: MsSide, label: string): void {
  expect(Buffer.from(got.scores.buffer).equals(Buffer.from(want.scores.buffer)), `${label}: scores`).to.equal(true);
  expect(Array.from(got.fires), `${label}: fires`).to.deep.equal(Array.from(want.fires));
  expect(Array.from(got.sorted), `${label}: sorted`).to.deep.equal(Array.from(want.sorted));
  expect([got.mean, got.median, got.latents], `${label}: summary`).to.deep.equal([want.mean, want.median, want.latents]);
}

/** Per-row activations of latent j (the row's slots of j summed). */
function activations(c: SparseCodes, j: number): Float64Array {
  const a = new Float64Array(c.rows);
  for (let r = 0; r < c.rows; r++) for (let s = 0; s < c.k; s++) if (c.indices[r * c.k + s] === j) a[r] += c.values[r * c.k + s];
  return a;
}

describe('monosemanticity kernel', () => {
  const threads = getThreads();
  afterEach(() => setThreads(threads));

  const shapes: Shape[] = [
    { rows: 1, k: 1, d: 1, m: 1, minFires: 1, empty: 0 },
    { rows: 2, k: 3, d: 5, m: 4, minFires: 1, empty: 0.3 },
    { rows: 7, k: 2, d: 3, m: 9, minFires: 2, empty: 0.2 },
    { rows: 60, k: 4, d: 17, m: 65, minFires: 2, empty: 0.1 }, // latents 0..63 and 64: two tasks
    { rows: 257, k: 8, d: 33, m: 130, minFires: 3, empty: 0.25 },
    { rows: 300, k: 5, d: 9, m: 1000, minFires: 1, empty: 0 }, // most latents below minFires or single rows
  ];

  for (const s of shapes)
    it(`equals the former TypeScript loops bit for bit: ${s.rows} rows, k ${s.k}, d ${s.d}, m ${s.m}, minFires ${s.minFires}`, () => {
      const rng = new Rng(1000 + s.rows + s.m);
      const codes = codesFor(rng, s), ext = external(rng, s.rows, s.d);
      const want = monosemanticityScoresReference(codes, ext, s.m, s.minFires);
      expect(want.latents, 'some latents are scored').to.be.greaterThan(0);
      for (const t of [1, 2]) {
        setThreads(t);
        expectBitwise(monosemanticityScores(codes, ext, s.m, s.minFires), want, `${t} thread(s)`);
      }
    });

  it('the async variant gives the same side', async () => {
    const s = shapes[4];
    const rng = new Rng(7);
    const codes = codesFor(rng, s), ext = external(rng, s.rows, s.d);
    expectBitwise(await monosemanticityScoresAsync(codes, ext, s.m, s.minFires), monosemanticityScores(codes, ext, s.m, s.minFires), 'async');
  });

  it('equals the O(N^2) definition on awkward codes: a latent twice in a row, negative activations, a cancelling pair, every row active', () => {
    const rng = new Rng(11);
    const N = 40, k = 3, m = 6, d = 4;
    const codes: SparseCodes = { rows: N, k, indices: new Int32Array(N * k), values: new Float32Array(N * k) };
    for (let r = 0; r < N; r++) {
      codes.indices[r * k] = 0; // latent 0: every row, twice in even rows
      codes.values[r * k] = rng.uniform(0.5, 1.5);
      codes.indices[r * k + 1] = r % 2 === 0 ? 0 : 1 + rng.int(m - 1);
      codes.values[r * k + 1] = rng.uniform(0.1, 1);
      codes.indices[r * k + 2] = 1 + rng.int(m - 1);
      codes.values[r * k + 2] = rng.uniform(-1, 1); // negative activations
    }
    // Row 3: latent 5 twice with values that cancel (silent there).
    codes.indices.set([5, 5], 3 * k + 1);
    codes.values.set([0.75, -0.75], 3 * k + 1);
    const ext = external(rng, N, d);
    const got = monosemanticityScores(codes, ext, m, 1);
    for (let j = 0; j < m; j++) {
      const a = activations(codes, j);
      const fired = a.filter((v) => v !== 0).length;
      expect(got.fires[j], `latent ${j}: rows where it is active`).to.equal(fired);
      expect(got.scores[j], `latent ${j}`).to.be.closeTo(monosemanticityReference(a, ext), 1e-9);
    }
  });

  it('on a tiny and a silent input: one row, one latent; no latent firing leaves every score NaN', () => {
    const ext: Matrix = { rows: 2, cols: 2, data: Float32Array.from([1, 0, 0.6, 0.8]) };
    const one: SparseCodes = { rows: 2, k: 1, indices: Int32Array.from([0, 0]), values: Float32Array.from([1, 3]) };
    expect(monosemanticityScores(one, ext, 1, 1).scores[0]).to.be.closeTo(monosemanticityReference([1, 3], ext), 1e-12);
    const silent: SparseCodes = { rows: 2, k: 1, indices: Int32Array.from([0, 1]), values: new Float32Array(2) };
    const s = monosemanticityScores(silent, ext, 3, 1);
    expect(Array.from(s.scores).every(Number.isNaN)).to.equal(true);
    expect([s.latents, s.mean, s.median, s.sorted.length]).to.deep.equal([0, NaN, NaN, 0]);
  });

  it('refuses bad input with typed errors (sync and async)', async () => {
    const ext: Matrix = { rows: 2, cols: 2, data: Float32Array.from([1, 0, 0, 1]) };
    const codes: SparseCodes = { rows: 2, k: 2, indices: Int32Array.from([0, 1, 1, 7]), values: Float32Array.from([1, 1, 1, 0]) };
    expect(monosemanticityScores(codes, ext, 2, 1).latents, 'an empty slot may name any latent').to.equal(2);
    const outside = { ...codes, values: Float32Array.from([1, 1, 1, 0.5]) };
    expectSaeError(() => monosemanticityScores(outside, ext, 2, 1), 'ERR_RANGE', /latent 7 at row 1, slot 1, outside \[0, m = 2\)/);
    await expectSaeRejection(monosemanticityScoresAsync(outside, ext, 2, 1), 'ERR_RANGE');
    for (const bad of [NaN, Infinity, -Infinity]) {
      const e = { ...ext, data: Float32Array.from([1, 0, 0, bad]) };
      expectSaeError(() => monosemanticityScores(codes, e, 2, 1), 'ERR_NONFINITE', new RegExp(`row 1 of the external embeddings holds ${String(bad)}$`));
    }
    expectSaeError(() => monosemanticityScores(codes, ext, 2, 0), 'ERR_ARG', /minFires/);
    expectSaeError(() => monosemanticityScores(codes, { ...ext, rows: 3 }, 2, 1), 'ERR_SHAPE', /same inputs/);
    expectSaeError(() => monosemanticityScores({ ...codes, values: new Float64Array(4) as unknown as Float32Array }, ext, 2, 1), 'ERR_DTYPE');
    expectSaeError(() => monosemanticityScores({ ...codes, indices: new Int32Array(3) }, ext, 2, 1), 'ERR_SHAPE');
  });
});
