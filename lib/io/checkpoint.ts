/**
 * SAE checkpoints: cfg.json + sae_weights.safetensors in SAELens layout (W_enc [d, m], b_enc [m],
 * W_dec [m, d], b_dec [d]); our options live under cfg.cmsae; optimizer state in trainer_state.safetensors.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { resolveOptions, type TopKSAEOptions } from '../sae/options.js';
import { MOMENT_NAMES, TopKSAE, type SaeWeights, type TrainingState } from '../sae/topk-sae.js';
import { VERSION } from '../version.js';
import { recoverDirectory, writeDirectoryAtomic } from './atomic.js';
import { parseSafetensors, serializeSafetensors, type Tensor, type TensorToWrite } from './safetensors.js';

export const CFG_FILE = 'cfg.json';
export const WEIGHTS_FILE = 'sae_weights.safetensors';
export const STATE_FILE = 'trainer_state.safetensors';
export const FORMAT_VERSION = 1;

export async function saveSae(sae: TopKSAE, dir: string, opts: { includeTrainingState?: boolean } = {}): Promise<void> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'save needs a directory path');
  await writeDirectoryAtomic(dir, checkpointFiles(sae, opts));
}

/** The files of an SAE checkpoint (cfg.json last), for saveSae or a larger atomic directory. */
export function checkpointFiles(sae: TopKSAE, opts: { includeTrainingState?: boolean } = {}): Record<string, Uint8Array | string> {
  const o = sae.options;
  const w = sae.getWeights();
  const status = sae.status();
  const batch = o.activation === 'batchtopk';
  const tensors: Record<string, TensorToWrite> = {
    W_enc: { dtype: 'F32', shape: [o.d, o.m], data: w.W_enc.data },
    b_enc: { dtype: 'F32', shape: [o.m], data: w.b_enc },
    W_dec: { dtype: 'F32', shape: [o.m, o.d], data: w.W_dec.data },
    b_dec: { dtype: 'F32', shape: [o.d], data: w.b_dec },
  };
  if (batch) tensors.threshold = { dtype: 'F32', shape: [o.m], data: new Float32Array(o.m).fill(status.threshold ?? 0) };
  const cfg = {
    // SAELens (v6) inference config. A BatchTopK SAE is exported as JumpReLU with its learned threshold.
    architecture: batch ? 'jumprelu' : 'topk',
    d_in: o.d,
    d_sae: o.m,
    ...(batch ? {} : { k: o.k }),
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    rescale_acts_by_decoder_norm: false,
    metadata: { sae_lens_version: '6.0.0', cmsae_version: VERSION },
    cmsae: {
      format_version: FORMAT_VERSION,
      library_version: VERSION,
      options: o,
      threshold: status.threshold,
      step: status.step,
      samples_seen: status.samplesSeen,
    },
  };
  const files: Record<string, Uint8Array | string> = {
    [WEIGHTS_FILE]: serializeSafetensors(tensors, { cmsae_format_version: String(FORMAT_VERSION) }),
  };
  if (opts.includeTrainingState ?? true) {
    const st = sae.getTrainingState();
    const stTensors: Record<string, TensorToWrite> = {};
    for (const [name, arr] of Object.entries(st.arrays)) {
      const shape = name.startsWith('W_enc') ? [o.d, o.m] : name.startsWith('W_dec') ? [o.m, o.d] : [arr.length];
      stTensors[name] = { dtype: arr instanceof Float64Array ? 'F64' : 'F32', shape, data: arr };
    }
    files[STATE_FILE] = serializeSafetensors(stTensors, {
      step: String(st.step),
      samples_seen: String(st.samplesSeen),
      threshold: String(st.threshold),
      threshold_ready: String(st.thresholdReady),
      b_dec_mean_init_pending: String(st.bDecMeanInitPending),
    });
  }
  files[CFG_FILE] = JSON.stringify(cfg, null, 2) + '\n';
  return files;
}

async function readFileOrThrow(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SaeError('ERR_IO', `${what} not found: ${file} (is this a checkpoint directory?)`);
    throw new SaeError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
}

