/**
 * SAE checkpoints: cfg.json + sae_weights.safetensors in SAELens layout (W_enc [d, m], b_enc [m],
 * W_dec [m, d], b_dec [d]); our options live under cfg.cmsae; optimizer state in trainer_state.safetensors;
 * sha256 checksums of every file in cfg.cmsae.checksums. loadCheckpoint also reads SAELens (4.x-6.x) and
 * sparsify checkpoints (lib/io/formats/), folding what their forward pass does into our weights.
 * This module reads and writes the files; the SAE is built from what it read in lib/sae/topk-sae.ts
 * (TopKSAE.load) and lib/io/load-checkpoint.ts (loadCheckpoint), so that it does not import the class.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { resolveOptions, type ResolvedOptions, type TopKSAEOptions } from '../sae/options.js';
import type { SaeWeights, TrainingState } from '../sae/types.js';
import { VERSION } from '../version.js';
import { recoverDirectory, writeDirectoryAtomic } from './atomic.js';
import { readRegularFile, statOrNull } from './files.js';
import {
  FORMAT_VERSION,
  parseOwnConfig,
  readTrainingState,
  sealConfigText,
  trainingStateProblem,
  trainingStateTensors,
  verifyConfigText,
  verifyFileChecksum,
  ZERO_DIGEST,
  sha256,
  type NormalizationRecord,
  type OwnConfig,
} from './formats/cmsae.js';
import { extraTensors, firstNonFinite, floatTensor, isObject, type ForeignModel, type Json } from './formats/common.js';
import { readSaelens, saelensConfig, SAELENS_WEIGHTS_FILE } from './formats/saelens.js';
import { isSparsifyConfig, readSparsify, SPARSIFY_WEIGHTS_FILE } from './formats/sparsify.js';
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from './safetensors.js';

export const CFG_FILE = 'cfg.json';
export const WEIGHTS_FILE = SAELENS_WEIGHTS_FILE;
export const STATE_FILE = 'trainer_state.safetensors';
export { FORMAT_VERSION, type NormalizationRecord };

export interface SaveOptions {
  /** Write trainer_state.safetensors (moments, fire statistics). Default true. */
  includeTrainingState?: boolean;
  /** The input normalization the SAE was trained with, recorded in cfg.json (for use outside its run). */
  normalization?: { kind: NormalizationRecord['kind']; mean?: ArrayLike<number> };
}

/** What a checkpoint is written from: a TopKSAE (the class is not imported here, see above). */
export interface CheckpointSource {
  readonly options: ResolvedOptions;
  getWeights(): SaeWeights;
  status(): { step: number; samplesSeen: number; threshold: number | null };
  getTrainingState(): TrainingState;
}

export async function saveSae(sae: CheckpointSource, dir: string, opts: SaveOptions = {}): Promise<void> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'save needs a directory path');
  await writeDirectoryAtomic(dir, checkpointFiles(sae, opts));
}

function nonFiniteError(what: string, a: ArrayLike<number>, i: number): SaeError {
  return new SaeError('ERR_NONFINITE', `cannot save this SAE: ${what} holds ${a[i]} at element ${i} (the model diverged); nothing was written, the previous checkpoint is kept`);
}

/**
 * The files of an SAE checkpoint (cfg.json last), for saveSae or a larger atomic directory. Refuses
 * (ERR_NONFINITE, ERR_STATE) a model whose checkpoint load() would refuse.
 */
