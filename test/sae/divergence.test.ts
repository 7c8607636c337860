/**
 * Divergence on the CPU engine: non-finite losses, gradients and updates are ERR_DIVERGED and leave the model
 * bit for bit as it was (step, stepAsync, forwardBackward + applyUpdate, pair losses, BatchTopK, AuxK); the
 * checked update path equals the reference optimizer. The device paths run the same cases in test/cuda/.
 */
import { expect } from 'chai';

import { Rng } from '../helpers/random.js';
import { newAdamState, randomParams, refOptimizerStep, roundToF32 } from '../helpers/reference.js';
import { fromWeights, saeFromRef, worstRatio } from '../helpers/sae.js';
import {
  checkExplodingLearningRate,
  checkNonFiniteGradient,
  checkNonFiniteGradientAsync,
  checkTinyFvuBatch,
  checkUpdateOverflow,
} from './divergence-cases.js';

describe('divergence: a non-finite step fails and changes nothing (CPU engine)', () => {
  const shapes = [
    { d: 7, m: 33, k: 5, rows: 13 },
    { d: 16, m: 64, k: 1, rows: 2 },
    { d: 33, m: 40, k: 40, rows: 9 },
  ];
  for (const sh of shapes) {
    const s = { device: 'cpu' as const, ...sh };
    const tag = `d ${sh.d}, m ${sh.m}, k ${sh.k}, rows ${sh.rows}`;
    it(`MSE on inputs of 1e30: step and forwardBackward are ERR_DIVERGED, b_dec mean init and statistics untouched (${tag})`, () => {
      checkNonFiniteGradient(s);
    });
    it(`lr 1e10 stops with ERR_DIVERGED before any value is non-finite (${tag})`, () => {
      checkExplodingLearningRate(s);
    });
    it(`applyUpdate that would overflow is refused; the gradients stay usable (${tag})`, () => {
      checkUpdateOverflow(s);
    });
  }
  it('FVU on inputs of scale 1e-21 is ERR_DEGENERATE_BATCH, not NaN', () => {
    checkTinyFvuBatch({ device: 'cpu' });
    checkTinyFvuBatch({ device: 'cpu', d: 16, m: 20, k: 3, rows: 2 });
  });
  it('stepAsync rejects with ERR_DIVERGED and the SAE continues like a twin that never saw the batch', async () => {
    await checkNonFiniteGradientAsync({ device: 'cpu' });
  });
  it('a single-row MSE batch (FVU undefined there, which must not count as divergence)', () => {
    checkNonFiniteGradient({ device: 'cpu', d: 16, m: 64, k: 1, rows: 1 });
  });
  it('paired batch with a code-level pair loss', () => {
    checkNonFiniteGradient({ device: 'cpu', d: 9, m: 30, k: 3, rows: 11 }, true);
  });
  it('BatchTopK: the running threshold is restored', () => {
    checkNonFiniteGradient({ device: 'cpu', options: { activation: 'batchtopk' } });
    checkExplodingLearningRate({ device: 'cpu', options: { activation: 'batchtopk' } });
  });
  it('AuxK with dead latents: the samples-since-fired statistics are restored', () => {
    checkNonFiniteGradient({ device: 'cpu', m: 60, options: { auxCoef: 1 / 32, deadWindow: 20 } });
    checkExplodingLearningRate({ device: 'cpu', m: 60, options: { auxCoef: 1 / 32, deadWindow: 20 } });
  });
  it('the checked update path (forced by eps 1e-35) computes the reference AdamW step', () => {
    const d = 7, m = 19, B = 11;
    const rng = new Rng(41);
    let p = roundToF32(randomParams(d, m, () => rng.next()));
    using sae = saeFromRef(p, { k: 3, eps: 1e-35, weightDecay: 1e-2 });
    const st = newAdamState(p);
    for (let step = 0; step < 6; step++) {
      const x = { rows: B, cols: d, data: rng.normals(B * d) };
      const g = fromWeights(sae.computeGradients(x).grads);
      refOptimizerStep(p, g, st, {
        lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-35, weightDecay: 1e-2,
        decay: { W_enc: true, b_enc: false, W_dec: true, b_dec: false }, maxGradNorm: 1, normalizeDecoder: true, decoderEps: 1.1920929e-7,
      });
      sae.step(x, { lr: 1e-3 });
      const got = fromWeights(sae.getWeights());
      for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const)
        expect(worstRatio(got[key], p[key], 2e-6, 1e-4).ratio, `step ${step} ${key}`).to.be.at.most(1);
      p = got;
    }
    expect(sae.status().checkedUpdates, 'every update took the checked path').to.equal(6);
  });
  it('ordinary training needs no checked update', () => {
    const rng = new Rng(3);
    using sae = saeFromRef(roundToF32(randomParams(12, 48, () => rng.next())), { k: 4 });
    for (let i = 0; i < 30; i++) sae.step({ rows: 16, cols: 12, data: rng.normals(16 * 12) }, { lr: 1e-2 });
    expect(sae.status().checkedUpdates).to.equal(0);
  });
});
