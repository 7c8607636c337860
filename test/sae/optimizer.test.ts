import { expect } from 'chai';

import { info, setSimdLevel, type TopKSAEOptions } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { cloneParams, newAdamState, projectDecoderGrad, randomParams, refOptimizerStep, roundToF32, type RefOptimOptions, type RefParams } from '../helpers/reference.js';
import { fromWeights, saeFromRef, worstRatio } from '../helpers/sae.js';

/**
 * 20 native steps against the TypeScript reference optimizer fed with the native gradients of each step
 * (gradients themselves are checked in gradients.test.ts): clipping, AdamW with per-parameter decay,
 * and decoder renormalization must track the reference.
 */
function run(options: Omit<TopKSAEOptions, 'd' | 'm'>, ref: Omit<RefOptimOptions, 'lr'>, lr: number, shape = { d: 10, m: 24, B: 16 }): void {
  const { d, m, B } = shape;
  const rng = new Rng(31);
  let p: RefParams = roundToF32(randomParams(d, m, () => rng.next()));
  const sae = saeFromRef(p, options);
  const st = newAdamState(p);
  try {
    for (let step = 0; step < 20; step++) {
      const x = { rows: B, cols: d, data: rng.normals(B * d) };
      // Reference: take the native (projected, unclipped) gradients at the current weights.
      const { grads } = sae.computeGradients(x);
      const g = fromWeights(grads);
      const before = cloneParams(p);
      refOptimizerStep(p, g, st, { ...ref, lr });
      // Native: the same step through applyUpdate with the clipping coefficient computed natively.
      const s = sae.step(x, { lr });
      expect(s.gradNorm).to.be.greaterThan(0);
      const got = fromWeights(sae.getWeights());
      for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) {
        const { ratio, at } = worstRatio(got[key], p[key], 2e-6, 1e-4);
        expect(ratio, `step ${step} ${key}[${at}]: native ${got[key][at]} reference ${p[key][at]} (was ${before[key][at]})`).to.be.at.most(1);
      }
      p = got; // continue from the native float32 state so rounding does not accumulate
    }
    expect(sae.status().step).to.equal(20);
  } finally {
    sae.dispose();
  }
}

const base: Omit<RefOptimOptions, 'lr'> = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 1e-2,
  decay: { W_enc: true, b_enc: false, W_dec: true, b_dec: false },
  maxGradNorm: 1,
  normalizeDecoder: true,
  decoderEps: 1.1920929e-7,
};

describe('AdamW + clipping + decoder renormalization vs a TypeScript reference (20 steps)', () => {
  it('default options (weights decayed, clipping at 1, renorm on)', () => {
    run({ k: 4, weightDecay: 1e-2 }, base, 1e-2);
  });
  it('clipping active (small max norm), every parameter decayed', () => {
    run({ k: 4, weightDecay: 0.05, maxGradNorm: 0.05, decayGroups: 'all' }, { ...base, weightDecay: 0.05, maxGradNorm: 0.05, decay: { W_enc: true, b_enc: true, W_dec: true, b_dec: true } }, 5e-3);
  });
  it('HF decay groups (b_dec decayed, b_enc not), no clipping, no renorm, custom betas', () => {
    run(
      { k: 3, weightDecay: 0.1, decayGroups: 'hf', maxGradNorm: 0, normalizeDecoder: false, beta1: 0.8, beta2: 0.99, eps: 1e-6 },
      { ...base, weightDecay: 0.1, decay: { W_enc: true, b_enc: false, W_dec: true, b_dec: true }, maxGradNorm: 0, normalizeDecoder: false, beta1: 0.8, beta2: 0.99, eps: 1e-6 },
      1e-2,
    );
  });
  it('keeps decoder rows at unit norm and removes the radial gradient component', () => {
    const d = 8, m = 16;
    const rng = new Rng(4);
    const p = roundToF32(randomParams(d, m, () => rng.next()));
    const sae = saeFromRef(p, { k: 3 });
    const x = { rows: 12, cols: d, data: rng.normals(12 * d) };
    const { grads } = sae.computeGradients(x);
    for (let j = 0; j < m; j++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += grads.W_dec.data[j * d + i] * p.W_dec[j * d + i];
      expect(Math.abs(dot)).to.be.below(1e-6);
    }
    const g = fromWeights(grads);
    projectDecoderGrad(p, g); // idempotent on an already projected gradient
    expect(worstRatio(Float32Array.from(g.W_dec), grads.W_dec.data, 1e-7, 1e-5).ratio).to.be.at.most(1);
    for (let s = 0; s < 5; s++) sae.step(x, { lr: 0.05 });
    const w = sae.getWeights();
    for (let j = 0; j < m; j++) {
      let n = 0;
      for (let i = 0; i < d; i++) n += w.W_dec.data[j * d + i] ** 2;
      expect(Math.sqrt(n)).to.be.closeTo(1, 1e-5);
    }
    sae.dispose();
  });
});

describe('AdamW + clipping + decoder renormalization at every SIMD level vs the TypeScript reference (20 steps)', () => {
  const simd = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
  after(() => setSimdLevel(simd));
  // No parameter count a multiple of a vector width (W 11 x 37 = 407, b_enc 37, b_dec 11): every level's tail runs.
  const shape = { d: 11, m: 37, B: 16 };
  for (const level of ['scalar', 'avx2', 'avx512'] as const)
    it(`matches the reference at SIMD level ${level} (default options; clipping with every parameter decayed); skipped where the CPU lacks ${level}`, function () {
      if (setSimdLevel(level) !== level) {
        console.log(`      (skipped: this CPU has no ${level}; best is ${simd})`);
        this.skip();
      }
      run({ k: 4, weightDecay: 1e-2 }, base, 1e-2, shape);
      run({ k: 4, weightDecay: 0.05, maxGradNorm: 0.05, decayGroups: 'all' }, { ...base, weightDecay: 0.05, maxGradNorm: 0.05, decay: { W_enc: true, b_enc: true, W_dec: true, b_dec: true } }, 5e-3, shape);
    });
});