export function checkpointFiles(sae: CheckpointSource, opts: SaveOptions = {}): Record<string, Uint8Array | string> {
  const o = sae.options;
  const w = sae.getWeights();
  const status = sae.status();
  const batch = o.activation === 'batchtopk';
  for (const [name, a] of [['W_enc', w.W_enc.data], ['b_enc', w.b_enc], ['W_dec', w.W_dec.data], ['b_dec', w.b_dec]] as const) {
    const i = firstNonFinite(a);
    if (i >= 0) throw nonFiniteError(name, a, i);
  }
  if (status.threshold !== null && !Number.isFinite(status.threshold)) throw nonFiniteError('the BatchTopK threshold', [status.threshold], 0);
  const tensors: Record<string, TensorToWrite> = {
    W_enc: { dtype: 'F32', shape: [o.d, o.m], data: w.W_enc.data },
    b_enc: { dtype: 'F32', shape: [o.m], data: w.b_enc },
    W_dec: { dtype: 'F32', shape: [o.m, o.d], data: w.W_dec.data },
    b_dec: { dtype: 'F32', shape: [o.d], data: w.b_dec },
  };
  if (batch) tensors.threshold = { dtype: 'F32', shape: [o.m], data: new Float32Array(o.m).fill(status.threshold ?? 0) };
  const files: Record<string, Uint8Array | string> = {
    [WEIGHTS_FILE]: serializeSafetensors(tensors, { format: 'pt', cmsae_format_version: String(FORMAT_VERSION) }),
  };
  const checksums: Record<string, string> = { [WEIGHTS_FILE]: sha256(files[WEIGHTS_FILE]) };
  if (opts.includeTrainingState ?? true) {
    const st = sae.getTrainingState();
    const p = trainingStateProblem(st, o.d, o.m);
    if (p)
      throw new SaeError(p.nonfinite ? 'ERR_NONFINITE' : 'ERR_STATE', `cannot save this SAE's training state: ${p.message}; nothing was written, the previous checkpoint is kept`);
    const { tensors: stTensors, metadata } = trainingStateTensors(st, o.d, o.m);
    files[STATE_FILE] = serializeSafetensors(stTensors, metadata);
    checksums[STATE_FILE] = sha256(files[STATE_FILE]);
  }
  checksums[CFG_FILE] = ZERO_DIGEST;
  const cmsae: Json = {
    format_version: FORMAT_VERSION,
    library_version: VERSION,
    options: o,
    threshold: status.threshold,
    step: status.step,
    samples_seen: status.samplesSeen,
  };
  if (opts.normalization) cmsae.normalization = normalizationJson(opts.normalization, o.d);
  cmsae.checksums = checksums;
  const cfg = {
    // SAELens inference config (loadable by 4.4-6.x). A BatchTopK SAE is exported as JumpReLU with its
    // learned threshold. The weights expect inputs normalized as in training: `cmsae export` writes a
    // SAELens model for raw inputs.
    ...saelensConfig({ architecture: batch ? 'jumprelu' : 'topk', d: o.d, m: o.m, k: o.k, dtype: 'float32', normalizeActivations: 'none' }),
    cmsae,
  };
  files[CFG_FILE] = sealConfigText(JSON.stringify(cfg, null, 2) + '\n');
  return files;
}

function normalizationJson(n: NonNullable<SaveOptions['normalization']>, d: number): Json {
  if (!['l2', 'none', 'center+l2'].includes(n.kind)) throw new SaeError('ERR_ARG', `normalization.kind must be 'l2', 'none' or 'center+l2', got ${String(n.kind)}`);
  if (n.mean === undefined) {
    if (n.kind === 'center+l2') throw new SaeError('ERR_ARG', "normalization 'center+l2' needs the mean of the SAE's modality");
    return { kind: n.kind };
  }
  const mean = Array.from(n.mean);
  if (mean.length !== d || firstNonFinite(mean) >= 0) throw new SaeError('ERR_ARG', `normalization.mean must hold ${d} finite numbers`);
  return { kind: n.kind, mean };
}

/** Where a checkpoint came from, and the input normalization it expects. */
export interface CheckpointOrigin {
  format: 'cmsae' | 'saelens' | 'sparsify';
  /** e.g. "crossmodal-sae format 1", "SAELens 5.10.7 (topk)", "sparsify (topk)". */
  version: string;
  /**
   * The input normalization the weights expect: recorded in a cmsae cfg.json (null when the checkpoint
   * records none: use its run's normalization.json), 'none' for a foreign checkpoint, 'l2' for SAELens
   * constant_norm_rescale (folded).
   */
  normalization: NormalizationRecord | null;
  /** What was folded, assumed or dropped while loading a foreign checkpoint. */
  notes: string[];
}

/** A checkpoint read and checked, before an SAE is built from it (saeFromCheckpoint in lib/sae/topk-sae.ts). */
export interface CheckpointContents extends CheckpointOrigin {
  weights: SaeWeights;
  /** The resolved options (overrides applied) without d and m, which the weights' shapes give. */
  options: Omit<ResolvedOptions, 'd' | 'm'>;
  /** The saved training state (a cmsae checkpoint with trainer_state.safetensors), or null. */
  state: TrainingState | null;
  /** Without a state: the BatchTopK threshold to set (cmsae.threshold, a foreign JumpReLU threshold), or null. */
  threshold: number | null;
}

