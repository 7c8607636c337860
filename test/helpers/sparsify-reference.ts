/**
 * Plain TypeScript reimplementation of EleutherAI sparsify for the interop tests (float64, no lib/ code):
 * cfg.json as SparseCoder.save_to_disk writes it (SparseCoderConfig.to_dict() + d_in; older releases),
 * SparseCoder.load_from_disk (d_in popped, from_dict(drop_extra_fields), m = num_latents or
 * d_in * expansion_factor, parameters in the first tensor's dtype, strict load_model), and the forward
 * pass: ReLU((x - b_dec) W^T + b), top-k, sum_j acts_j W_dec[j] + b_dec.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { readPlainSafetensors, writePlainSafetensors, type PlainDtype } from './st-plain.js';

export interface PlainSparsify {
  d: number;
  m: number;
  k: number;
  enc: Float64Array; // [m, d]
  bias: Float64Array;
  W_dec: Float64Array; // [m, d]
  b_dec: Float64Array;
  dtype: PlainDtype;
}

/** SparseCoderConfig defaults (sparsify 1.x). */
const DEFAULTS = { activation: 'topk', expansion_factor: 32, normalize_decoder: true, num_latents: 0, k: 32, multi_topk: false, skip_connection: false, transcode: false };

/** cfg.json of `release`: '1.x' (SparseCoderConfig + d_in) or '2024' (the older SaeConfig, with `signed`). */
export function sparsifyCfg(release: '1.x' | '2024', o: { d: number; k: number; numLatents: number; expansionFactor: number }): Record<string, unknown> {
  if (release === '2024') return { expansion_factor: o.expansionFactor, normalize_decoder: true, num_latents: o.numLatents, k: o.k, signed: false, d_in: o.d };
  return { activation: 'topk', expansion_factor: o.expansionFactor, normalize_decoder: true, num_latents: o.numLatents, k: o.k, multi_topk: false, skip_connection: false, transcode: false, d_in: o.d };
}

export function writeSparsify(dir: string, cfg: Record<string, unknown>, w: { enc: ArrayLike<number>; bias: ArrayLike<number>; W_dec: ArrayLike<number>; b_dec: ArrayLike<number> }, dtype: PlainDtype): void {
  mkdirSync(dir, { recursive: true });
  const d = cfg.d_in as number;
  const m = w.bias.length;
  writePlainSafetensors(
    path.join(dir, 'sae.safetensors'),
    {
      'encoder.weight': { dtype, shape: [m, d], values: w.enc },
      'encoder.bias': { dtype, shape: [m], values: w.bias },
      W_dec: { dtype, shape: [m, d], values: w.W_dec },
      b_dec: { dtype, shape: [d], values: w.b_dec },
    },
    { format: 'pt' },
  );
  writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
}

/** SparseCoder.load_from_disk(dir) (decoder=True). */
export function sparsifyLoad(dir: string): PlainSparsify {
  const raw = JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
  if (!('d_in' in raw)) throw new Error("KeyError: 'd_in'");
  const d = raw.d_in as number;
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) if (key in raw) cfg[key] = raw[key]; // drop_extra_fields=True
  if (cfg.activation !== 'topk' || cfg.skip_connection || cfg.transcode) throw new Error('test reference: topk autoencoders only');
  const m = (cfg.num_latents as number) || d * (cfg.expansion_factor as number);
  const st = readPlainSafetensors(path.join(dir, 'sae.safetensors'));
  const want: Record<string, number[]> = { 'encoder.weight': [m, d], 'encoder.bias': [m], W_dec: [m, d], b_dec: [d] };
  const names = [...st.tensors.keys()];
  const missing = Object.keys(want).filter((n) => !st.tensors.has(n));
  const unexpected = names.filter((n) => !(n in want));
  if (missing.length || unexpected.length) throw new Error(`load_model(strict): missing ${missing.join(',')} unexpected ${unexpected.join(',')}`);
  for (const [n, shape] of Object.entries(want))
    if (JSON.stringify(st.tensors.get(n)!.shape) !== JSON.stringify(shape)) throw new Error(`size mismatch for ${n}: ${JSON.stringify(st.tensors.get(n)!.shape)} vs ${JSON.stringify(shape)}`);
  const dtype = st.tensors.get(st.order[0])!.dtype;
  for (const n of names) if (st.tensors.get(n)!.dtype !== dtype) throw new Error('test reference: mixed dtypes');
  return { d, m, k: cfg.k as number, enc: st.tensors.get('encoder.weight')!.values, bias: st.tensors.get('encoder.bias')!.values, W_dec: st.tensors.get('W_dec')!.values, b_dec: st.tensors.get('b_dec')!.values, dtype };
}

/** sparsify encode + decode: dense activations [n, m] and reconstructions [n, d]. */
export function sparsifyForward(s: PlainSparsify, x: ArrayLike<number>, n: number): { acts: Float64Array; recon: Float64Array } {
  const { d, m, k } = s;
  const acts = new Float64Array(n * m);
  const recon = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    const pre = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let t = s.bias[j];
      for (let i = 0; i < d; i++) t += (x[r * d + i] - s.b_dec[i]) * s.enc[j * d + i];
      pre[j] = Math.max(0, t);
    }
    const top = Array.from(pre, (v, j) => ({ v, j })).sort((p, q) => q.v - p.v).slice(0, k);
    for (const t of top) acts[r * m + t.j] = t.v;
    for (let i = 0; i < d; i++) {
      let t = s.b_dec[i];
      for (const { v, j } of top) t += v * s.W_dec[j * d + i];
      recon[r * d + i] = t;
    }
  }
  return { acts, recon };
}
