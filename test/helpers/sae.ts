/** Glue between the float64 reference parameters and native SAEs. */
import { TopKSAE, type SaeWeights, type TopKSAEOptions } from '../../lib/index.js';
import type { RefParams } from './reference.js';

export function toWeights(p: RefParams): SaeWeights {
  return {
    W_enc: { rows: p.d, cols: p.m, data: Float32Array.from(p.W_enc) },
    b_enc: Float32Array.from(p.b_enc),
    W_dec: { rows: p.m, cols: p.d, data: Float32Array.from(p.W_dec) },
    b_dec: Float32Array.from(p.b_dec),
  };
}

export function fromWeights(w: SaeWeights): RefParams {
  return {
    d: w.W_enc.rows,
    m: w.W_enc.cols,
    W_enc: Float64Array.from(w.W_enc.data),
    b_enc: Float64Array.from(w.b_enc),
    W_dec: Float64Array.from(w.W_dec.data),
    b_dec: Float64Array.from(w.b_dec),
  };
}

/** A native SAE holding the reference parameters, always on the CPU engine: the reference comparisons test the CPU kernels. */
export function saeFromRef(p: RefParams, options: Omit<TopKSAEOptions, 'd' | 'm' | 'device'>): TopKSAE {
  return TopKSAE.fromWeights(toWeights(p), { ...options, device: 'cpu' });
}

/** Largest |a - b| / (atol + rtol |b|) over the arrays (<= 1 means within tolerance). */
export function worstRatio(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): { ratio: number; at: number } {
  // Any non-finite value, or a length mismatch, fails the comparison (ratio Infinity): a NaN must never hide an error.
  if (a.length !== b.length) return { ratio: Infinity, at: Math.min(a.length, b.length) };
  let ratio = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return { ratio: Infinity, at: i };
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= ratio)) {
      ratio = r;
      at = i;
    }
  }
  return { ratio, at };
}