async function readConfig(dir: string): Promise<{ cfg: Json; text: string; file: string }> {
  const file = path.join(dir, CFG_FILE);
  if (!statOrNull(file)) {
    let hint = ' (is this a checkpoint directory?)';
    try {
      const subs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && statOrNull(path.join(dir, e.name, CFG_FILE))).map((e) => e.name);
      if (subs.length) hint = ` (a directory of several checkpoints, e.g. a sparsify run? give one of: ${subs.slice(0, 8).join(', ')})`;
    } catch {
      /* not a directory: the hint stays generic */
    }
    throw new SaeError('ERR_IO', `cfg.json not found: ${file}${hint}`);
  }
  const text = (await readRegularFile(file, 'checkpoint config')).toString('utf8');
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch {
    throw new SaeError('ERR_FORMAT', `${file} is not valid JSON (truncated or not a checkpoint)`);
  }
  if (!isObject(cfg)) throw new SaeError('ERR_FORMAT', `${file} is not a JSON object`);
  return { cfg, text, file };
}

function resolveLoaded(options: TopKSAEOptions, overrides: Partial<TopKSAEOptions>, file: string) {
  if (typeof overrides !== 'object' || overrides === null) throw new SaeError('ERR_ARG', 'load overrides must be an object of options');
  try {
    return resolveOptions({ ...options, ...overrides });
  } catch (e) {
    if (e instanceof SaeError && e.code === 'ERR_CUDA_UNAVAILABLE') throw e;
    throw new SaeError('ERR_FORMAT', `${file}: ${(e as Error).message}`);
  }
}

/** Reads and checks a checkpoint saved by save() or a SAELens / sparsify checkpoint, with its provenance and input normalization. */
export async function readCheckpoint(dir: string, overrides: Partial<TopKSAEOptions> = {}): Promise<CheckpointContents> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'load needs a directory path');
  await recoverDirectory(dir);
  const { cfg, text, file } = await readConfig(dir);
  if ('cmsae' in cfg) return loadOwn(dir, cfg, text, file, overrides);
  let foreign: ForeignModel;
  if (isSparsifyConfig(cfg) || (!('d_sae' in cfg) && 'd_in' in cfg && 'k' in cfg && !('architecture' in cfg))) {
    if (!statOrNull(path.join(dir, SPARSIFY_WEIGHTS_FILE)) && statOrNull(path.join(dir, WEIGHTS_FILE)))
      throw new SaeError('ERR_FORMAT', `${file} is a sparsify config but ${dir} holds ${WEIGHTS_FILE} (SAELens) and no ${SPARSIFY_WEIGHTS_FILE}`);
    foreign = await readSparsify(dir, cfg, file);
  } else if (['d_sae', 'architecture', 'activation_fn_str', 'activation_fn'].some((key) => key in cfg)) {
    if (!statOrNull(path.join(dir, WEIGHTS_FILE)) && statOrNull(path.join(dir, SPARSIFY_WEIGHTS_FILE)))
      throw new SaeError('ERR_FORMAT', `${dir} holds ${SPARSIFY_WEIGHTS_FILE} but ${file} is not a sparsify config (no num_latents / expansion_factor)`);
    foreign = await readSaelens(dir, cfg, file);
  } else
    throw new SaeError(
      'ERR_FORMAT',
      `${file} is not a checkpoint config of crossmodal-sae (cmsae), SAELens (d_in, d_sae, architecture) or sparsify (d_in, k, num_latents / expansion_factor)`,
    );
  const base: TopKSAEOptions =
    foreign.threshold === undefined
      ? { d: foreign.d, m: foreign.m, k: foreign.k }
      : { d: foreign.d, m: foreign.m, k: foreign.m, activation: 'batchtopk', batchCapacity: foreign.m };
  const { d: _d, m: _m, ...options } = resolveLoaded(base, overrides, file);
  return {
    weights: foreign.weights,
    options,
    state: null,
    threshold: foreign.threshold ?? null,
    format: foreign.format,
    version: foreign.version,
    normalization: { kind: foreign.normalization },
    notes: foreign.notes,
  };
}

