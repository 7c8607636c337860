/**
 * The code store's alignment is certified against the very matrix it optimizes (store.correlation(): the same
 * float32 bits both paths read): its duals are feasible on every alive pair and close the duality gap, and an
 * independent oracle (scipy's linear_sum_assignment) finds the same objective. Both paths, signed and |C|,
 * square, rectangular, with partnerless and dead latents.
 */
import { expect } from 'chai';

import { CoactivationCodes, type CodesAlignment, type SparseCodes } from '../../lib/index.js';
import { native } from '../../lib/native/load.js';
import { requireScipy, scipyLsa } from '../helpers/python.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

/** Paired codes: B carries A's latent through `perm` (partnerless where perm is -1) with probability 0.7. */
function pairedCodes(rng: Rng, rows: number, mA: number, mB: number, k: number, perm: Int32Array): { a: SparseCodes; b: SparseCodes } {
  const ai = new Int32Array(rows * k), av = new Float32Array(rows * k), bi = new Int32Array(rows * k), bv = new Float32Array(rows * k);
  const dead = (j: number) => j % 17 === 3;  // latents that never fire
  for (let r = 0; r < rows; r++) {
    const ua = new Set<number>(), ub = new Set<number>();
    for (let q = 0; q < k; q++) {
      let i = Math.floor(rng.next() ** 1.5 * mA);
      while (ua.has(i) || dead(i)) i = (i + 1) % mA;
      ua.add(i);
      ai[r * k + q] = i;
      av[r * k + q] = 0.1 + rng.next();
      let j = perm[i] >= 0 && rng.next() < 0.7 ? perm[i] : Math.floor(rng.next() * mB);
      while (ub.has(j) || dead(j)) j = (j + 1) % mB;
      ub.add(j);
      bi[r * k + q] = j;
      bv[r * k + q] = 0.1 + rng.next();
    }
  }
  return { a: { rows, k, indices: ai, values: av }, b: { rows, k, indices: bi, values: bv } };
}

/** The alive submatrix of C (or |C|) in alive index order. */
function aliveSub(store: CoactivationCodes, res: CodesAlignment, signed: boolean) {
  const c = store.correlation();
  const ra = [...res.aliveA.keys()].filter((i) => res.aliveA[i]);
  const rb = [...res.aliveB.keys()].filter((j) => res.aliveB[j]);
  const data = new Float32Array(ra.length * rb.length);
  ra.forEach((i, x) => rb.forEach((j, y) => (data[x * rb.length + y] = signed ? c.data[i * c.cols + j] : Math.abs(c.data[i * c.cols + j]))));
  return { ra, rb, rows: ra.length, cols: rb.length, data };
}

describe('CoactivationCodes: the alignment is certified on the matrix it optimizes', function () {
  this.timeout(120_000);
  // 300 x 303 and 303 x 300 are nearly square: the solver pads them with dummy rows (both orientations).
  const shapes: [number, number, number][] = [[300, 300, 0], [260, 200, 0.3], [200, 260, 0.3], [400, 400, 0.3], [300, 303, 0.1], [303, 300, 0.1]];
  for (const [mA, mB, partnerless] of shapes)
    for (const signed of [true, false])
      it(`${mA} x ${mB}, ${partnerless * 100}% partnerless, ${signed ? 'signed' : '|C|'}: duals certify both paths`, () => {
        const rng = new Rng(mA * 7 + mB + (signed ? 1 : 0));
        const perm = Int32Array.from({ length: mA }, (_, i) => (rng.next() < partnerless ? -1 : (i * 7919) % mB));
        using store = new CoactivationCodes(mA, mB);
        const { a, b } = pairedCodes(rng, 5000, mA, mB, 6, perm);
        store.add(a, b);
        for (const path of ['dense', 'large'] as const) {
          const res = store.align({ path, signed });
          const sub = aliveSub(store, res, signed);
          const rowToCol = new Int32Array(sub.rows).fill(-1), colToRow = new Int32Array(sub.cols).fill(-1);
          const bpos = new Map(sub.rb.map((j, y) => [j, y]));
          sub.ra.forEach((i, x) => {
            const j = res.rowToCol[i];
            if (j >= 0) {
              rowToCol[x] = bpos.get(j)!;
              colToRow[bpos.get(j)!] = x;
            }
          });
          const u = Float64Array.from(sub.ra, (i) => res.duals.u[i]), v = Float64Array.from(sub.rb, (j) => res.duals.v[j]);
          const cert = native().certifyAssignment(sub.data, sub.rows, sub.cols, true, rowToCol, colToRow, u, v);
          const n = Math.max(sub.rows, sub.cols);
          expect(cert.maxViolation, `${path}: dual feasibility`).to.be.at.most(1e-9 * n);
          expect(cert.gap, `${path}: primal = dual`).to.be.at.most(1e-9 * n);
          expect(cert.objective).to.be.closeTo(res.objective, 1e-9 * n);
          expect(Math.min(sub.rows, sub.cols), 'a real problem').to.be.greaterThan(150);
        }
      });

  it('scipy linear_sum_assignment (an independent oracle) finds the same objective', function () {
    requireScipy(this);
    const rng = new Rng(99);
    const mA = 500, mB = 480;
    const perm = Int32Array.from({ length: mA }, (_, i) => (rng.next() < 0.25 ? -1 : (i * 31) % mB));
    using store = new CoactivationCodes(mA, mB);
    const { a, b } = pairedCodes(rng, 8000, mA, mB, 8, perm);
    store.add(a, b);
    const { dir, cleanup } = tempDir();
    try {
      for (const signed of [true, false]) {
        const res = store.align({ path: 'large', signed });
        const sub = aliveSub(store, res, signed);
        const [ans] = scipyLsa(dir, [{ rows: sub.rows, cols: sub.cols, data: sub.data, maximize: true }]);
        if ('error' in ans) throw new Error(ans.error);
        expect(res.objective).to.be.closeTo(ans.objective, 1e-9 * sub.rows);
      }
    } finally {
      cleanup();
    }
  });
});
