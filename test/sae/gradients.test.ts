import { expect } from 'chai';

import type { TopKSAEOptions } from '../../lib/index.js';
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