async function loadOwn(dir: string, cfg: Json, text: string, cfgFile: string, overrides: Partial<TopKSAEOptions>): Promise<CheckpointContents> {
  const own: OwnConfig = parseOwnConfig(cfg, cfgFile);
  const resolved = resolveLoaded(own.options as TopKSAEOptions, overrides, cfgFile);
  const { d, m } = resolved;
  const wFile = path.join(dir, WEIGHTS_FILE);
  const wBytes = await readRegularFile(wFile, 'SAE weights file');
  const st = parseSafetensors(wBytes, wFile);
  const batch = (own.options.activation ?? 'topk') === 'batchtopk';
  const extra = extraTensors(st, ['W_enc', 'b_enc', 'W_dec', 'b_dec', ...(batch ? ['threshold'] : [])]);
  if (extra.length) throw new SaeError('ERR_FORMAT', `${wFile}: unexpected tensor(s) ${extra.map((e) => `'${e}'`).join(', ')}`);
  for (const [name, t] of st.tensors) if (t.dtype !== 'F32') throw new SaeError('ERR_FORMAT', `${wFile}: tensor '${name}' is ${t.dtype}; crossmodal-sae writes F32`);
  const weights: SaeWeights = {
    W_enc: { rows: d, cols: m, data: floatTensor(st, 'W_enc', [d, m], wFile) },
    b_enc: floatTensor(st, 'b_enc', [m], wFile),
    W_dec: { rows: m, cols: d, data: floatTensor(st, 'W_dec', [m, d], wFile) },
    b_dec: floatTensor(st, 'b_dec', [d], wFile),
  };
  if (batch) {
    const t = floatTensor(st, 'threshold', [m], wFile);
    const want = own.threshold ?? 0;
    if (!t.every((v) => v === Math.fround(want))) throw new SaeError('ERR_FORMAT', `${wFile}: tensor 'threshold' does not hold cmsae.threshold = ${want} in every latent`);
  }
  const sFile = path.join(dir, STATE_FILE);
  const sBytes = statOrNull(sFile) ? await readRegularFile(sFile, 'training state file') : null;
  const state = sBytes ? readTrainingState(sBytes, sFile, d, m) : null;
  if (own.checksums) {
    verifyConfigText(text, own.checksums[CFG_FILE] ?? '', cfgFile);
    verifyFileChecksum(wBytes, own.checksums[WEIGHTS_FILE], wFile, cfgFile);
    if (sBytes) verifyFileChecksum(sBytes, own.checksums[STATE_FILE], sFile, cfgFile);
  }
  if (state) checkStateMatches(state, own, sFile, cfgFile);
  const { d: _d, m: _m, ...options } = resolved;
  return {
    weights,
    options,
    state,
    threshold: own.threshold,
    format: 'cmsae',
    version: `crossmodal-sae format ${String((cfg.cmsae as Json).format_version)}`,
    normalization: own.normalization,
    notes: [],
  };
}

/** The training state belongs to the cfg.json beside it (written together by checkpointFiles). */
function checkStateMatches(state: TrainingState, own: OwnConfig, sFile: string, cfgFile: string): void {
  const mismatch = (what: string, a: unknown, b: unknown): never => {
    throw new SaeError('ERR_FORMAT', `${sFile} does not belong to ${cfgFile}: ${what} is ${String(a)} there and ${String(b)} in cfg.json`);
  };
  if (state.step !== own.step) mismatch('the step', state.step, own.step);
  if (state.samplesSeen !== own.samplesSeen) mismatch('samples seen', state.samplesSeen, own.samplesSeen);
  const threshold = state.thresholdReady ? state.threshold : null;
  if (threshold !== own.threshold) mismatch('the BatchTopK threshold', threshold, own.threshold);
}

/**
 * Why a bare TopKSAE (TopKSAE.load) cannot carry this checkpoint: a foreign one whose forward pass needs its
 * inputs normalized; null when it can.
 */
export function bareSaeRefusal(dir: string, c: CheckpointOrigin): SaeError | null {
  if (c.format === 'cmsae' || c.normalization?.kind === 'none') return null;
  return new SaeError(
    'ERR_FORMAT',
    `${path.join(dir, CFG_FILE)}: this ${c.version} checkpoint needs its inputs normalized ('${c.normalization?.kind}': ${c.notes.join('; ')}), which a bare TopKSAE cannot carry; use loadCheckpoint(dir), which returns the model with its normalization, or cmsae encode, which applies it`,
  );
}
