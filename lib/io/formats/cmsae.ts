/**
 * Our own checkpoint format, checked field by field: cfg.json's `cmsae` block (format version, options,
 * step, threshold, normalization, checksums), the SAELens-facing fields beside it, and
 * trainer_state.safetensors (AdamW moments, fire statistics, step counters).
 *
 * Checksums (format 1 files written since they were added; older files have none and still load):
 * cfg.cmsae.checksums holds the sha256 of each file of the checkpoint; the one of cfg.json itself is
 * computed over its text with that digest replaced by 64 zeros.
 */

import type { Normalization } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { MOMENT_NAMES, type TrainingState } from '../../sae/types.js';
import { resolveOptions, type ResolvedOptions, type TopKSAEOptions } from '../../sae/options.js';
import { parseSafetensors, type TensorToWrite } from '../safetensors.js';
import { isObject, type Json } from './common.js';
import { unknownSaelensFields } from './saelens.js';

export const FORMAT_VERSION = 1;
const HEX64 = /^[0-9a-f]{64}$/;
export { ZERO_DIGEST, sealConfigText, sha256, verifyConfigText, verifyFileChecksum } from '../digest.js';

/** The input normalization recorded with a checkpoint (the mean of its modality for center+l2). */
export interface NormalizationRecord {
  kind: Normalization;
  mean?: Float32Array;
}

export interface OwnConfig {
  options: Omit<TopKSAEOptions, 'device'>;
  threshold: number | null;
  step: number;
  samplesSeen: number;
  normalization: NormalizationRecord | null;
  checksums: Record<string, string> | null;
}

const CMSAE_KEYS = new Set(['format_version', 'library_version', 'options', 'threshold', 'step', 'samples_seen', 'normalization', 'checksums']);

function count(v: unknown, what: string, file: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SaeError('ERR_FORMAT', `${file}: ${what} must be an integer >= 0, got ${JSON.stringify(v)}`);
  return v;
}

function normalizationRecord(v: unknown, d: number, file: string): NormalizationRecord {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: cmsae.normalization ${why}`);
  };
  if (!isObject(v)) return bad('must be an object { kind, mean? }');
  if (v.kind !== 'l2' && v.kind !== 'none' && v.kind !== 'center+l2') bad(`kind must be 'l2', 'none' or 'center+l2', got ${JSON.stringify(v.kind)}`);
  const extra = Object.keys(v).filter((key) => key !== 'kind' && key !== 'mean');
  if (extra.length) bad(`has unknown field(s) ${extra.join(', ')}`);
  if (v.mean === undefined) {
    if (v.kind === 'center+l2') bad("kind 'center+l2' needs the centring mean");
    return { kind: v.kind as Normalization };
  }
  if (!Array.isArray(v.mean) || v.mean.length !== d || !v.mean.every((x) => typeof x === 'number' && Number.isFinite(x)))
    bad(`mean must be ${d} finite numbers`);
  return { kind: v.kind as Normalization, mean: Float32Array.from(v.mean as number[]) };
}

/** Validates a cfg.json written by crossmodal-sae (any field of the wrong type, range or meaning is ERR_FORMAT). */
export function parseOwnConfig(cfg: Json, file: string): OwnConfig {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
  };
  const c = cfg.cmsae;
  if (!isObject(c)) return bad('cmsae must be an object');
  const fv = c.format_version;
  if (typeof fv !== 'number' || !Number.isInteger(fv) || fv < 1) bad(`cmsae.format_version must be an integer >= 1, got ${JSON.stringify(fv)}`);
  if ((fv as number) > FORMAT_VERSION)
    bad(`was written by a newer crossmodal-sae (format ${fv}; this version reads format ${FORMAT_VERSION}); upgrade to load it`);
  const extra = Object.keys(c).filter((key) => !CMSAE_KEYS.has(key));
  if (extra.length) bad(`cmsae has unknown field(s) ${extra.map((e) => `'${e}'`).join(', ')}`);
  if (c.library_version !== undefined && typeof c.library_version !== 'string') bad('cmsae.library_version must be a string');
  if (!isObject(c.options)) return bad('cmsae.options must be an object');
  // The device is not part of a model: a loaded SAE resolves it again (auto, CMSAE_DEVICE or the override).
  const { device: _device, ...options } = c.options as unknown as TopKSAEOptions;
  let resolved: ResolvedOptions;
  try {
    resolved = resolveOptions({ ...options, device: 'cpu' });
  } catch (e) {
    return bad(`cmsae.options: ${(e as Error).message}`);
  }
  const threshold = c.threshold ?? null;
  if (threshold !== null && (typeof threshold !== 'number' || !Number.isFinite(threshold))) bad(`cmsae.threshold must be a finite number or null, got ${JSON.stringify(threshold)}`);
  if (threshold !== null && resolved.activation !== 'batchtopk') bad('cmsae.threshold is set but the activation is not batchtopk');
  const step = count(c.step ?? 0, 'cmsae.step', file);
  const samplesSeen = count(c.samples_seen ?? 0, 'cmsae.samples_seen', file);
  // The SAELens-facing fields must say what our options say (SAELens reads them, we read the options).
  const batch = resolved.activation === 'batchtopk';
  const expect: Json = {
    architecture: batch ? 'jumprelu' : 'topk',
    d_in: resolved.d,
    d_sae: resolved.m,
    dtype: 'float32',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
  };
  if (!batch) expect.k = resolved.k;
  for (const [key, want] of Object.entries(expect))
    if (cfg[key] !== want) bad(`${key} is ${JSON.stringify(cfg[key])} but this checkpoint's options imply ${JSON.stringify(want)}`);
  // Written since the SAELens 5.x fields were added; absent from older checkpoints.
  const written: [string, unknown][] = [
    ['reshape_activations', 'none'],
    ['rescale_acts_by_decoder_norm', false],
    ['activation_fn_str', batch ? 'relu' : 'topk'],
    ['finetuning_scaling_factor', false],
  ];
  for (const [key, want] of written)
    if (cfg[key] !== undefined && cfg[key] !== want) bad(`${key} is ${JSON.stringify(cfg[key])}; crossmodal-sae checkpoints with these options are written with ${JSON.stringify(want)}`);
  if (cfg.activation_fn_kwargs !== undefined && JSON.stringify(cfg.activation_fn_kwargs) !== JSON.stringify(batch ? {} : { k: resolved.k }))
    bad(`activation_fn_kwargs ${JSON.stringify(cfg.activation_fn_kwargs)} disagrees with the options (k = ${resolved.k})`);
  const unknown = unknownSaelensFields(cfg, ['cmsae']);
  if (unknown.length) bad(`unknown field(s) ${unknown.map((u) => `'${u}'`).join(', ')}`);
  let checksums: Record<string, string> | null = null;
  if (c.checksums !== undefined) {
    if (!isObject(c.checksums)) return bad('cmsae.checksums must be an object');
    for (const [name, h] of Object.entries(c.checksums))
      if (typeof h !== 'string' || !HEX64.test(h)) bad(`cmsae.checksums['${name}'] must be 64 hex digits (sha256)`);
    checksums = c.checksums as Record<string, string>;
  }
  return {
    options,
    threshold: threshold as number | null,
    step,
    samplesSeen,
    normalization: c.normalization === undefined ? null : normalizationRecord(c.normalization, resolved.d, file),
    checksums,
  };
}