function tensorF32(tensors: Map<string, Tensor>, name: string, shape: number[], file: string): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new SaeError('ERR_FORMAT', `${file} has no tensor '${name}'`);
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))
    throw new SaeError('ERR_FORMAT', `${file}: tensor '${name}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
  if (t.data instanceof Int32Array) throw new SaeError('ERR_FORMAT', `${file}: tensor '${name}' is not floating point`);
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

type Json = Record<string, unknown>;

/** Options implied by a cfg.json: ours (cfg.cmsae) or SAELens v6 / legacy TopK configs. */
function optionsFromConfig(cfg: Json, file: string): { options: TopKSAEOptions; foldDecoderNorm: boolean; bDecToInput: boolean } {
  const int = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new SaeError('ERR_FORMAT', `${file}: ${what} must be a positive integer, got ${String(v)}`);
    return v;
  };
  if (typeof cfg.cmsae === 'object' && cfg.cmsae !== null) {
    const c = cfg.cmsae as Json;
    if (typeof c.format_version !== 'number' || c.format_version > FORMAT_VERSION)
      throw new SaeError('ERR_FORMAT', `${file} was written by a newer crossmodal-sae (format ${String(c.format_version)}); upgrade to load it`);
    // The device is not part of a model: a loaded SAE resolves it again (auto, CMSAE_DEVICE or the override).
    const { device: _device, ...options } = (c.options ?? {}) as TopKSAEOptions;
    return { options, foldDecoderNorm: false, bDecToInput: true };
  }
  // SAELens.
  const d = int(cfg.d_in, 'd_in');
  const m = int(cfg.d_sae, 'd_sae');
  let arch = cfg.architecture;
  let k = cfg.k;
  if (arch === undefined && cfg.activation_fn_str === 'topk') {
    arch = 'topk'; // pre-6.0 layout
    k = (cfg.activation_fn_kwargs as Json | undefined)?.k;
  }
  if (arch !== 'topk')
    throw new SaeError('ERR_FORMAT', `${file}: architecture '${String(arch ?? cfg.activation_fn_str)}' is not supported (only SAELens 'topk' and crossmodal-sae checkpoints)`);
  const norm = cfg.normalize_activations ?? 'none';
  if (norm !== 'none' && norm !== false)
    throw new SaeError('ERR_FORMAT', `${file}: normalize_activations '${String(norm)}' is not supported; fold the scaling into the weights first`);
  return {
    options: { d, m, k: int(k, 'k') },
    foldDecoderNorm: cfg.rescale_acts_by_decoder_norm === true,
    bDecToInput: cfg.apply_b_dec_to_input !== false,
  };
}

export async function loadSae(dir: string, overrides: Partial<TopKSAEOptions> = {}): Promise<TopKSAE> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'load needs a directory path');
  await recoverDirectory(dir);
  const cfgFile = path.join(dir, CFG_FILE);
  const raw = await readFileOrThrow(cfgFile, 'cfg.json');
  let cfg: Json;
  try {
    cfg = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new SaeError('ERR_FORMAT', `${cfgFile} is not valid JSON (truncated or not a checkpoint)`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new SaeError('ERR_FORMAT', `${cfgFile} is not a JSON object`);
  const { options, foldDecoderNorm, bDecToInput } = optionsFromConfig(cfg, cfgFile);
  let resolved;
  try {
    resolved = resolveOptions({ ...options, ...overrides });
  } catch (e) {
    if (e instanceof SaeError && e.code === 'ERR_CUDA_UNAVAILABLE') throw e;
    throw new SaeError('ERR_FORMAT', `${cfgFile}: ${(e as Error).message}`);
  }
  const { d, m } = resolved;
  const wFile = path.join(dir, WEIGHTS_FILE);
  const st = parseSafetensors(await readFileOrThrow(wFile, WEIGHTS_FILE), wFile);
  const weights: SaeWeights = {
    W_enc: { rows: d, cols: m, data: tensorF32(st.tensors, 'W_enc', [d, m], wFile) },
    b_enc: tensorF32(st.tensors, 'b_enc', [m], wFile),
    W_dec: { rows: m, cols: d, data: tensorF32(st.tensors, 'W_dec', [m, d], wFile) },
    b_dec: tensorF32(st.tensors, 'b_dec', [d], wFile),
  };
  if (foldDecoderNorm) foldDecoderNorms(weights);
  if (!bDecToInput) foldInputBias(weights);
  const { d: _d, m: _m, ...rest } = resolved;
  const sae = TopKSAE.fromWeights(weights, rest);
  try {
    const cm = cfg.cmsae as Json | undefined;
    const sFile = path.join(dir, STATE_FILE);
    const stateBytes = await fs.readFile(sFile).catch(() => null);
    if (stateBytes) sae.setTrainingState(readTrainingState(stateBytes, sFile, d, m));
    else if (cm && typeof cm.threshold === 'number')
      sae.setTrainingState({ ...sae.getTrainingState(), threshold: cm.threshold, thresholdReady: true });
  } catch (e) {
    sae.dispose();
    throw e;
  }
  return sae;
}

function readTrainingState(bytes: Uint8Array, file: string, d: number, m: number): TrainingState {
  const st = parseSafetensors(bytes, file);
  const arrays: Record<string, Float32Array | Float64Array> = {};
  for (const name of MOMENT_NAMES) {
    const shape = name.startsWith('W_enc') ? [d, m] : name.startsWith('W_dec') ? [m, d] : [name.startsWith('b_enc') ? m : d];
    arrays[name] = tensorF32(st.tensors, name, shape, file);
  }
  for (const name of ['fires', 'since']) {
    const t = st.tensors.get(name);
    if (!t || t.shape.length !== 1 || t.shape[0] !== m) throw new SaeError('ERR_FORMAT', `${file}: tensor '${name}' missing or not of length ${m}`);
    arrays[name] = t.data instanceof Float64Array ? t.data : Float64Array.from(t.data);
  }
  const num = (key: string): number => {
    const v = Number(st.metadata[key]);
    if (!Number.isFinite(v)) throw new SaeError('ERR_FORMAT', `${file}: metadata '${key}' is missing or not a number`);
    return v;
  };
  return {
    arrays,
    step: num('step'),
    samplesSeen: num('samples_seen'),
    threshold: num('threshold'),
    thresholdReady: st.metadata.threshold_ready === 'true',
    bDecMeanInitPending: st.metadata.b_dec_mean_init_pending === 'true',
  };
}

/** SAELens rescale_acts_by_decoder_norm: fold n_j = ||W_dec[j]|| into W_enc[:, j], b_enc[j] and W_dec[j]. */
function foldDecoderNorms(w: SaeWeights): void {
  const { rows: d, cols: m } = w.W_enc;
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += w.W_dec.data[j * d + c] ** 2;
    const n = Math.sqrt(s);
    if (n === 0) continue;
    for (let c = 0; c < d; c++) {
      w.W_dec.data[j * d + c] /= n;
      w.W_enc.data[c * m + j] *= n;
    }
    w.b_enc[j] *= n;
  }
}

/** apply_b_dec_to_input = false: pre = x W_enc + b_enc = (x - b_dec) W_enc + (b_enc + b_dec W_enc). */
function foldInputBias(w: SaeWeights): void {
  const { rows: d, cols: m } = w.W_enc;
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += w.b_dec[c] * w.W_enc.data[c * m + j];
    w.b_enc[j] += s;
  }
}
