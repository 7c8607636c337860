/**
 * Plain TypeScript reimplementations of SAELens for the interop tests (float64, no lib/ code):
 * - the cfg.json each version writes (6.x TopKSAEConfig/JumpReLUSAEConfig.to_dict, 5.x and 4.x SAEConfig.to_dict);
 * - its disk loaders: 6.x (handle_config_defaulting -> handle_pre_6_0_config, SAEConfig.from_dict,
 *   read_sae_components_from_disk, load_state_dict strict) and 4.x/5.x (handle_config_defaulting,
 *   SAEConfig.from_dict with its required fields, strict state dict);
 * - the forward pass: norm_in, pre = (x - b_dec * apply) W_enc + b_enc, [* ||W_dec||], TopK then ReLU
 *   (or ReLU * (pre > threshold)), decode [/ ||W_dec||] [* finetuning factor] @ W_dec + b_dec, norm_out.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { readPlainSafetensors, writePlainSafetensors, type PlainDtype } from './st-plain.js';

export type Version = 4 | 5 | 6;

export interface PlainSae {
  arch: 'topk' | 'jumprelu';
  d: number;
  m: number;
  k: number;
  W_enc: Float64Array; // [d, m]
  b_enc: Float64Array;
  W_dec: Float64Array; // [m, d]
  b_dec: Float64Array;
  threshold?: Float64Array;
  finetuningScale?: Float64Array;
  applyBDec: boolean;
  norm: 'none' | 'constant_norm_rescale';
  rescale: boolean;
}

export interface Weights {
  W_enc: ArrayLike<number>;
  b_enc: ArrayLike<number>;
  W_dec: ArrayLike<number>;
  b_dec: ArrayLike<number>;
}

const DTYPE_NAME: Record<'F32' | 'F16' | 'BF16', string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** cfg.json as SAELens `version` writes it for a Top-K (or JumpReLU) SAE. */
export function saelensCfg(version: Version, o: { arch: 'topk' | 'jumprelu'; d: number; m: number; k: number; dtype: 'F32' | 'F16' | 'BF16'; extra?: Record<string, unknown> }): Record<string, unknown> {
  const dtype = DTYPE_NAME[o.dtype];
  if (version === 6) {
    const base: Record<string, unknown> = {
      d_in: o.d,
      d_sae: o.m,
      dtype,
      device: 'cpu',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      reshape_activations: 'none',
      metadata: {
        sae_lens_version: '6.18.0',
        sae_lens_training_version: '6.18.0',
        model_name: 'gpt2',
        hook_name: 'blocks.6.hook_resid_post',
        hook_head_index: null,
        context_size: 128,
        prepend_bos: true,
        seqpos_slice: [null],
        model_from_pretrained_kwargs: {},
        dataset_path: 'monology/pile-uncopyrighted',
      },
    };
    if (o.arch === 'topk') Object.assign(base, { k: o.k, rescale_acts_by_decoder_norm: true });
    return { ...base, architecture: o.arch, ...o.extra };
  }
  // 4.x and 5.x: SAEConfig.to_dict; 4.x wrote Top-K SAEs as architecture "standard" with a topk activation.
  return {
    architecture: o.arch === 'jumprelu' ? 'jumprelu' : version === 4 ? 'standard' : 'topk',
    d_in: o.d,
    d_sae: o.m,
    dtype,
    device: 'cpu',
    model_name: 'gpt2-small',
    hook_name: 'blocks.8.hook_resid_pre',
    hook_layer: 8,
    hook_head_index: null,
    activation_fn_str: o.arch === 'jumprelu' ? 'relu' : 'topk',
    activation_fn_kwargs: o.arch === 'jumprelu' ? {} : { k: o.k },
    apply_b_dec_to_input: true,
    finetuning_scaling_factor: false,
    sae_lens_training_version: version === 4 ? '4.4.5' : '5.10.7',
    prepend_bos: true,
    dataset_path: 'Skylion007/openwebtext',
    dataset_trust_remote_code: true,
    context_size: 128,
    normalize_activations: 'none',
    neuronpedia_id: null,
    model_from_pretrained_kwargs: {},
    seqpos_slice: [null],
    ...o.extra,
  };
}