/**
 * What is wrong with a training state for an SAE of d x m, or null: non-finite moments or threshold
 * (ERR_NONFINITE), negative second moments, counters that are not integers >= 0, fire statistics that are
 * not integers in [0, samplesSeen] (code 'range').
 */
export function trainingStateProblem(st: TrainingState, d: number, m: number): { nonfinite: boolean; message: string } | null {
  const problem = (message: string, nonfinite = false) => ({ nonfinite, message });
  if (typeof st !== 'object' || st === null || !isObject(st.arrays)) return problem('the training state must be an object with arrays');
  for (const [key, v] of [['step', st.step], ['samplesSeen', st.samplesSeen]] as const)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return problem(`${key} must be an integer >= 0, got ${String(v)}`, typeof v === 'number' && !Number.isFinite(v));
  if (typeof st.threshold !== 'number' || !Number.isFinite(st.threshold)) return problem(`threshold must be a finite number, got ${String(st.threshold)}`, true);
  if (typeof st.thresholdReady !== 'boolean' || typeof st.bDecMeanInitPending !== 'boolean') return problem('thresholdReady and bDecMeanInitPending must be booleans');
  const sizes: Record<string, number> = { W_enc: d * m, b_enc: m, W_dec: m * d, b_dec: d };
  for (const name of MOMENT_NAMES) {
    const a = st.arrays[name];
    if (!(a instanceof Float32Array) || a.length !== sizes[name.split('.')[0]]) return problem(`${name} must be a Float32Array of ${sizes[name.split('.')[0]]} values`);
    const sq = name.endsWith('exp_avg_sq');
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) return problem(`${name} holds ${a[i]} at element ${i}`, true);
      if (sq && a[i] < 0) return problem(`${name} holds ${a[i]} at element ${i}: a second moment is never negative`);
    }
  }
  for (const name of ['fires', 'since']) {
    const a = st.arrays[name];
    if (!(a instanceof Float64Array) || a.length !== m) return problem(`${name} must be a Float64Array of ${m} values`);
    for (let i = 0; i < m; i++)
      if (!Number.isInteger(a[i]) || a[i] < 0 || a[i] > st.samplesSeen)
        return problem(`${name}[${i}] = ${a[i]} is not a count in [0, samplesSeen = ${st.samplesSeen}]`, !Number.isFinite(a[i]));
  }
  const known = new Set<string>([...MOMENT_NAMES, 'fires', 'since']);
  const extra = Object.keys(st.arrays).filter((n) => !known.has(n));
  if (extra.length) return problem(`unknown state array(s) ${extra.join(', ')}`);
  return null;
}

