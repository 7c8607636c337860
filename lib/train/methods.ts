/**
 * The models of the paper's five methods and one optimizer step of each: one shared SAE (with its pair loss),
 * or one SAE per modality clipped jointly like the reference's two-sided model. A step whose statistics are
 * not finite fails with ERR_DIVERGED; the per-modality methods check before updating, so their models are
 * left as they were.
 */
import { SaeError } from '../errors.js';
import { firstNonFinite } from '../io/formats/common.js';
import { DeviceRows } from '../sae/device-rows.js';
import type { TopKSAEOptions } from '../sae/options.js';
import { TopKSAE, type StepResult } from '../sae/topk-sae.js';
import type { Matrix } from '../types.js';
import { latentsPerSae, pairLossWeight, type ModelConfig } from './config.js';

/** Per-step models of a method: one shared SAE, or one per modality. */
export type MethodModels = { kind: 'shared'; sae: TopKSAE } | { kind: 'separate'; image: TopKSAE; text: TopKSAE };

/** What one step reports. */
export interface StepProgress {
  loss: number;
  /** Mean of the image and text FVUs of the batch. */
  fvu: number;
  l0: number;
  deadFraction: number;
  pairLoss: number;
}

/** The models of a method by name ('shared', or 'image' and 'text'). */
export function namedModels(models: MethodModels): [string, TopKSAE][] {
  return models.kind === 'shared' ? [['shared', models.sae]] : [['image', models.image], ['text', models.text]];
}

export function disposeModels(models: MethodModels | null): void {
  if (models) for (const [, sae] of namedModels(models)) sae.dispose();
}

function saeOptions(cfg: ModelConfig, d: number, m: number, seed: number, extra: Partial<TopKSAEOptions> = {}): TopKSAEOptions {
  const { sae, train: t } = cfg;
  return {
    d,
    m,
    k: sae.k,
    seed,
    activation: sae.activation,
    loss: sae.loss,
    auxCoef: sae.auxCoef,
    normalizeDecoder: sae.normalizeDecoder,
    projectDecoderGrad: sae.projectDecoderGrad,
    maxGradNorm: t.maxGradNorm,
    weightDecay: t.weightDecay,
    decayGroups: t.decayGroups,
    beta1: t.beta1,
    beta2: t.beta2,
    eps: t.eps,
    pairedReduction: t.fvuReduction,
    // 'auto' stays unset so that CMSAE_DEVICE can choose.
    ...(t.device !== 'auto' ? { device: t.device } : {}),
    precision: t.precision,
    ...extra,
  };
}

/** The SAEs of a method: one shared SAE (with its pair loss), or one per modality (seeds seed, seed + 1). */
export function createMethodModels(cfg: ModelConfig, dImage: number, dText: number): MethodModels {
  const seed = cfg.train.seed;
  if (cfg.method.startsWith('shared')) {
    if (dImage !== dText) throw new SaeError('ERR_SHAPE', `method '${cfg.method}' runs both modalities through one SAE, but image rows have ${dImage} values and text rows ${dText}`);
    const pairLoss = cfg.method === 'shared+iso' ? cfg.train.isoVariant : cfg.method === 'shared+group' ? 'group' : 'none';
    return { kind: 'shared', sae: TopKSAE.create(saeOptions(cfg, dImage, cfg.sae.m, seed, { pairLoss, pairLossWeight: pairLossWeight(cfg) })) };
  }
  const m = latentsPerSae(cfg); // parseConfig guarantees k <= m
  const image = TopKSAE.create(saeOptions(cfg, dImage, m, seed));
  try {
    return { kind: 'separate', image, text: TopKSAE.create(saeOptions(cfg, dText, m, seed + 1)) };
  } catch (e) {
    image.dispose();
    throw e;
  }
}

const STEP_FIELDS = ['loss', 'fvu', 'mse', 'auxLoss', 'pairLoss', 'gradNorm', 'l0', 'deadFraction'] as const;

