/**
 * SAELens checkpoints (cfg.json + sae_weights.safetensors), read the way SAELens itself reads them:
 * - 6.x (metadata.sae_lens_version >= 6.0.0-rc.0): `architecture` with its own fields (topk: k,
 *   rescale_acts_by_decoder_norm; jumprelu: a `threshold` tensor);
 * - before 6.0 (4.x, 5.x; no or an older sae_lens_version): `activation_fn_str` (or `activation_fn`) with
 *   `activation_fn_kwargs: { k }`, `architecture: "standard" | "topk" | "jumprelu"`, `finetuning_scaling_factor`
 *   with a `scaling_factor` tensor, boolean `normalize_activations` (handle_pre_6_0_config's rules).
 * Forward: pre = (norm_in(x) - b_dec * apply_b_dec_to_input) W_enc + b_enc; topk: TopK then ReLU (the same
 * dense codes as our ReLU then TopK); jumprelu: ReLU(pre) * (pre > threshold); x_hat = norm_out((z * s) W_dec + b_dec).
 * Every field that changes that forward pass is folded into the weights exactly or refused (ERR_FORMAT).
 */
import path from 'node:path';

import { SaeError } from '../../errors.js';
import type { SaeWeights } from '../../sae/types.js';
import { VERSION } from '../../version.js';
import { readRegularFile, readTextFile, statOrNull } from '../files.js';
import { parseSafetensors, type SafetensorsFile } from '../safetensors.js';
import {
  boolField,
  extraTensors,
  floatTensor,
  foldDecoderNorms,
  foldInputBias,
  foldInputScale,
  foldLatentScale,
  isObject,
  positiveInt,
  type ForeignModel,
  type Json,
  type Precision,
} from './common.js';

export const SAELENS_WEIGHTS_FILE = 'sae_weights.safetensors';
export const SAELENS_SCALER_FILE = 'activation_scaler.json';

/** SAELens's DTYPE_MAP. */
const DTYPES: Record<string, Precision> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'bfloat16',
  'torch.float32': 'float32',
  'torch.float64': 'float64',
  'torch.float16': 'float16',
  'torch.bfloat16': 'bfloat16',
};

/** Fields that decide the forward pass (each is read below). */
const FORWARD_FIELDS = new Set([
  'architecture',
  'd_in',
  'd_sae',
  'k',
  'dtype',
  'activation_fn',
  'activation_fn_str',
  'activation_fn_kwargs',
  'apply_b_dec_to_input',
  'normalize_activations',
  'reshape_activations',
  'rescale_acts_by_decoder_norm',
  'finetuning_scaling_factor',
]);

/** Fields every SAELens version writes that describe provenance or training only (the forward pass ignores them). */
const BENIGN_FIELDS = new Set([
  'metadata',
  'device',
  'model_name',
  'model_class_name',
  'hook_name',
  'hook_point',
  'hook_layer',
  'hook_point_layer',
  'hook_head_index',
  'hook_point_head_index',
  'hook_name_out',
  'hook_layer_out',
  'hook_head_index_out',
  'model_from_pretrained_kwargs',
  'prepend_bos',
  'exclude_special_tokens',
  'neuronpedia_id',
  'neuronpedia',
  'context_size',
  'seqpos_slice',
  'dataset_path',
  'dataset_trust_remote_code',
  'sae_lens_version',
  'sae_lens_training_version',
  // training-only hyperparameters of 4.x-6.x training configs
  'l1_coefficient',
  'lp_norm',
  'l1_warm_up_steps',
  'use_ghost_grads',
  'normalize_sae_decoder',
  'noise_scale',
  'decoder_orthogonal_init',
  'mse_loss_normalization',
  'decoder_heuristic_init',
  'decoder_heuristic_init_norm',
  'init_encoder_as_decoder_transpose',
  'scale_sparsity_penalty_by_decoder_norm',
  'jumprelu_init_threshold',
  'jumprelu_bandwidth',
  'jumprelu_sparsity_loss_mode',
  'jumprelu_tanh_scale',
  'pre_act_loss_coefficient',
  'decoder_init_norm',
  'aux_loss_coefficient',
  'use_sparse_activations',
  'topk_threshold_lr',
  'b_dec_init_method',
]);

