import { expect } from 'chai';

import { CorrelationAccumulator, alignLatents, info, setSimdLevel, solveAssignment, solveAssignmentAsync, type Assignment, type CostMatrix, type SparseCodes } from '../../lib/index.js';
import { native } from '../../lib/native/load.js';
import { expectSaeError } from '../helpers/expect-error.js';
import { requireScipy, scipyLsa, type LsaJob } from '../helpers/python.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

interface Case extends LsaJob {
  name: string;
}

/** Duals must certify optimality: dual feasible everywhere (forbidden pairs excepted) and no duality gap. */
function certify(c: CostMatrix, maximize: boolean, algorithm: 'dense' | 'sparse' | 'auto' = 'auto', candidates?: number): Assignment {
  const r = solveAssignment(c, { maximize, returnDuals: true, algorithm, candidates, device: 'cpu' });
  const cert = native().certifyAssignment(c.data, c.rows, c.cols, maximize, r.rowToCol, r.colToRow, r.duals!.u, r.duals!.v);
  let scale = 1;
  for (const x of c.data) if (Number.isFinite(x)) scale = Math.max(scale, Math.abs(x));
  expect(cert.maxViolation, 'dual feasibility').to.be.at.most(1e-9 * scale * Math.max(c.rows, c.cols));
  expect(cert.gap, 'primal = dual').to.be.at.most(1e-9 * scale * Math.max(c.rows, c.cols));
  // A valid (partial) matching of min(rows, cols) pairs, consistent both ways.
  let pairs = 0;
  r.rowToCol.forEach((j, i) => {
    if (j >= 0) {
      pairs++;
      expect(r.colToRow[j]).to.equal(i);
      expect(Number.isFinite(c.data[i * c.cols + j])).to.equal(true);
    }
  });
  expect(pairs).to.equal(Math.min(c.rows, c.cols));
  return r;
}

function matrix(rows: number, cols: number, f: (i: number, j: number) => number, f32 = false): CostMatrix {
  const data = f32 ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = f(i, j);
  return { rows, cols, data };
}

/** Correlation-like: a noisy planted permutation plus small noise; `partnerless` rows have no real partner. */
function corrLike(rng: Rng, n: number, m: number, partnerless: number): CostMatrix {
  const perm = Array.from({ length: m }, (_, j) => j).sort(() => rng.next() - 0.5);
  return matrix(n, m, (i, j) => {
    let x = 0.02 * rng.normal();
    if (j === perm[i % m] && rng.next() >= partnerless) x += 0.4 + 0.5 * rng.next();
    return x;
  }, true);
}

function cases(): Case[] {
  const rng = new Rng(42);
  const out: Case[] = [];
  const add = (name: string, c: CostMatrix, maximize: boolean) => out.push({ name, ...c, maximize });
  for (const n of [1, 2, 5, 17, 64, 200]) {
    add(`uniform f64 ${n}x${n} min`, matrix(n, n, () => rng.next()), false);
    add(`uniform f32 ${n}x${n} max`, matrix(n, n, () => rng.next(), true), true);
    add(`integers with ties ${n}x${n} min`, matrix(n, n, () => rng.int(4)), false);
  }
  add('constant 30x30', matrix(30, 30, () => 3.5), false);
  for (const [r, c] of [[5, 9], [9, 5], [40, 100], [100, 40], [1, 7], [7, 1]]) {
    add(`rectangular ${r}x${c} min`, matrix(r, c, () => rng.next()), false);
    add(`rectangular ${r}x${c} max`, matrix(r, c, () => rng.normal(), true), true);
  }
  add('forbidden +inf 50x50 min', matrix(50, 50, (i, j) => (rng.next() < 0.3 && i !== j ? Infinity : rng.next())), false);
  add('forbidden -inf 50x70 max', matrix(50, 70, (i, j) => (rng.next() < 0.5 && i !== j ? -Infinity : rng.next()), true), true);
  add('forbidden -inf 70x50 max', matrix(70, 50, (i, j) => (rng.next() < 0.5 && i !== j ? -Infinity : rng.next()), true), true);
  add('correlation-like 300x300', corrLike(rng, 300, 300, 0), true);
  add('correlation-like 30% partnerless 300x300', corrLike(rng, 300, 300, 0.3), true);
  add('correlation-like rectangular 250x300', corrLike(rng, 250, 300, 0.3), true);
  add('negative and large values 60x60', matrix(60, 60, () => (rng.next() - 0.5) * 1e6), false);
  return out;
}

