/**
 * Shared pieces of the checkpoint readers and writers (ours, SAELens, sparsify): typed tensor access,
 * float16/bfloat16 rounding, and the exact folds that turn another library's forward pass into ours
 * (pre = (x - b_dec) W_enc + b_enc, ReLU, Top-K, x_hat = z W_dec + b_dec).
 *
 * The folds and rounding loop over the weights in TypeScript: they run once per load or export, over
 * d*m values, next to a file read of the same size.
 */
import { SaeError } from '../../errors.js';
import type { SaeWeights } from '../../sae/types.js';
import { halfToFloat, type SafetensorsFile, type Tensor, type TensorToWrite } from '../safetensors.js';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The checkpoint of another library, turned into our model (weights as our forward pass computes them). */
export interface ForeignModel {
  format: 'saelens' | 'sparsify';
  /** Human-readable origin, e.g. "SAELens 6.18.0 (topk)" or "sparsify (topk)". */
  version: string;
  d: number;
  m: number;
  k: number;
  weights: SaeWeights;
  /** JumpReLU: the (uniform) threshold; the model becomes a BatchTopK SAE without a per-row cap. */
  threshold?: number;
  /** Input normalization the folded weights expect ('l2' for SAELens constant_norm_rescale). */
  normalization: 'none' | 'l2';
  /** What was folded or assumed on the way (for the CLI and for the record). */
  notes: string[];
}

/** Floating tensor precision names: SAELens cfg.dtype strings and safetensors dtypes. */
export type Precision = 'float32' | 'float16' | 'bfloat16' | 'float64';

export function precisionOfDtype(dtype: Tensor['dtype']): Precision | null {
  return dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : dtype === 'BF16' ? 'bfloat16' : dtype === 'F64' ? 'float64' : null;
}

/** A floating tensor of exactly `shape` as float32 (rounded to `precision` first when it is narrower). */
export function floatTensor(st: SafetensorsFile, name: string, shape: number[], file: string, precision: Precision = 'float32'): Float32Array {
  const t = st.tensors.get(name);
  if (!t) throw new SaeError('ERR_FORMAT', `${file} has no tensor '${name}'`);
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))
    throw new SaeError('ERR_FORMAT', `${file}: tensor '${name}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
  if (precisionOfDtype(t.dtype) === null) throw new SaeError('ERR_FORMAT', `${file}: tensor '${name}' is ${t.dtype}, not floating point`);
  const out = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  requireFinite(out, name, file);
  return roundTo(out, precision);
}

/** The index of the first NaN or infinity in `a`, or -1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/** ERR_NONFINITE naming the tensor and the first bad element. */
export function requireFinite(a: Float32Array | Float64Array, name: string, file: string): void {
  const i = firstNonFinite(a);
  if (i >= 0) throw new SaeError('ERR_NONFINITE', `${file}: tensor '${name}' holds ${a[i]} at element ${i}; the checkpoint is corrupt or diverged`);
}

/** The names of tensors in `st` outside `allowed`. */
export function extraTensors(st: SafetensorsFile, allowed: Iterable<string>): string[] {
  const ok = new Set(allowed);
  return [...st.tensors.keys()].filter((n) => !ok.has(n));
}

/** float32 -> IEEE half bit pattern, round to nearest even (overflow -> Inf, as torch's .half()). */
export function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r += 1;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r += 1;
    if (r === 0x400) {
      r = 0;
      e += 1;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** float32 -> bfloat16 bit pattern, round to nearest even (as torch's .bfloat16()). */
export function floatToBfloat16(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Bit patterns of `a` in float16 or bfloat16. */
export function toHalfBits(a: Float32Array, precision: 'float16' | 'bfloat16'): Uint16Array {
  const out = new Uint16Array(a.length);
  const conv = precision === 'float16' ? floatToHalf : floatToBfloat16;
  for (let i = 0; i < a.length; i++) out[i] = conv(a[i]);
  return out;
}

/** A tensor to write in float32, float16 or bfloat16 (16-bit types rounded to nearest even). */
export function tensorIn(precision: 'float32' | 'float16' | 'bfloat16', shape: number[], data: Float32Array): TensorToWrite {
  return precision === 'float32' ? { dtype: 'F32', shape, data } : { dtype: precision === 'float16' ? 'F16' : 'BF16', shape, data: toHalfBits(data, precision) };
}

/** `a` rounded to `precision` (a copy, as float32; float32/float64 return `a`). */
export function roundTo(a: Float32Array, precision: Precision): Float32Array {
  if (precision === 'float32' || precision === 'float64') return a;
  const bits = toHalfBits(a, precision);
  const out = new Float32Array(a.length);
  if (precision === 'float16') for (let i = 0; i < a.length; i++) out[i] = halfToFloat(bits[i]);
  else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < a.length; i++) u[i] = bits[i] << 16;
  }
  return out;
}

/**
 * rescale_acts_by_decoder_norm (SAELens): pre_j * n_j, decode with z_j / n_j, n_j = ||W_dec[j]||.
 * Folded: W_enc[:, j] *= n_j, b_enc[j] *= n_j, W_dec[j] /= n_j (rows with n_j = 0 never contribute).
 */
export function foldDecoderNorms(w: SaeWeights): void {
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
export function foldInputBias(w: SaeWeights): void {
  const { rows: d, cols: m } = w.W_enc;
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += w.b_dec[c] * w.W_enc.data[c * m + j];
    w.b_enc[j] += s;
  }
}

/** Decoding with (z * s) W_dec (SAELens finetuning_scaling_factor) = z (diag(s) W_dec): W_dec[j] *= s_j. */
export function foldLatentScale(w: SaeWeights, s: Float32Array): void {
  const { rows: m, cols: d } = w.W_dec;
  for (let j = 0; j < m; j++) for (let c = 0; c < d; c++) w.W_dec.data[j * d + c] *= s[j];
}

/**
 * Input scaled by c before the SAE (x' = c x) and its output divided by c: the same model on x is
 * W_enc *= c, b_dec /= c, W_dec /= c (SAELens fold_activation_norm_scaling_factor). c = sqrt(d) turns
 * SAELens's constant_norm_rescale (x -> sqrt(d) x / ||x||) into our 'l2' input (x / ||x||).
 */
export function foldInputScale(w: SaeWeights, c: number): void {
  for (let i = 0; i < w.W_enc.data.length; i++) w.W_enc.data[i] *= c;
  for (let i = 0; i < w.W_dec.data.length; i++) w.W_dec.data[i] /= c;
  for (let i = 0; i < w.b_dec.length; i++) w.b_dec[i] /= c;
}

/** A copy of weights (folds work in place). */
export function copyWeights(w: SaeWeights): SaeWeights {
  return {
    W_enc: { rows: w.W_enc.rows, cols: w.W_enc.cols, data: w.W_enc.data.slice() },
    b_enc: w.b_enc.slice(),
    W_dec: { rows: w.W_dec.rows, cols: w.W_dec.cols, data: w.W_dec.data.slice() },
    b_dec: w.b_dec.slice(),
  };
}

/** A positive integer field of a config (ERR_FORMAT otherwise). */
export function positiveInt(v: unknown, what: string, file: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    throw new SaeError('ERR_FORMAT', `${file}: ${what} must be a positive integer${max < Number.MAX_SAFE_INTEGER ? ` <= ${max}` : ''}, got ${JSON.stringify(v) ?? String(v)}`);
  return v;
}

export function boolField(cfg: Json, key: string, fallback: boolean, file: string): boolean {
  const v = cfg[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new SaeError('ERR_FORMAT', `${file}: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
