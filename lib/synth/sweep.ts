/**
 * The paper's synthetic experiments (§7.1, Figures 5 and 6): for each (alpha, seed) one dataset, every
 * method trained on it with the authors' synthetic settings, and the five metrics on its eval split.
 * The post-hoc method reuses the separate SAEs of the same (alpha, seed): it is their alignment.
 */
import { AlignedPair } from '../align/aligned-pair.js';
import { encodeAndCorrelate, matrixBatches } from '../align/encode-correlate.js';
import { SaeError } from '../errors.js';
import type { TopKSAE } from '../sae/topk-sae.js';
import { parseModelConfig, type Method } from '../train/config.js';
import { epochPlan, runEpochs } from '../train/epochs.js';
import { createMethodModels, disposeModels, methodStep } from '../train/methods.js';
import { generateSynthetic, type SynthData, type SynthOptions } from './generator.js';
import { syntheticMetrics, type SynthMetricOptions, type SynthMetrics } from './metrics.js';

export interface SweepSettings {
  /** Shared SAE width; each modality SAE gets m/2 (the paper: 8192 vs 2 x 4096). */
  m: number;
  k: number;
  batchSize: number;
  epochs: number;
  lr: number;
  /** 'sum' as the authors' synthetic path. */
  fvuReduction: 'sum' | 'mean';
  /** Post-hoc alignment on the signed correlation (the paper) or its absolute value (the authors' synthetic code). */
  signedAlignment: boolean;
  data: Omit<SynthOptions, 'alpha' | 'seed'>;
  /** Which variant `reconstructionError` / `featureRecoveryError` and the main plots use (both are always computed). */
  metrics: SynthMetricOptions;
  /** λ-sweep: the default λ of each auxiliary loss, multiplied by the sweep's multipliers (the authors' synthetic centres). */
  lambdaBase: { iso: number; group: number };
}

/** The paper's / authors' synthetic settings (App. D.2; reference §3.1). */
export const PAPER_SWEEP: SweepSettings = {
  m: 8192,
  k: 16,
  batchSize: 256,
  epochs: 10,
  lr: 5e-4,
  fvuReduction: 'sum',
  signedAlignment: true,
  data: {},
  metrics: {},
  lambdaBase: { iso: 0.03, group: 0.05 },
};

export interface RunRecord {
  alpha: number;
  seed: number;
  /** 'shared', 'separate', 'posthoc', 'shared+iso', 'shared+group' */
  method: Method;
  lambda?: number;
  multiplier?: number;
  metrics: SynthMetrics;
  trainSeconds: number;
  finalFvu: number;
  alphaActual: number;
}

export interface MethodRun {
  method: Method;
  lambda?: number;
  multiplier?: number;
}

/** Trains one method on a dataset; returns its SAEs (image, text; the same SAE twice when shared). */
export async function trainSynthetic(run: MethodRun, data: SynthData, s: SweepSettings, seed: number): Promise<{ image: TopKSAE; text: TopKSAE; dispose: () => void; seconds: number; finalFvu: number }> {
  const method = run.method === 'posthoc' ? 'separate' : run.method;
  const cfg = parseModelConfig({
    method,
    sae: { m: s.m, k: s.k, latentsPerModality: 'half' },
    train: {
      epochs: s.epochs,
      batchSize: s.batchSize,
      lr: s.lr,
      schedule: 'constant',
      seed,
      fvuReduction: s.fvuReduction,
      decayGroups: 'hf',
      ...(run.lambda !== undefined ? { pairLossWeight: run.lambda } : {}),
    },
  });
  const d = data.options.d;
  const { image: X, text: Y } = data.train;
  const B = cfg.train.batchSize;
  const steps = Math.floor(X.rows / B); // whole batches only (the reference's synthetic loader drops the last)
  if (steps < 1) throw new SaeError('ERR_SHAPE', `${X.rows} training rows make no batch of ${B}`);
  const models = createMethodModels(cfg, d, d);
  const xb = new Float32Array(B * d), yb = new Float32Array(B * d);
  const stepBatch = (rows: Int32Array, lr: number) => {
    rows.forEach((src, r) => {
      xb.set(X.data.subarray(src * d, (src + 1) * d), r * d);
      yb.set(Y.data.subarray(src * d, (src + 1) * d), r * d);
    });
    return methodStep(models, { rows: B, cols: d, data: xb }, { rows: B, cols: d, data: yb }, lr, cfg.train);
  };
  const t0 = Date.now();
  let fvu = NaN;
  try {
    fvu = (await runEpochs(epochPlan(cfg.train, Int32Array.from({ length: X.rows }, (_, i) => i), steps), stepBatch)).last?.fvu ?? NaN;
  } catch (e) {
    disposeModels(models);
    throw e;
  }
  const seconds = (Date.now() - t0) / 1000;
  if (models.kind === 'shared') return { image: models.sae, text: models.sae, dispose: () => models.sae.dispose(), seconds, finalFvu: fvu };
  return { image: models.image, text: models.text, dispose: () => (models.image.dispose(), models.text.dispose()), seconds, finalFvu: fvu };
}