describe('solveAssignment (exact, certified)', () => {
  it('matches scipy.optimize.linear_sum_assignment on every kind of matrix, with certifying duals', function () {
    requireScipy(this);
    const { dir, cleanup } = tempDir();
    try {
      const cs = cases();
      const answers = scipyLsa(dir, cs);
      cs.forEach((c, i) => {
        const a = answers[i];
        if ('error' in a) throw new Error(`scipy failed on ${c.name}: ${a.error}`);
        // Both exact paths; the sparse one with few candidates so that pricing rounds really happen.
        for (const [algorithm, k] of [['dense', undefined], ['sparse', 2], ['sparse', 16]] as const) {
          const r = certify(c, c.maximize, algorithm, k);
          expect(r.objective, `${c.name} (${algorithm}${k ? `, k=${k}` : ''})`).to.be.closeTo(a.objective, 1e-9 * Math.max(1, Math.abs(a.objective)));
        }
      });
    } finally {
      cleanup();
    }
  });

  it('equals a brute-force oracle on random matrices up to 8 x 8 (fuzz)', () => {
    const rng = new Rng(7);
    for (let t = 0; t < 300; t++) {
      const rows = 1 + rng.int(7), cols = 1 + rng.int(7);
      const maximize = rng.next() < 0.5;
      const ints = rng.next() < 0.5;
      const c = matrix(rows, cols, () => (ints ? rng.int(5) : rng.normal()), rng.next() < 0.5);
      const want = bruteForce(c, maximize);
      expect(certify(c, maximize, 'dense').objective, `case ${t}`).to.be.closeTo(want, 1e-9);
      expect(certify(c, maximize, 'sparse', 1).objective, `case ${t} sparse`).to.be.closeTo(want, 1e-9);
    }
  });

  it('the certified sparse path equals the dense solver on larger structured matrices (square and rectangular)', () => {
    const rng = new Rng(99);
    const cases: [string, CostMatrix][] = [
      ['uniform 900x900', matrix(900, 900, () => rng.next(), true)],
      ['correlation-like 1000x1000', corrLike(rng, 1000, 1000, 0)],
      ['30% partnerless 1000x1000', corrLike(rng, 1000, 1000, 0.3)],
      ['partnerless rectangular 980x1000', corrLike(rng, 980, 1000, 0.3)],
      ['partnerless rectangular 1000x960', corrLike(rng, 1000, 960, 0.3)],
      // nearly square: solved with dummy rows (warm starts between rounds)
      ['partnerless nearly square 995x1000', corrLike(rng, 995, 1000, 0.3)],
      ['partnerless nearly square 1000x993', corrLike(rng, 1000, 993, 0.3)],
      ['integer ties 600x600', matrix(600, 600, () => rng.int(6), true)],
    ];
    let maxRounds = 0, weakRows = 0, fellBack = 0, warmRounds = 0;
    for (const [name, c] of cases) {
      const dense = solveAssignment(c, { maximize: true, algorithm: 'dense', device: 'cpu' });
      for (const k of [4, 16]) {
        const r = certify(c, true, 'sparse', k);
        expect(r.objective, `${name} (k=${k})`).to.be.closeTo(dense.objective, 1e-9 * Math.max(1, Math.abs(dense.objective)));
        maxRounds = Math.max(maxRounds, r.stats.rounds);
        weakRows += r.stats.weakRows;
        warmRounds += r.stats.warmRounds;
        fellBack += r.stats.fellBack ? 1 : 0;
      }
    }
    // The cases must exercise the pricing rounds and the weak-row candidates, not just one clean solve.
    expect(maxRounds).to.be.greaterThan(1);
    expect(weakRows).to.be.greaterThan(0);
    expect(warmRounds).to.be.greaterThan(0);
    expect(fellBack).to.equal(0);
  });

  it('the sparse path is identical with the scalar and the SIMD scan kernels (awkward shapes, f32/f64, infinities)', function () {
    const rng = new Rng(5);
    const detected = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
    if (detected === 'scalar') {
      console.log('      (this CPU has no AVX2: there is no SIMD scan kernel to compare with the scalar one; skipped)');
      this.skip();
    }
    const levels = ['scalar', 'avx2'] as const;
    const cases: [string, CostMatrix, boolean][] = [
      ['uniform f32 67x131 max', matrix(67, 131, () => rng.next(), true), true],
      ['uniform f64 131x67 min', matrix(131, 67, () => rng.next()), false],
      ['normal f64 1x70 min', matrix(1, 70, () => rng.normal()), false],
      ['correlation-like f32 515x509', corrLike(rng, 515, 509, 0.3), true],
      ['forbidden +inf f64 300x301 min', matrix(300, 301, (i, j) => (rng.next() < 0.4 && i !== j ? Infinity : rng.next() * 10)), false],
      ['forbidden -inf f32 257x250 max', matrix(257, 250, (i, j) => (rng.next() < 0.4 && i !== j ? -Infinity : rng.normal()), true), true],
      ['integer ties f32 203x203 min', matrix(203, 203, () => rng.int(3), true), false],
    ];
    try {
      for (const [name, c, maximize] of cases) {
        const runs = levels.map((level) => {
          setSimdLevel(level);
          return certify(c, maximize, 'sparse', 5);
        });
        for (const r of runs.slice(1)) {
          expect(Array.from(r.rowToCol), name).to.deep.equal(Array.from(runs[0].rowToCol));
          expect(r.objective, name).to.equal(runs[0].objective);
          expect(Array.from(r.duals!.u), name).to.deep.equal(Array.from(runs[0].duals!.u));
          expect(r.stats, name).to.deep.equal(runs[0].stats);
        }
      }
    } finally {
      setSimdLevel(detected);
    }
  });

  it("passes scipy's own linear_sum_assignment cases (both signs, both orientations, both algorithms)", () => {
    const inf = Infinity;
    // [cost matrix, expected chosen entry of each row] from scipy's test suite.
    const cases: [number[][], number[]][] = [
      [[[400, 150, 400], [400, 450, 600], [300, 225, 300]], [150, 400, 300]],
      [[[400, 150, 400, 1], [400, 450, 600, 2], [300, 225, 300, 3]], [150, 2, 300]],
      [[[10, 10, 8], [9, 8, 1], [9, 7, 4]], [10, 1, 7]],
      [[[10, 10, 8, 11], [9, 8, 1, 1], [9, 7, 4, 10]], [10, 1, 4]],
      [[[10, inf, inf], [inf, inf, 1], [inf, 7, inf]], [10, 1, 7]],
    ];
    for (const [rowsData, expected] of cases)
      for (const sign of [-1, 1])
        for (const transpose of [false, true])
          for (const algorithm of ['dense', 'sparse'] as const) {
            const M = transpose ? rowsData[0].map((_, j) => rowsData.map((r) => r[j])) : rowsData;
            const c = { rows: M.length, cols: M[0].length, data: Float64Array.from(M.flat().map((x) => sign * x)) };
            const r = solveAssignment(c, { maximize: sign === -1, algorithm, candidates: 1, device: 'cpu' });
            const chosen: number[] = [];
            r.rowToCol.forEach((j, i) => j >= 0 && chosen.push(c.data[i * c.cols + j]));
            const want = expected.map((x) => sign * x);
            const label = `${JSON.stringify(rowsData)} sign ${sign}${transpose ? ' transposed' : ''} ${algorithm}`;
            if (transpose) expect([...chosen].sort((x, y) => x - y), label).to.deep.equal([...want].sort((x, y) => x - y));
            else expect(chosen, label).to.deep.equal(want);
          }
    // Constant matrices give the identity, as scipy does.
    expect(Array.from(solveAssignment(matrix(6, 6, () => 1)).rowToCol)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    // Empty shapes.
    for (const [r, c] of [[0, 0], [0, 3], [3, 0]]) {
      const res = solveAssignment({ rows: r, cols: c, data: new Float64Array(0) });
      expect(res.objective).to.equal(0);
      expect(Array.from(res.rowToCol)).to.deep.equal(Array(r).fill(-1));
    }
    // Rectangular with forbidden entries that still allow a full matching of the smaller side.
    expect(solveAssignment({ rows: 2, cols: 3, data: Float64Array.from([1, inf, 3, inf, 2, inf]) }).objective).to.equal(3);
  });

  it('rejects NaN, wrong infinities, bad shapes and infeasible matrices with typed errors', async () => {
    const m = (rows: number[][]) => ({ rows: rows.length, cols: rows[0].length, data: Float64Array.from(rows.flat()) });
    for (const algorithm of ['dense', 'sparse'] as const) {
      expectSaeError(() => solveAssignment(m([[1, NaN], [2, 3]]), { algorithm }), 'ERR_NONFINITE', /NaN/);
      expectSaeError(() => solveAssignment(m([[1, -Infinity], [2, 3]]), { algorithm }), 'ERR_NONFINITE', /-Inf/);
      expectSaeError(() => solveAssignment(m([[1, Infinity], [2, 3]]), { maximize: true, algorithm }), 'ERR_NONFINITE', /\+Inf/);
      expectSaeError(() => solveAssignment(m([[Infinity, Infinity], [1, 2]]), { algorithm }), 'ERR_INFEASIBLE');
      expectSaeError(() => solveAssignment(m([[1, Infinity], [2, Infinity], [3, Infinity]]), { algorithm }), 'ERR_INFEASIBLE');
      expectSaeError(() => solveAssignment(m([[-Infinity, 1], [-Infinity, 2]]), { maximize: true, algorithm }), 'ERR_INFEASIBLE');
    }
    expectSaeError(() => solveAssignment({ rows: 2, cols: 2, data: new Float64Array(3) }), 'ERR_SHAPE');
    expectSaeError(() => solveAssignment({ rows: 2, cols: 2, data: [1, 2, 3, 4] as never }), 'ERR_DTYPE');
    expectSaeError(() => solveAssignment({ rows: 1, cols: 1, data: new Int32Array(1) as never }), 'ERR_DTYPE');
    const ok = await solveAssignmentAsync(m([[10, 10, 8], [9, 8, 1], [9, 7, 4]]));
    expect(ok.objective).to.equal(18);
  });
});

function bruteForce(c: CostMatrix, maximize: boolean): number {
  const { rows, cols } = c;
  const small = Math.min(rows, cols);
  let best = maximize ? -Infinity : Infinity;
  const used = new Array(Math.max(rows, cols)).fill(false);
  const at = (i: number, j: number) => (rows <= cols ? c.data[i * cols + j] : c.data[j * cols + i]);
  const other = Math.max(rows, cols);
  const rec = (i: number, acc: number) => {
    if (i === small) {
      best = maximize ? Math.max(best, acc) : Math.min(best, acc);
      return;
    }
    for (let j = 0; j < other; j++) {
      if (used[j]) continue;
      used[j] = true;
      rec(i + 1, acc + at(i, j));
      used[j] = false;
    }
  };
  rec(0, 0);
  return best;
}

describe('alignLatents', () => {
  /** Codes for paired samples where text latent pi(i) fires (noisily) with image latent i. */
  function planted(rng: Rng, m: number, n: number, k: number, deadA: number[], deadB: number[]) {
    const pi = Array.from({ length: m }, (_, j) => j).sort(() => rng.next() - 0.5);
    const a: SparseCodes = { rows: n, k, indices: new Int32Array(n * k), values: new Float32Array(n * k) };
    const b: SparseCodes = { rows: n, k, indices: new Int32Array(n * k), values: new Float32Array(n * k) };
    const liveA = Array.from({ length: m }, (_, j) => j).filter((j) => !deadA.includes(j) && !deadB.includes(pi[j]));
    for (let r = 0; r < n; r++) {
      const chosen = new Set<number>();
      while (chosen.size < k) chosen.add(liveA[rng.int(liveA.length)]);
      [...chosen].forEach((i, s) => {
        a.indices[r * k + s] = i;
        a.values[r * k + s] = 0.5 + rng.next();
        b.indices[r * k + s] = pi[i];
        b.values[r * k + s] = rng.next() < 0.85 ? 0.5 + rng.next() : 0; // partner sometimes silent
      });
    }
    return { pi, a, b };
  }

  it('recovers a planted permutation and always returns a bijection, with dead latents on either side', () => {
    const rng = new Rng(3);
    const m = 64;
    for (const [deadA, deadB] of [[[], []], [[1, 5, 9], []], [[], [0, 2]], [[3, 4], [10, 11, 12]]] as number[][][]) {
      const { pi, a, b } = planted(rng, m, 4000, 4, deadA, deadB);
      using acc = new CorrelationAccumulator(m, m, { device: 'cpu' });
      acc.add(a, b);
      const r = acc.result();
      const perm = alignLatents(r);
      expect(new Set(Array.from(perm)).size, 'bijection').to.equal(m);
      expect(Math.min(...perm)).to.equal(0);
      expect(Math.max(...perm)).to.equal(m - 1);
      let hit = 0, alive = 0;
      for (let i = 0; i < m; i++) {
        if (!r.aliveA[i] || !r.aliveB[pi[i]]) continue;
        alive++;
        if (perm[i] === pi[i]) hit++;
      }
      expect(hit / alive, `recovered ${hit}/${alive}`).to.be.at.least(0.95);
      const unsigned = alignLatents(r, { signed: false });
      expect(new Set(Array.from(unsigned)).size).to.equal(m);
    }
  });

  it('pairs leftover latents in ascending order and rejects non-square inputs', () => {
    const m = 4;
    const correlation = { rows: m, cols: m, data: new Float32Array(m * m) };
    correlation.data[1 * m + 3] = 0.9; // A1 <-> B3 is the only alive pair
    const aliveA = Uint8Array.from([0, 1, 0, 0]), aliveB = Uint8Array.from([0, 0, 0, 1]);
    expect(Array.from(alignLatents({ correlation, aliveA, aliveB }))).to.deep.equal([0, 3, 1, 2]);
    expectSaeError(() => alignLatents({ correlation: { rows: 2, cols: 3, data: new Float32Array(6) }, aliveA: new Uint8Array(2), aliveB: new Uint8Array(3) }), 'ERR_SHAPE');
  });

  it('correlations outside [-1, 1] (beyond rounding) are ERR_RANGE, NaN is ERR_NONFINITE; options are checked by name', () => {
    const m = 5;
    const alive = new Uint8Array(m).fill(1);
    const corr = (at: number, v: number) => {
      const data = Float32Array.from({ length: m * m }, (_, q) => (q % (m + 1) === 0 ? 0.9 : 0.1));
      data[at] = v;
      return { correlation: { rows: m, cols: m, data }, aliveA: alive, aliveB: alive };
    };
    expectSaeError(() => alignLatents(corr(7, 1e30)), 'ERR_RANGE', /correlation\[1, 2\] = 1e\+30 is outside \[-1, 1\]/);
    expectSaeError(() => alignLatents(corr(24, -1.01)), 'ERR_RANGE', /\[4, 4\]/);
    expectSaeError(() => alignLatents(corr(3, NaN)), 'ERR_NONFINITE');
    expect(Array.from(alignLatents(corr(0, 1.00001)))).to.deep.equal([0, 1, 2, 3, 4]); // rounding above 1 is accepted
    expectSaeError(() => alignLatents(corr(0, 0.5), { signed: 'yes' as never }), 'ERR_ARG', /option signed/);
    expectSaeError(() => alignLatents(corr(0, 0.5), { sign: true } as never), 'ERR_ARG', /unknown option 'sign'/);
  });

  it('solveAssignment checks its options and names the bad one', () => {
    const c: CostMatrix = { rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, 4) };
    expectSaeError(() => solveAssignment(c, { candidates: 2 ** 31 }), 'ERR_ARG', /option candidates must be an integer in \[1, 65536\], got 2147483648/);
    expectSaeError(() => solveAssignment(c, { candidates: 0 }), 'ERR_ARG', /option candidates/);
    expectSaeError(() => solveAssignment(c, { candidates: 2.5 }), 'ERR_ARG', /option candidates/);
    expectSaeError(() => solveAssignment(c, { maximize: 1 as never }), 'ERR_ARG', /option maximize must be a boolean/);
    expectSaeError(() => solveAssignment(c, { returnDuals: 'yes' as never }), 'ERR_ARG', /option returnDuals/);
    expectSaeError(() => solveAssignment(c, { algorithm: 'greedy' as never }), 'ERR_ARG', /option algorithm/);
    expectSaeError(() => solveAssignment(c, { maximise: true } as never), 'ERR_ARG', /unknown option 'maximise'/);
    expectSaeError(() => solveAssignment(c, null as never), 'ERR_ARG', /options must be an object/);
    expectSaeError(() => native().solveAssignment(c.data, 2, 2, false, 'sparse', 2 ** 31, 'cpu'), 'ERR_ARG', /candidates must be an integer in \[1, 65536\]/);
    expect(Array.from(solveAssignment(c, { candidates: 65536 }).rowToCol)).to.deep.equal([0, 1]);
  });
});
