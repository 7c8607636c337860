import { expect } from 'chai';

import { info, setSimdLevel, type TopKSAEOptions } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { cloneParams, fdGradients, preActivations, projectDecoderGrad, randomParams, refLoss, roundToF32, type LossOptions, type RefParams } from '../helpers/reference.js';
import { fromWeights, saeFromRef, worstRatio } from '../helpers/sae.js';

const d = 6, m = 12, k = 3, B = 6;

/** True when every pre-activation is at least `gap` away from 0 and from every other one in its row. */
function selectionIsStable(p: RefParams, X: Float32Array, rows: number, gap: number): boolean {
  const pre = preActivations(p, X, rows);
  for (let b = 0; b < rows; b++) {
    const row = Array.from(pre.subarray(b * m, (b + 1) * m)).sort((a, c) => a - c);
    for (let i = 0; i < m; i++) {
      if (Math.abs(row[i]) < gap) return false;
      if (i > 0 && row[i] - row[i - 1] < gap) return false;
    }
  }
  // Across rows too (BatchTopK compares the whole batch).
  const all = Array.from(pre).sort((a, c) => a - c);
  for (let i = 1; i < all.length; i++) if (all[i] - all[i - 1] < gap / 4) return false;
  return true;
}

interface Case {
  name: string;
  options: Omit<TopKSAEOptions, 'd' | 'm'>;
  paired: boolean;
  aux?: boolean;
}

const CASES: Case[] = [
  { name: 'FVU', options: { k, projectDecoderGrad: false }, paired: false },
  { name: 'FVU, decoder projection', options: { k, projectDecoderGrad: true }, paired: false },
  { name: 'MSE', options: { k, loss: 'mse', projectDecoderGrad: false }, paired: false },
  { name: 'MSE, decoder projection', options: { k, loss: 'mse' }, paired: false },
  { name: 'paired FVU sum', options: { k, projectDecoderGrad: false, pairedReduction: 'sum' }, paired: true },
  { name: 'paired FVU mean, projection', options: { k, pairedReduction: 'mean' }, paired: true },
  { name: 'paired MSE mean', options: { k, loss: 'mse', projectDecoderGrad: false, pairedReduction: 'mean' }, paired: true },
  { name: 'FVU + AuxK', options: { k, projectDecoderGrad: false, auxCoef: 0.5, kAux: 2, deadWindow: 1 }, paired: false, aux: true },
  { name: 'MSE + AuxK, projection', options: { k, loss: 'mse', auxCoef: 0.25, kAux: 3, deadWindow: 1 }, paired: false, aux: true },
  { name: 'BatchTopK FVU', options: { k, activation: 'batchtopk', projectDecoderGrad: false }, paired: false },
  { name: 'BatchTopK paired MSE, projection', options: { k, activation: 'batchtopk', loss: 'mse' }, paired: true },
  { name: 'paired FVU + Iso-Energy (masked top-1 cosine)', options: { k: 4, projectDecoderGrad: false, pairLoss: 'iso', pairLossWeight: 0.7 }, paired: true },
  { name: 'paired FVU mean + iso-inner, projection', options: { k, pairedReduction: 'mean', pairLoss: 'iso-inner', pairLossWeight: 0.3 }, paired: true },
  { name: 'paired FVU + group sparsity', options: { k, projectDecoderGrad: false, pairLoss: 'group', pairLossWeight: 0.5 }, paired: true },
];