/** Writes a checkpoint directory as SAELens save_model does (cfg.json + sae_weights.safetensors, no metadata). */
export function writeSaelens(dir: string, cfg: Record<string, unknown>, w: Weights, dtype: PlainDtype, extraTensors: Record<string, { shape: number[]; values: ArrayLike<number> }> = {}): void {
  mkdirSync(dir, { recursive: true });
  const d = cfg.d_in as number, m = cfg.d_sae as number;
  const tensors: Record<string, { dtype: PlainDtype; shape: number[]; values: ArrayLike<number> }> = {
    W_enc: { dtype, shape: [d, m], values: w.W_enc },
    b_enc: { dtype, shape: [m], values: w.b_enc },
    W_dec: { dtype, shape: [m, d], values: w.W_dec },
    b_dec: { dtype, shape: [d], values: w.b_dec },
  };
  for (const [n, t] of Object.entries(extraTensors)) tensors[n] = { dtype, ...t };
  writePlainSafetensors(path.join(dir, 'sae_weights.safetensors'), tensors);
  writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
}

function readCfg(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
}

/** Version string -> SAELens's "< 6.0.0-rc.0" test (for the versions the tests write). */
function pre6(cfg: Record<string, unknown>): boolean {
  const v = (cfg.sae_lens_version ?? (cfg.metadata as Record<string, unknown> | undefined)?.sae_lens_version) as string | undefined;
  return !v || Number(v.split('.')[0]) < 6;
}

/** read_sae_components_from_disk: tensors cast to cfg.dtype, the scaling_factor rule. */
function stateDict(dir: string, cfg: Record<string, unknown>): Map<string, Float64Array> {
  const st = readPlainSafetensors(path.join(dir, 'sae_weights.safetensors'));
  const sd = new Map<string, Float64Array>();
  for (const [n, t] of st.tensors) sd.set(n, roundToDtype(t.values, cfg.dtype as string));
  const s = sd.get('scaling_factor');
  if (s) {
    sd.delete('scaling_factor');
    if (s.every((v) => Math.abs(v - 1) <= 1e-8 + 1e-5)) cfg.finetuning_scaling_factor = false;
    else {
      if (!cfg.finetuning_scaling_factor) throw new Error('Scaling factor is present but finetuning_scaling_factor is False.');
      sd.set('finetuning_scaling_factor', s);
    }
  } else cfg.finetuning_scaling_factor = false;
  return sd;
}

/** torch .to(dtype): round to nearest (ties to even) by comparing the two neighbouring representable values. */
function roundToDtype(a: Float64Array, dtype: string): Float64Array {
  const bits = dtype.endsWith('bfloat16') ? 8 : dtype.endsWith('float16') ? 11 : 0;
  if (bits === 0) return Float64Array.from(a, (v) => Math.fround(v));
  return Float64Array.from(a, (v) => {
    if (v === 0 || !Number.isFinite(v)) return v;
    const e = Math.floor(Math.log2(Math.abs(v)));
    const ulp = Math.pow(2, e - bits + 1);
    const lo = Math.floor(v / ulp) * ulp;
    const hi = lo + ulp;
    const r = v - lo < hi - v ? lo : v - lo > hi - v ? hi : Math.round(lo / ulp) % 2 === 0 ? lo : hi;
    return r;
  });
}

function strict(sd: Map<string, Float64Array>, names: string[]): void {
  const missing = names.filter((n) => !sd.has(n));
  const unexpected = [...sd.keys()].filter((n) => !names.includes(n));
  if (missing.length || unexpected.length) throw new Error(`load_state_dict: missing ${missing.join(',')} unexpected ${unexpected.join(',')}`);
}