/** Post-hoc alignment of two trained modality SAEs on the training pairs. */
export async function alignSynthetic(image: TopKSAE, text: TopKSAE, data: SynthData, signed: boolean): Promise<AlignedPair> {
  const corr = await encodeAndCorrelate(image, text, matrixBatches(data.train.image, data.train.text, 8192));
  return AlignedPair.fromCorrelation(image, text, corr, { signed });
}

/** All methods of one (alpha, seed): returns one record per method (posthoc from the separate run). */
export async function runSyntheticCell(
  alpha: number,
  seed: number,
  runs: MethodRun[],
  s: SweepSettings,
  onRecord?: (r: RunRecord) => void,
): Promise<RunRecord[]> {
  const data = generateSynthetic({ ...s.data, alpha, seed });
  const out: RunRecord[] = [];
  const emit = (r: RunRecord) => {
    out.push(r);
    onRecord?.(r);
  };
  const wantPosthoc = runs.some((r) => r.method === 'posthoc');
  const wantSeparate = runs.some((r) => r.method === 'separate');
  let separateDone = false;
  for (const run of runs) {
    const modalitySpecific = run.method === 'separate' || run.method === 'posthoc';
    if (modalitySpecific && separateDone) continue; // one training serves both
    const t = await trainSynthetic(run, data, s, seed);
    try {
      const base = { alpha, seed, lambda: run.lambda, multiplier: run.multiplier, trainSeconds: t.seconds, finalFvu: t.finalFvu, alphaActual: data.alphaActual.mean };
      if (!modalitySpecific) {
        emit({ ...base, method: run.method, metrics: syntheticMetrics(t.image, t.text, data, s.metrics) });
        continue;
      }
      separateDone = true;
      if (wantSeparate) emit({ ...base, method: 'separate', metrics: syntheticMetrics(t.image, t.text, data, s.metrics) });
      if (wantPosthoc) {
        using pair = await alignSynthetic(t.image, t.text, data, s.signedAlignment);
        emit({ ...base, method: 'posthoc', metrics: syntheticMetrics(pair.image, pair.text, data, { ...s.metrics, aligned: true }) });
      }
    } finally {
      t.dispose();
    }
  }
  return out;
}

/** Every metric of a record (both variants of reconstruction and recovery; collapse for unaligned pairs, match for aligned). */
export const METRIC_KEYS = [
  'collapseRate',
  'matchRate',
  'reconstructionError',
  'featureRecoveryError',
  'latentAlignmentError',
  'featureAlignmentError',
  'reconstructionMse',
  'reconstructionFvu',
  'recoveryFull',
  'recoveryTop1',
] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

export interface Aggregate {
  alpha: number;
  method: string;
  multiplier?: number;
  n: number;
  /** Mean and population std over the seeds that have the metric; NaN where none has it (e.g. post-hoc's collapse rate). */
  mean: Record<MetricKey, number>;
  std: Record<MetricKey, number>;
}

/** Mean and population std over seeds of every metric, per (alpha, method, multiplier). */
export function aggregate(records: RunRecord[]): Aggregate[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const key = `${r.alpha}|${r.method}|${r.multiplier ?? ''}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.values()].map((g) => {
    const mean = {} as Record<MetricKey, number>, std = {} as Record<MetricKey, number>;
    for (const k of METRIC_KEYS) {
      const v = g.map((r) => r.metrics[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      const mu = v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
      mean[k] = mu;
      std[k] = v.length ? Math.sqrt(v.reduce((a, b) => a + (b - mu) ** 2, 0) / v.length) : NaN;
    }
    return { alpha: g[0].alpha, method: g[0].method, multiplier: g[0].multiplier, n: g.length, mean, std };
  });
}