describe('gradients against float64 finite differences', () => {
  it('AuxK selection stays exact when a batch spans several encode passes (> 8192 rows)', () => {
    const rng = new Rng(99);
    const [dd, mm, kk, R] = [4, 24, 2, 4500];
    const p = roundToF32(randomParams(dd, mm, () => rng.next()));
    const x = rng.normals(R * dd), y = rng.normals(R * dd);
    const sae = saeFromRef(p, { k: kk, auxCoef: 1, kAux: 3, deadWindow: 1 });
    const xm = { rows: R, cols: dd, data: x }, pair = { rows: R, cols: dd, data: y };
    // Make latents 0..5 dead: they fire in no row (very negative bias) during the first pass.
    const w = sae.getWeights();
    for (let j = 0; j < 6; j++) w.b_enc[j] = -50;
    sae.setWeights(w);
    sae.forwardBackward(xm, { pair });
    for (let j = 0; j < 6; j++) w.b_enc[j] = -0.5; // now they can activate again, as AuxK candidates
    sae.setWeights(w);
    const q = fromWeights(sae.getWeights());
    const s = sae.forwardBackward(xm, { pair });
    const dead = new Set([0, 1, 2, 3, 4, 5]);
    const want = refLoss(q, x, R, { k: kk, loss: 'fvu', pairedReduction: 'sum', aux: { dead, kAux: 3, coef: 1 } }, y);
    expect(s.loss).to.be.closeTo(want, 1e-4 * want);
    expect(s.auxLoss).to.be.greaterThan(0);
    sae.dispose();
  });

  for (const c of CASES) {
    it(c.name, () => {
      // Find a seed whose Top-K selections are stable under the finite-difference steps.
      let seed = 1;
      let p: RefParams, x: Float32Array, y: Float32Array | undefined;
      for (;; seed++) {
        const rng = new Rng(seed * 7919);
        p = roundToF32(randomParams(d, m, () => rng.next()));
        x = rng.normals(B * d);
        y = c.paired ? rng.normals(B * d) : undefined;
        const X = y ? Float32Array.from([...x, ...y]) : x;
        if (selectionIsStable(p, X, X.length / d, 2e-3)) break;
        expect(seed).to.be.below(500);
      }
      const sae = saeFromRef(p, c.options);
      const lossOpts: LossOptions = {
        loss: c.options.loss ?? 'fvu',
        pairedReduction: c.options.pairedReduction ?? 'sum',
        activation: c.options.activation,
        k: c.options.k ?? k,
        pairLoss: c.options.pairLoss && c.options.pairLoss !== 'none' ? { kind: c.options.pairLoss, weight: c.options.pairLossWeight ?? 0 } : undefined,
      };
      const xm = { rows: B, cols: d, data: x };
      const pair = y ? { rows: B, cols: d, data: y } : undefined;
      if (c.aux) {
        // First pass marks the latents that did not fire as dead (deadWindow = 1).
        sae.forwardBackward(xm, { pair });
        const codes = sae.lastCodes();
        const fired = new Set<number>();
        codes.indices.forEach((j, i) => codes.values[i] > 0 && fired.add(j));
        const dead = new Set<number>();
        for (let j = 0; j < m; j++) if (!fired.has(j)) dead.add(j);
        expect(dead.size).to.be.greaterThan(0);
        lossOpts.aux = { dead, kAux: c.options.kAux!, coef: c.options.auxCoef! };
      }
      const { loss, grads } = sae.computeGradients(xm, { pair });
      sae.dispose();

      // The AuxK target e = x - x_hat is detached: hold it at p while differentiating.
      const frozen = c.aux ? cloneParams(p) : undefined; // fdGradients perturbs p in place
      const f = (q: RefParams) => refLoss(q, x, B, { ...lossOpts, auxTargetFrom: frozen }, y);
      expect(loss).to.be.closeTo(f(p), 1e-4 * Math.abs(f(p)) + 1e-6);
      const fd = fdGradients(p, f);
      if (c.options.projectDecoderGrad !== false) projectDecoderGrad(p, fd);
      for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) {
        const got = key === 'W_enc' || key === 'W_dec' ? grads[key].data : grads[key];
        const want = fd[key];
        const scale = Math.max(1e-3, ...Array.from(want).map(Math.abs));
        const { ratio, at } = worstRatio(got, want, 2e-4 * scale, 2e-3);
        expect(ratio, `${key}[${at}] native ${got[at]} vs finite difference ${want[at]}`).to.be.at.most(1);
      }
    });
  }
});


// ---- every SIMD level ---------------------------------------------------------------------------------
// The same float64 finite differences against the native gradients at each SIMD level the CPU has, on a
// shape whose widths are not multiples of any vector width (d = 21: full vectors plus a tail at every level).
// Tolerance 2e-6 of the largest gradient + 2e-5 relative, ten times stricter than above: the finite differences
// are exact to ~1e-9 here and float32 sums of 18 rows stay below 2e-7 relative (measured: within 2e-7 / 2e-6).

/** True when, per row, the top `count` + 1 values among `allowed` latents are >= gap apart and >= gap from 0. */
function boundaryIsStable(pre: Float64Array, rows: number, mm: number, count: number, gap: number, allowed: (j: number) => boolean): boolean {
  for (let b = 0; b < rows; b++) {
    const row: number[] = [];
    for (let j = 0; j < mm; j++) if (allowed(j)) row.push(pre[b * mm + j]);
    row.sort((a, c) => c - a);
    const top = row.slice(0, count + 1);
    for (let i = 0; i < top.length; i++) {
      if (Math.abs(top[i]) < gap) return false;
      if (i > 0 && top[i - 1] - top[i] < gap) return false;
    }
  }
  return true;
}

interface LevelCase {
  name: string;
  options: Omit<TopKSAEOptions, 'd' | 'm'>;
  paired: boolean;
}

const LEVEL_SHAPE = { d: 21, m: 45, k: 5, B: 9 };
const LEVEL_CASES: LevelCase[] = [
  { name: 'FVU, decoder projection, AuxK', options: { k: LEVEL_SHAPE.k, auxCoef: 0.5, kAux: 4, deadWindow: 1 }, paired: false },
  { name: 'paired MSE mean, group pair loss (extra dL/dval)', options: { k: LEVEL_SHAPE.k, loss: 'mse', pairedReduction: 'mean', projectDecoderGrad: false, pairLoss: 'group', pairLossWeight: 0.5 }, paired: true },
];