/** ERR_DIVERGED naming the first statistic of a step that is not finite (`who`: which SAE). */
export function checkStepFinite(s: StepResult, who: string): void {
  for (const f of STEP_FIELDS)
    if (typeof s[f] === 'number' && !Number.isFinite(s[f])) throw new SaeError('ERR_DIVERGED', `the ${who} step's ${f === 'gradNorm' ? 'gradient norm' : f} is ${s[f]}`);
}

function stepProgress(s: StepResult): StepProgress {
  checkStepFinite(s, 'shared SAE');
  return { loss: s.loss, fvu: s.fvu, l0: s.l0, deadFraction: s.deadFraction, pairLoss: s.pairLoss };
}

/** Clips the two modality SAEs' gradients jointly (the reference's two-sided model) and updates both. */
function jointUpdate(
  models: { image: TopKSAE; text: TopKSAE },
  a: StepResult,
  b: StepResult,
  lr: number,
  t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number },
): StepProgress {
  // Checked before either update: a diverging batch leaves both SAEs as they were.
  checkStepFinite(a, 'image SAE');
  checkStepFinite(b, 'text SAE');
  const w = t.fvuReduction === 'mean' ? 0.5 : 1;
  const norm = w * Math.hypot(a.gradNorm, b.gradNorm);
  if (!Number.isFinite(norm)) throw new SaeError('ERR_DIVERGED', `the joint gradient norm overflows (${norm})`);
  const clip = t.maxGradNorm > 0 ? Math.min(1, t.maxGradNorm / (norm + 1e-6)) : 1;
  // Each applyUpdate refuses an overflowing update and leaves its SAE as it was (ERR_DIVERGED). Should the text
  // SAE's update be refused after the image SAE's went through, the pair is one step apart: the Trainer then stops
  // without saving, so the checkpoint on disk stays the last consistent state.
  models.image.applyUpdate(lr, w * clip);
  models.text.applyUpdate(lr, w * clip);
  return { loss: w * (a.loss + b.loss), fvu: (a.fvu + b.fvu) / 2, l0: (a.l0 + b.l0) / 2, deadFraction: (a.deadFraction + b.deadFraction) / 2, pairLoss: 0 };
}

/** One optimizer step on a paired batch (ERR_DIVERGED when its result is not finite). */
export function methodStep(models: MethodModels, x: Matrix, y: Matrix, lr: number, t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number }): StepProgress {
  if (models.kind === 'shared') return stepProgress(models.sae.step(x, { pair: y, lr }));
  return jointUpdate(models, models.image.forwardBackward(x), models.text.forwardBackward(y), lr, t);
}

/** methodStep over a batch of resident rows (positions idx in the resident image and text rows). */
export function methodStepResident(
  models: MethodModels,
  image: DeviceRows,
  text: DeviceRows,
  idx: Int32Array,
  lr: number,
  t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number },
): StepProgress {
  if (models.kind === 'shared') return stepProgress(models.sae.stepRows(image, idx, { pair: text, lr }));
  return jointUpdate(models, models.image.forwardBackwardRows(image, idx), models.text.forwardBackwardRows(text, idx), lr, t);
}

/**
 * ERR_DIVERGED when a model's weights or optimizer moments hold a value that is not finite (the trainer asks
 * when a validation FVU is not finite; saves refuse such a model themselves).
 */
export function checkModelsFinite(models: MethodModels): void {
  for (const [name, sae] of namedModels(models)) {
    const w = sae.getWeights();
    const state = sae.getTrainingState();
    const arrays: [string, Float32Array | Float64Array][] = [['W_enc', w.W_enc.data], ['b_enc', w.b_enc], ['W_dec', w.W_dec.data], ['b_dec', w.b_dec], ...Object.entries(state.arrays)];
    for (const [tensor, a] of arrays) {
      const i = firstNonFinite(a);
      if (i >= 0) throw new SaeError('ERR_DIVERGED', `the ${name} SAE's ${tensor} holds ${a[i]} (element ${i})`);
    }
  }
}