/** Fields of SAELens variants we cannot run, with the reason. */
const REFUSED_FIELDS: Record<string, string> = {
  d_out: 'a transcoder (it predicts another activation, not its input)',
  matryoshka_widths: 'a Matryoshka SAE training checkpoint',
};

/** The fields a cfg.json of ours or SAELens's holds that no SAELens reader knows (for the unknown-field check). */
export function unknownSaelensFields(cfg: Json, also: string[] = []): string[] {
  return Object.keys(cfg).filter((key) => !FORWARD_FIELDS.has(key) && !BENIGN_FIELDS.has(key) && !also.includes(key));
}

function versionOf(cfg: Json, file: string): string | null {
  const meta = isObject(cfg.metadata) ? cfg.metadata : {};
  const v = cfg.sae_lens_version ?? meta.sae_lens_version;
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || !/^\d+(\.\d+)*/.test(v)) throw new SaeError('ERR_FORMAT', `${file}: sae_lens_version must be a version string, got ${JSON.stringify(v)}`);
  return v;
}

/** SAELens's own test: Version(v) < Version("6.0.0-rc.0") means the pre-6.0 layout. */
function isPre6(v: string | null): boolean {
  if (v === null) return true;
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$/.exec(v)!;
  const [major, minor, patch] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  if (major !== 6 || minor !== 0 || patch !== 0) return major < 6;
  const pre = m[4].replace(/^[-.]/, '').toLowerCase();
  return /^(a|alpha|b|beta|dev)/.test(pre); // 6.0.0 alphas, betas and dev builds come before rc.0
}

interface SaelensConfig {
  version: string;
  architecture: 'topk' | 'jumprelu';
  d: number;
  m: number;
  k?: number;
  precision: Precision;
  applyBDecToInput: boolean;
  normalize: 'none' | 'expected_average_only_in' | 'constant_norm_rescale';
  reshape: 'none' | 'hook_z';
  rescaleByDecoderNorm: boolean;
  finetuningScalingFactor: boolean;
}