interface LevelReference {
  p: RefParams;
  x: Float32Array;
  y?: Float32Array;
  dead?: Set<number>;
  fd: RefParams;
}

/** Parameters and batch with stable selections (main and AuxK) and their finite-difference gradients, once per case. */
function levelReference(c: LevelCase): LevelReference {
  const { d: dd, m: mm, k: kk, B: rows } = LEVEL_SHAPE;
  for (let seed = 1; seed < 500; seed++) {
    const rng = new Rng(seed * 104729);
    const p = roundToF32(randomParams(dd, mm, () => rng.next()));
    const x = rng.normals(rows * dd);
    const y = c.paired ? rng.normals(rows * dd) : undefined;
    const X = y ? Float32Array.from([...x, ...y]) : x;
    const R = X.length / dd;
    const pre = preActivations(p, X, R);
    if (!boundaryIsStable(pre, R, mm, kk, 1e-3, () => true)) continue;
    let dead: Set<number> | undefined;
    if (c.options.auxCoef) {
      // deadWindow 1: the latents that fire in no row of the first pass are dead for the second.
      const fired = new Set<number>();
      for (let b = 0; b < R; b++) {
        const order = Array.from({ length: mm }, (_, j) => j).sort((a, e) => pre[b * mm + e] - pre[b * mm + a]);
        for (const j of order.slice(0, kk)) if (pre[b * mm + j] > 0) fired.add(j);
      }
      dead = new Set(Array.from({ length: mm }, (_, j) => j).filter((j) => !fired.has(j)));
      if (!boundaryIsStable(pre, R, mm, c.options.kAux!, 1e-3, (j) => dead!.has(j))) continue;
    }
    const lossOpts: LossOptions = {
      k: kk,
      loss: c.options.loss ?? 'fvu',
      pairedReduction: c.options.pairedReduction ?? 'sum',
      pairLoss: c.options.pairLoss && c.options.pairLoss !== 'none' ? { kind: c.options.pairLoss, weight: c.options.pairLossWeight ?? 0 } : undefined,
      aux: dead ? { dead, kAux: c.options.kAux!, coef: c.options.auxCoef! } : undefined,
    };
    const frozen = dead ? cloneParams(p) : undefined;
    const fd = fdGradients(p, (q) => refLoss(q, x, rows, { ...lossOpts, auxTargetFrom: frozen }, y));
    if (c.options.projectDecoderGrad !== false) projectDecoderGrad(p, fd);
    return { p, x, y, dead, fd };
  }
  throw new Error(`${c.name}: no seed with stable selections`);
}

describe('gradients at every SIMD level against float64 finite differences', () => {
  const simd = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
  after(() => setSimdLevel(simd));
  const refs = new Map<string, LevelReference>();
  const refFor = (c: LevelCase): LevelReference => refs.get(c.name) ?? refs.set(c.name, levelReference(c)).get(c.name)!;

  for (const level of ['scalar', 'avx2', 'avx512'] as const)
    it(`backward at SIMD level ${level} equals the reference (${LEVEL_CASES.map((c) => c.name).join('; ')}); skipped where the CPU lacks ${level}`, function () {
      if (setSimdLevel(level) !== level) {
        console.log(`      (skipped: this CPU has no ${level}; best is ${simd})`);
        this.skip();
      }
      for (const c of LEVEL_CASES) {
        const r = refFor(c);
        using sae = saeFromRef(r.p, c.options);
        const xm = { rows: LEVEL_SHAPE.B, cols: LEVEL_SHAPE.d, data: r.x };
        const pair = r.y ? { rows: LEVEL_SHAPE.B, cols: LEVEL_SHAPE.d, data: r.y } : undefined;
        if (r.dead) {
          sae.forwardBackward(xm, { pair }); // marks the dead latents (deadWindow 1)
          const codes = sae.lastCodes();
          const fired = new Set<number>();
          codes.indices.forEach((j, i) => codes.values[i] > 0 && fired.add(j));
          expect([...r.dead].every((j) => !fired.has(j)) && fired.size + r.dead.size === LEVEL_SHAPE.m, `${c.name}: the native dead set`).to.equal(true);
        }
        const { grads } = sae.computeGradients(xm, { pair });
        for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) {
          const got = key === 'W_enc' || key === 'W_dec' ? grads[key].data : grads[key];
          const want = r.fd[key];
          const scale = Math.max(1e-3, ...Array.from(want).map(Math.abs));
          const { ratio, at } = worstRatio(got, want, 2e-6 * scale, 2e-5);
          expect(ratio, `${level}, ${c.name}: ${key}[${at}] native ${got[at]} vs finite difference ${want[at]}`).to.be.at.most(1);
        }
      }
    });
});