const STATE_META = new Set(['format', 'step', 'samples_seen', 'threshold', 'threshold_ready', 'b_dec_mean_init_pending']);

/** The tensors and metadata of trainer_state.safetensors. */
export function trainingStateTensors(st: TrainingState, d: number, m: number): { tensors: Record<string, TensorToWrite>; metadata: Record<string, string> } {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, arr] of Object.entries(st.arrays)) {
    const shape = name.startsWith('W_enc') ? [d, m] : name.startsWith('W_dec') ? [m, d] : [arr.length];
    tensors[name] = { dtype: arr instanceof Float64Array ? 'F64' : 'F32', shape, data: arr };
  }
  const metadata = {
    format: 'pt',
    step: String(st.step),
    samples_seen: String(st.samplesSeen),
    threshold: String(st.threshold),
    threshold_ready: String(st.thresholdReady),
    b_dec_mean_init_pending: String(st.bDecMeanInitPending),
  };
  return { tensors, metadata };
}

/** Reads and validates trainer_state.safetensors for an SAE of d x m. */
export function readTrainingState(bytes: Uint8Array, file: string, d: number, m: number): TrainingState {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
  };
  const st = parseSafetensors(bytes, file);
  const arrays: Record<string, Float32Array | Float64Array> = {};
  for (const name of MOMENT_NAMES) {
    const t = st.tensors.get(name);
    const shape = name.startsWith('W_enc') ? [d, m] : name.startsWith('W_dec') ? [m, d] : [name.startsWith('b_enc') ? m : d];
    if (!t) return bad(`has no tensor '${name}'`);
    if (t.dtype !== 'F32' || JSON.stringify(t.shape) !== JSON.stringify(shape)) bad(`tensor '${name}' must be F32 ${JSON.stringify(shape)}, got ${t.dtype} ${JSON.stringify(t.shape)}`);
    arrays[name] = t.data as Float32Array;
  }
  for (const name of ['fires', 'since']) {
    const t = st.tensors.get(name);
    if (!t || t.dtype !== 'F64' || t.shape.length !== 1 || t.shape[0] !== m) return bad(`tensor '${name}' missing or not F64 [${m}]`);
    arrays[name] = t.data as Float64Array;
  }
  const extraT = [...st.tensors.keys()].filter((n) => !(n in arrays));
  if (extraT.length) bad(`unknown tensor(s) ${extraT.map((e) => `'${e}'`).join(', ')}`);
  const meta = st.metadata;
  if (typeof meta !== 'object' || meta === null) return bad('has no metadata');
  const extraM = Object.keys(meta).filter((key) => !STATE_META.has(key));
  if (extraM.length) bad(`unknown metadata ${extraM.map((e) => `'${e}'`).join(', ')}`);
  const counter = (key: string): number => {
    const v = meta[key];
    if (typeof v !== 'string' || !/^(0|[1-9][0-9]*)$/.test(v) || !Number.isSafeInteger(Number(v))) return bad(`metadata '${key}' must be a decimal integer >= 0, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const flag = (key: string): boolean => {
    const v = meta[key];
    if (v !== 'true' && v !== 'false') return bad(`metadata '${key}' must be 'true' or 'false', got ${JSON.stringify(v)}`);
    return v === 'true';
  };
  const thr = meta.threshold;
  if (typeof thr !== 'string' || !/^-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-]?[0-9]+)?$/i.test(thr) || !Number.isFinite(Number(thr)))
    bad(`metadata 'threshold' must be a finite number, got ${JSON.stringify(thr)}`);
  const state: TrainingState = {
    arrays,
    step: counter('step'),
    samplesSeen: counter('samples_seen'),
    threshold: Number(thr),
    thresholdReady: flag('threshold_ready'),
    bDecMeanInitPending: flag('b_dec_mean_init_pending'),
  };
  const p = trainingStateProblem(state, d, m);
  if (p) throw new SaeError(p.nonfinite ? 'ERR_NONFINITE' : 'ERR_FORMAT', `${file}: ${p.message}`);
  return state;
}