/** Reads and checks a SAELens cfg.json (any version) into the fields our loader acts on. */
export function parseSaelensConfig(cfg: Json, file: string): SaelensConfig {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
  };
  for (const [key, why] of Object.entries(REFUSED_FIELDS)) if (key in cfg) bad(`has '${key}': this is ${why}, which crossmodal-sae cannot run`);
  const unknown = unknownSaelensFields(cfg);
  if (unknown.length)
    bad(`unknown field(s) ${unknown.map((u) => `'${u}'`).join(', ')}: they may change the forward pass, so the checkpoint is refused (remove them if they do not)`);
  if (cfg.metadata !== undefined && !isObject(cfg.metadata)) bad('metadata must be an object');
  const v = versionOf(cfg, file);
  const pre6 = isPre6(v);
  const d = positiveInt(cfg.d_in, 'd_in', file);
  const m = positiveInt(cfg.d_sae, 'd_sae', file);

  let arch = cfg.architecture ?? (pre6 ? 'standard' : undefined);
  if (typeof arch !== 'string') return bad(`architecture must be a string, got ${JSON.stringify(arch)}`);
  let k: number | undefined;
  if (pre6) {
    if (cfg.activation_fn !== undefined && cfg.activation_fn_str !== undefined && cfg.activation_fn !== cfg.activation_fn_str)
      bad(`activation_fn '${String(cfg.activation_fn)}' and activation_fn_str '${String(cfg.activation_fn_str)}' disagree`);
    const act = cfg.activation_fn_str ?? cfg.activation_fn ?? 'relu';
    if (typeof act !== 'string') return bad(`activation_fn_str must be a string, got ${JSON.stringify(act)}`);
    const kwargs = cfg.activation_fn_kwargs ?? {};
    if (!isObject(kwargs)) return bad('activation_fn_kwargs must be an object');
    const extra = Object.keys(kwargs).filter((key) => key !== 'k' && key !== 'signed');
    if (extra.length) bad(`activation_fn_kwargs ${extra.map((e) => `'${e}'`).join(', ')} would change the activation; refusing`);
    if (kwargs.signed !== undefined && kwargs.signed !== false)
      bad('activation_fn_kwargs.signed is true: a signed Top-K SAE (selection by |pre|, no ReLU) is not supported');
    if (act === 'topk') {
      const kw = kwargs.k ?? cfg.k;
      if (kw === undefined || kw === null) bad("activation 'topk' without activation_fn_kwargs.k");
      k = positiveInt(kw, 'activation_fn_kwargs.k', file, m);
      if (cfg.k !== undefined && kwargs.k !== undefined && cfg.k !== kwargs.k) bad(`k = ${String(cfg.k)} and activation_fn_kwargs.k = ${String(kwargs.k)} disagree`);
      if (arch === 'standard') arch = 'topk'; // handle_pre_6_0_config: topk activation with k -> architecture "topk"
      if (arch !== 'topk') bad(`architecture '${arch}' with activation 'topk' is not a SAELens combination`);
    } else if (act === 'relu') {
      if (arch === 'topk') bad("architecture 'topk' with activation_fn 'relu': SAELens 5.x runs it as a ReLU SAE and 6.x as Top-K; refusing the ambiguity");
    } else bad(`activation '${act}' is not supported (only 'topk', and 'relu' for jumprelu)`);
  } else {
    if (arch === 'topk') {
      if (cfg.k === undefined) bad("architecture 'topk' without k");
      k = positiveInt(cfg.k, 'k', file, m);
      const kw = isObject(cfg.activation_fn_kwargs) ? cfg.activation_fn_kwargs.k : undefined;
      if (kw !== undefined && kw !== k) bad(`k = ${k} and activation_fn_kwargs.k = ${String(kw)} disagree`);
    }
  }
  if (arch === 'standard' || arch === 'gated' || arch === 'batchtopk' || arch === 'matryoshka_batchtopk')
    bad(
      `architecture '${arch}' is not supported: crossmodal-sae runs Top-K SAEs and JumpReLU SAEs with one threshold` +
        (arch.includes('batchtopk') ? ' (save a BatchTopK SAE for inference with SAELens, which writes it as jumprelu)' : ''),
    );
  if (arch !== 'topk' && arch !== 'jumprelu') bad(`architecture '${arch}' is not supported (only SAELens 'topk' and 'jumprelu')`);

  const dtype = cfg.dtype ?? 'float32';
  const precision = typeof dtype === 'string' ? DTYPES[dtype] : undefined;
  if (!precision) bad(`dtype ${JSON.stringify(dtype)} is not one of SAELens's dtypes (${Object.keys(DTYPES).join(', ')})`);

  let norm = cfg.normalize_activations;
  if (norm === undefined || norm === null || norm === false) norm = 'none';
  if (norm === true) norm = 'expected_average_only_in'; // pre-6 boolean
  if (norm === 'layer_norm') bad("normalize_activations 'layer_norm' (per-row standardisation) is not supported: none of our normalizations equals it");
  if (norm !== 'none' && norm !== 'expected_average_only_in' && norm !== 'constant_norm_rescale') bad(`normalize_activations ${JSON.stringify(norm)} is not a SAELens value`);

  const reshape = cfg.reshape_activations ?? 'none';
  if (reshape !== 'none' && reshape !== 'hook_z') bad(`reshape_activations ${JSON.stringify(reshape)} is not a SAELens value`);

  return {
    version: v === null ? 'pre-6.0 layout (no sae_lens_version)' : v,
    architecture: arch as 'topk' | 'jumprelu',
    d,
    m,
    k,
    precision: precision!,
    applyBDecToInput: boolField(cfg, 'apply_b_dec_to_input', true, file),
    normalize: norm as SaelensConfig['normalize'],
    reshape: reshape as SaelensConfig['reshape'],
    // jumprelu configs have no such field in SAELens (it is dropped there, so here too)
    rescaleByDecoderNorm: arch === 'topk' && boolField(cfg, 'rescale_acts_by_decoder_norm', false, file),
    finetuningScalingFactor: boolField(cfg, 'finetuning_scaling_factor', false, file),
  };
}