/** SAELens 6.x: SAE.load_from_disk. */
export function saelensLoadV6(dir: string): PlainSae {
  let cfg = readCfg(dir);
  cfg.device = 'cpu';
  const sd = stateDict(dir, cfg);
  if (pre6(cfg)) {
    // handle_pre_6_0_config (the parts that shape the forward pass)
    const c: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(cfg)) c[{ hook_point: 'hook_name', hook_point_head_index: 'hook_head_index', activation_fn_str: 'activation_fn' }[key] ?? key] = v;
    c.apply_b_dec_to_input ??= true;
    c.architecture ??= 'standard';
    const kw = (c.activation_fn_kwargs ?? {}) as Record<string, unknown>;
    if (c.activation_fn === 'topk' && kw.k != null) {
      c.architecture = 'topk';
      c.k = kw.k;
    }
    if (typeof c.normalize_activations === 'boolean') c.normalize_activations = c.normalize_activations ? 'expected_average_only_in' : 'none';
    c.normalize_activations ??= 'none';
    cfg = c;
  }
  const arch = cfg.architecture as string;
  if (arch !== 'topk' && arch !== 'jumprelu') throw new Error(`test reference: architecture ${arch}`);
  if (!['none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm'].includes(cfg.normalize_activations as string))
    throw new Error(`normalize_activations must be none, expected_average_only_in, layer_norm, or constant_norm_rescale. Got ${String(cfg.normalize_activations)}`);
  const names = ['W_enc', 'b_enc', 'W_dec', 'b_dec', ...(arch === 'jumprelu' ? ['threshold'] : [])];
  strict(sd, names); // 6.x SAE classes have no finetuning_scaling_factor parameter
  return build(cfg, sd, arch, arch === 'topk' ? ((cfg.k as number) ?? 100) : 0, arch === 'topk' && cfg.rescale_acts_by_decoder_norm === true);
}

/** The SAEConfig fields 4.x/5.x require (no defaults), after handle_config_defaulting. */
export const V5_REQUIRED = ['architecture', 'd_in', 'd_sae', 'activation_fn_str', 'apply_b_dec_to_input', 'finetuning_scaling_factor', 'context_size', 'model_name', 'hook_name', 'hook_layer', 'hook_head_index', 'prepend_bos', 'dataset_path', 'dataset_trust_remote_code', 'normalize_activations', 'dtype', 'device', 'sae_lens_training_version'];

/** SAELens 4.x / 5.x: SAE.load_from_disk. */
export function saelensLoadV5(dir: string): PlainSae {
  const raw = readCfg(dir);
  raw.device = 'cpu';
  const sd = stateDict(dir, raw);
  // handle_config_defaulting
  const c: Record<string, unknown> = { ...raw };
  c.prepend_bos ??= true;
  c.dataset_trust_remote_code ??= true;
  c.apply_b_dec_to_input ??= true;
  c.finetuning_scaling_factor ??= false;
  c.sae_lens_training_version ??= null;
  c.activation_fn_str ??= c.activation_fn ?? 'relu';
  c.architecture ??= 'standard';
  if (typeof c.normalize_activations === 'boolean') c.normalize_activations = c.normalize_activations ? 'expected_average_only_in' : 'none';
  c.normalize_activations ??= 'none';
  // SAEConfig.from_dict: renames, then every required field must be there
  for (const [o, n] of [['hook_point', 'hook_name'], ['hook_point_head_index', 'hook_head_index'], ['hook_point_layer', 'hook_layer']]) if (o in c) c[n] = c[o];
  const missing = V5_REQUIRED.filter((key) => !(key in c));
  if (missing.length) throw new Error(`SAEConfig.__init__() missing required arguments: ${missing.join(', ')}`);
  if (!['standard', 'gated', 'jumprelu', 'topk'].includes(c.architecture as string)) throw new Error(`Invalid architecture: ${String(c.architecture)}`);
  const arch = c.architecture === 'jumprelu' ? 'jumprelu' : 'topk';
  const act = c.activation_fn_str as string;
  if (arch === 'topk' && act !== 'topk') throw new Error(`test reference: ${String(c.architecture)} with ${act}`);
  if (arch === 'jumprelu' && act !== 'relu') throw new Error(`test reference: jumprelu with ${act}`);
  const k = arch === 'topk' ? ((c.activation_fn_kwargs as Record<string, number>).k ?? NaN) : 0;
  if (arch === 'topk' && !(k > 0)) throw new Error('TopK activation function requires a k value.');
  const names = ['W_enc', 'b_enc', 'W_dec', 'b_dec', ...(arch === 'jumprelu' ? ['threshold'] : []), ...(c.finetuning_scaling_factor ? ['finetuning_scaling_factor'] : [])];
  strict(sd, names);
  if (String(c.hook_name).endsWith('_z')) throw new Error('test reference: hook_z reshaping');
  return build(c, sd, arch, k, false);
}

