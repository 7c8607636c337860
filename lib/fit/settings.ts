/**
 * What `fit` trains: one training configuration per (setting, method, seed). A setting is one (K, activation)
 * of a sweep (the paper's Table 2 varies K, Table 4 swaps Top-K for BatchTop-K); without a sweep there is one
 * setting, the configuration's own. Figure 2 has its own protocol: 'table1' reads the first setting's
 * modality-specific run, 'd1' trains the paper's App. D.1 run (modality-specific SAEs, Top-K with K = 8, 30
 * epochs; every other option as the fit's configuration, whose defaults are App. D.4's lr 5e-4, weight decay
 * 1e-5, batch 1024 and 5 % warmup + cosine, the protocol D.1 names).
 */
import path from 'node:path';

import { SaeError } from '../errors.js';
import type { FitInputs } from '../eval/inputs.js';
import { parseConfig, type Method, type TrainConfig } from '../train/config.js';

export const ACTIVATIONS = ['topk', 'batchtopk'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export interface FitSetting {
  /** '' for the only setting of a fit without a sweep (its runs sit at train/<method>/seed-<s>), else k<K>-<activation>. */
  id: string;
  k: number;
  activation: Activation;
}

export interface SweepOptions {
  k?: number[];
  activation?: Activation[];
}

/** Figure 2's protocol: 'table1' (reuse the first setting's modality-specific run) or 'd1' (App. D.1's own run). */
export interface HeterogeneityOptions {
  protocol?: 'table1' | 'd1';
  /** d1: active latents (default 8, App. D.1). */
  k?: number;
  /** d1: epochs (default 30, App. D.1). */
  epochs?: number;
}

export const D1_PROTOCOL = { k: 8, epochs: 30 } as const;
export const HETEROGENEITY_PROTOCOLS = ['table1', 'd1'] as const;
/** The setting id of the App. D.1 run (its directory: train/figure2-d1/posthoc/seed-<s>). */
export const D1_SETTING = 'figure2-d1';

export function activationLabel(a: Activation): string {
  return a === 'topk' ? 'Top-K' : 'BatchTop-K';
}

export function settingLabel(s: Pick<FitSetting, 'k' | 'activation'>): string {
  return `${activationLabel(s.activation)}, K = ${s.k}`;
}

function distinct<T>(xs: T[], what: string, ok: (x: T) => boolean, hint: string): T[] {
  if (!Array.isArray(xs) || xs.length === 0) throw new SaeError('ERR_ARG', `${what} needs at least one value`);
  for (const x of xs) if (!ok(x)) throw new SaeError('ERR_ARG', `${what}: ${String(x)} is not ${hint}`);
  return [...new Set(xs)];
}

/** The settings of a fit: every (k, activation) of the sweep, k-major, in the order given. */
export function fitSettings(config: Record<string, unknown>, sweep: SweepOptions = {}): FitSetting[] {
  // The configuration's own K and activation (defaults filled in) when the sweep leaves one of them out.
  const ks0 = sweep.k === undefined ? undefined : distinct(sweep.k, 'the K sweep (--k)', (k) => Number.isInteger(k) && k >= 1, 'an integer >= 1');
  // The sweep's K stands in for the configuration's while the rest is validated (the default K = 32 must not be
  // checked against a small m the sweep was given for); each setting's own run configuration is checked later.
  const sae = { ...((config.sae as object) ?? {}), ...(ks0 ? { k: Math.min(...ks0) } : {}) };
  const base = parseConfig({ ...config, sae, method: 'shared', data: { image: { path: '-' }, text: { path: '-' }, ...((config.data as object) ?? {}) } }).sae;
  const ks = ks0 ?? [base.k];
  const acts = sweep.activation === undefined ? [base.activation] : distinct(sweep.activation, 'the activation sweep (--activation)', (a) => (ACTIVATIONS as readonly string[]).includes(a), `one of ${ACTIVATIONS.join(', ')}`);
  const single = ks.length * acts.length === 1;
  return ks.flatMap((k) => acts.map((activation) => ({ id: single ? '' : `k${k}-${activation}`, k, activation })));
}

/** Validated Figure 2 options with defaults. */
export function heterogeneityOptions(o: HeterogeneityOptions = {}): Required<HeterogeneityOptions> {
  const protocol = o.protocol ?? 'table1';
  if (!(HETEROGENEITY_PROTOCOLS as readonly string[]).includes(protocol)) throw new SaeError('ERR_ARG', `heterogeneity protocol must be 'table1' or 'd1', got '${String(protocol)}'`);
  const r = { protocol, k: o.k ?? D1_PROTOCOL.k, epochs: o.epochs ?? D1_PROTOCOL.epochs };
  if (!Number.isInteger(r.k) || r.k < 1) throw new SaeError('ERR_ARG', `heterogeneity k must be an integer >= 1, got ${r.k}`);
  if (!Number.isInteger(r.epochs) || r.epochs < 1) throw new SaeError('ERR_ARG', `heterogeneity epochs must be an integer >= 1, got ${r.epochs}`);
  if (protocol === 'table1' && (o.k !== undefined || o.epochs !== undefined))
    throw new SaeError('ERR_ARG', "heterogeneity k and epochs choose the App. D.1 run: they need protocol 'd1' (protocol 'table1' reads the Table 1 run as it was trained)");
  return r;
}

/** The training configuration of one run: the fit's configuration with its method, data, seed and overrides. */
export function runConfig(
  config: Record<string, unknown>,
  inputs: FitInputs,
  method: Method,
  seed: number,
  over: { k: number; activation: Activation; epochs?: number },
): TrainConfig {
  const base = structuredClone(config) as Record<string, Record<string, unknown>>;
  return parseConfig({
    ...base,
    method,
    data: { ...(base.data ?? {}), image: toSpec(inputs.train.image), text: toSpec(inputs.train.text) },
    sae: { ...(base.sae ?? {}), k: over.k, activation: over.activation },
    train: { ...(base.train ?? {}), seed, ...(over.epochs !== undefined ? { epochs: over.epochs } : {}) },
  });
}

export function toSpec(s: FitInputs['train']['image']): { path: string; tensor?: string; shape?: [number, number] } {
  return typeof s === 'string' ? { path: s } : s;
}

/** train/[<setting>/]<method>/seed-<s> (and eval/... for its evaluations). */
export function stageDir(out: string, stage: 'train' | 'eval', setting: string, method: string, seed: number): string {
  return path.join(out, stage, ...(setting ? [setting] : []), method, `seed-${seed}`);
}