/** torch.allclose(s, ones) with its default tolerances: SAELens drops such a scaling factor. */
function allOnes(s: Float32Array): boolean {
  return s.every((v) => Math.abs(v - 1) <= 1e-8 + 1e-5);
}

/** The latent scale of decode ((z * s) W_dec), from `scaling_factor` or `finetuning_scaling_factor`, or null. */
function latentScale(st: SafetensorsFile, c: SaelensConfig, file: string, notes: string[]): Float32Array | null {
  const names = ['scaling_factor', 'finetuning_scaling_factor'].filter((n) => st.tensors.has(n));
  if (names.length > 1) throw new SaeError('ERR_FORMAT', `${file} has both 'scaling_factor' and 'finetuning_scaling_factor'`);
  if (names.length === 0) return null;
  const s = floatTensor(st, names[0], [c.m], file, c.precision);
  if (allOnes(s)) {
    notes.push(`'${names[0]}' is all ones (dropped, as SAELens does)`);
    return null;
  }
  if (!c.finetuningScalingFactor)
    throw new SaeError('ERR_FORMAT', `${file}: tensor '${names[0]}' is present but finetuning_scaling_factor is false (SAELens refuses this too)`);
  notes.push(`finetuning_scaling_factor folded into W_dec (decode uses (z * s) W_dec)`);
  return s;
}

async function activationScaler(dir: string, file: string): Promise<number | null> {
  const f = path.join(dir, SAELENS_SCALER_FILE);
  if (!statOrNull(f)) return null;
  let j: unknown;
  try {
    j = JSON.parse(await readTextFile(f, 'SAELens activation scaler'));
  } catch (e) {
    if (e instanceof SaeError) throw e;
    throw new SaeError('ERR_FORMAT', `${f} is not valid JSON`);
  }
  const s = isObject(j) ? j.scaling_factor : undefined;
  if (s === null) return null;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) throw new SaeError('ERR_FORMAT', `${f}: scaling_factor must be a positive number, got ${JSON.stringify(s)} (${file})`);
  return s;
}