function build(cfg: Record<string, unknown>, sd: Map<string, Float64Array>, arch: 'topk' | 'jumprelu', k: number, rescale: boolean): PlainSae {
  // expected_average_only_in changes nothing at run time (the trainer scales; the scale is folded at the end)
  const raw = cfg.normalize_activations as string;
  if (raw === 'layer_norm') throw new Error('test reference: layer_norm');
  const norm = raw === 'constant_norm_rescale' ? raw : 'none';
  return {
    arch,
    d: cfg.d_in as number,
    m: cfg.d_sae as number,
    k,
    W_enc: sd.get('W_enc')!,
    b_enc: sd.get('b_enc')!,
    W_dec: sd.get('W_dec')!,
    b_dec: sd.get('b_dec')!,
    threshold: sd.get('threshold'),
    finetuningScale: sd.get('finetuning_scaling_factor'),
    applyBDec: cfg.apply_b_dec_to_input !== false,
    norm,
    rescale,
  };
}

/** SAELens forward: dense feature activations [n, m] and reconstructions [n, d]. */
export function saelensForward(s: PlainSae, x: ArrayLike<number>, n: number): { acts: Float64Array; recon: Float64Array } {
  const { d, m } = s;
  const acts = new Float64Array(n * m);
  const recon = new Float64Array(n * d);
  const decNorm = Float64Array.from({ length: m }, (_, j) => Math.hypot(...Array.from(s.W_dec.subarray(j * d, (j + 1) * d))));
  for (let r = 0; r < n; r++) {
    const xr = Float64Array.from({ length: d }, (_, i) => x[r * d + i]);
    let coeff = 1;
    if (s.norm === 'constant_norm_rescale') coeff = Math.sqrt(d) / Math.hypot(...xr);
    const sae_in = xr.map((v, i) => v * coeff - (s.applyBDec ? s.b_dec[i] : 0));
    const pre = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let t = s.b_enc[j];
      for (let i = 0; i < d; i++) t += sae_in[i] * s.W_enc[i * m + j];
      pre[j] = s.rescale ? t * decNorm[j] : t;
    }
    const a = acts.subarray(r * m, (r + 1) * m);
    if (s.arch === 'topk') {
      const top = Array.from(pre, (v, j) => ({ v, j })).sort((p, q) => q.v - p.v).slice(0, s.k); // torch.topk, then ReLU
      for (const t of top) a[t.j] = Math.max(0, t.v);
    } else for (let j = 0; j < m; j++) a[j] = pre[j] > s.threshold![j] ? Math.max(0, pre[j]) : 0;
    for (let i = 0; i < d; i++) {
      let t = s.b_dec[i];
      for (let j = 0; j < m; j++) {
        if (a[j] === 0) continue;
        let z = s.rescale ? a[j] / decNorm[j] : a[j];
        if (s.finetuningScale) z *= s.finetuningScale[j];
        t += z * s.W_dec[j * d + i];
      }
      recon[r * d + i] = t / coeff;
    }
  }
  return { acts, recon };
}