/** A SAELens checkpoint directory as our model. */
export async function readSaelens(dir: string, cfg: Json, cfgFile: string): Promise<ForeignModel> {
  const c = parseSaelensConfig(cfg, cfgFile);
  const wFile = path.join(dir, SAELENS_WEIGHTS_FILE);
  const st = parseSafetensors(await readRegularFile(wFile, 'SAELens weights file'), wFile);
  const allowed = ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'scaling_factor', 'finetuning_scaling_factor', ...(c.architecture === 'jumprelu' ? ['threshold'] : [])];
  const extra = extraTensors(st, allowed);
  if (extra.length)
    throw new SaeError('ERR_FORMAT', `${wFile}: tensor(s) ${extra.map((e) => `'${e}'`).join(', ')} are not part of a SAELens ${c.architecture} SAE; refusing rather than ignoring them`);
  const { d, m } = c;
  const notes: string[] = [];
  const weights: SaeWeights = {
    W_enc: { rows: d, cols: m, data: floatTensor(st, 'W_enc', [d, m], wFile, c.precision) },
    b_enc: floatTensor(st, 'b_enc', [m], wFile, c.precision),
    W_dec: { rows: m, cols: d, data: floatTensor(st, 'W_dec', [m, d], wFile, c.precision) },
    b_dec: floatTensor(st, 'b_dec', [d], wFile, c.precision),
  };
  if (c.precision === 'float16' || c.precision === 'bfloat16') notes.push(`weights rounded to ${c.precision} (cfg dtype), arithmetic in float32`);
  if (c.reshape === 'hook_z') notes.push("reshape_activations 'hook_z': give rows flattened to d_in = n_heads * d_head");
  let threshold: number | undefined;
  if (c.architecture === 'jumprelu') {
    const t = floatTensor(st, 'threshold', [m], wFile, c.precision);
    if (!t.every((v) => v === t[0]))
      throw new SaeError('ERR_FORMAT', `${wFile}: the JumpReLU thresholds differ between latents; crossmodal-sae runs one threshold for all (as SAELens writes a BatchTopK SAE)`);
    threshold = t[0];
    notes.push(`JumpReLU with threshold ${threshold}: loaded as BatchTopK inference without a per-row cap`);
  }
  if (c.rescaleByDecoderNorm) {
    foldDecoderNorms(weights);
    notes.push('rescale_acts_by_decoder_norm folded into the weights');
  }
  const scale = latentScale(st, c, wFile, notes);
  if (scale) foldLatentScale(weights, scale);
  if (!c.applyBDecToInput) {
    foldInputBias(weights);
    notes.push('apply_b_dec_to_input = false folded into b_enc');
  }
  let normalization: 'none' | 'l2' = 'none';
  if (c.normalize === 'constant_norm_rescale') {
    foldInputScale(weights, Math.sqrt(d));
    normalization = 'l2';
    notes.push("normalize_activations 'constant_norm_rescale' = our 'l2' input normalization with the weights scaled by sqrt(d_in)");
  } else if (c.normalize === 'expected_average_only_in') {
    const s = await activationScaler(dir, cfgFile);
    if (s === null)
      throw new SaeError(
        'ERR_FORMAT',
        `${cfgFile}: normalize_activations 'expected_average_only_in' but no ${SAELENS_SCALER_FILE} with its scaling factor beside it: the input scale is not in this checkpoint (SAELens folds it at the end of training; fold it with fold_activation_norm_scaling_factor)`,
      );
    foldInputScale(weights, s);
    notes.push(`expected_average_only_in: scaling factor ${s} from ${SAELENS_SCALER_FILE} folded into the weights`);
  }
  return { format: 'saelens', version: `SAELens ${c.version} (${c.architecture})`, d, m, k: c.k ?? m, weights, threshold, normalization, notes };
}

/** Where an exported model came from (placeholders where unknown; SAELens 5.x requires these keys). */
export interface ExportSource {
  modelName?: string;
  hookName?: string;
  datasetPath?: string;
  contextSize?: number;
}

/**
 * A SAELens cfg.json for our weights, loadable by SAELens 4.4-5.x (top-level fields, all keys its
 * SAEConfig requires) and 6.x (metadata.sae_lens_version, the architecture's own fields).
 */
export function saelensConfig(o: {
  architecture: 'topk' | 'jumprelu';
  d: number;
  m: number;
  k: number;
  dtype: Precision;
  normalizeActivations: 'none' | 'constant_norm_rescale';
  source?: ExportSource;
  metadata?: Json;
}): Json {
  const topk = o.architecture === 'topk';
  const s = o.source ?? {};
  const provenance = {
    model_name: s.modelName ?? 'unknown (precomputed embeddings)',
    hook_name: s.hookName ?? 'embeddings',
    hook_head_index: null,
    context_size: s.contextSize ?? 1,
    prepend_bos: false,
    dataset_path: s.datasetPath ?? 'unknown',
    model_from_pretrained_kwargs: {},
    seqpos_slice: [null],
  };
  return {
    architecture: o.architecture,
    d_in: o.d,
    d_sae: o.m,
    ...(topk ? { k: o.k } : {}),
    dtype: o.dtype,
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: o.normalizeActivations,
    reshape_activations: 'none',
    rescale_acts_by_decoder_norm: false,
    // SAELens 4.x/5.x read these top-level fields (and require the provenance ones).
    activation_fn_str: topk ? 'topk' : 'relu',
    activation_fn_kwargs: topk ? { k: o.k } : {},
    finetuning_scaling_factor: false,
    ...provenance,
    hook_layer: 0,
    dataset_trust_remote_code: false,
    sae_lens_training_version: null,
    neuronpedia_id: null,
    metadata: { sae_lens_version: '6.0.0', sae_lens_training_version: null, ...provenance, exclude_special_tokens: false, cmsae_version: VERSION, ...o.metadata },
  };
}
