/**
 * MonoSemanticity score (Pach et al.; paper Figure 8; reference-implementation §11.4). For latent j with
 * activations a over N inputs, min-max normalized a~ = (a - min) / max(max - min, 1e-12), and an external
 * embedding E of the same inputs (rows L2-normalized), S = E E^T:
 *   MS_j = (a~^T S a~ - sum a~^2) / ((sum a~)^2 - sum a~^2)       (0 when the denominator <= 1e-12),
 * the activation-weighted mean similarity of distinct inputs. a~^T S a~ = ||E^T a~||^2 and E^T a~ is
 * accumulated from the sparse codes (E^T a~ = (E^T a - min E^T 1) / range), so S is never formed and the cost
 * is O(N k d_ext).
 */
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { Matrix, SparseCodes } from '../types.js';
import type { EvalModel } from './model.js';

export interface MsSide {
  /** Per latent (NaN where the latent fired fewer than minFires times). */
  scores: Float64Array;
  fires: Float64Array;
  mean: number;
  median: number;
  /** Latents scored (fired at least minFires times). */
  latents: number;
  /** Scores of the scored latents, descending (Figure 8's curve). */
  sorted: Float64Array;
}

export interface MsResult {
  image: MsSide;
  text: MsSide;
  minFires: number;
  rows: { image: number; text: number };
  seconds: number;
}

/** MS of every latent from codes and the external embeddings of the same rows. */
export function monosemanticityScores(codes: SparseCodes, external: Matrix, m: number, minFires = 2): MsSide {
  const N = codes.rows, D = external.cols;
  if (!Number.isInteger(minFires) || minFires < 1) throw new SaeError('ERR_ARG', `minFires must be an integer >= 1, got ${minFires}`);
  if (external.rows !== N) throw new SaeError('ERR_SHAPE', `the external embedding file has ${external.rows} rows for ${N} coded inputs: it must embed the same inputs in the same order`);
  const E = new Float64Array(N * D);
  const Esum = new Float64Array(D);
  for (let r = 0; r < N; r++) {
    let s = 0;
    for (let c = 0; c < D; c++) {
      const v = external.data[r * D + c];
      if (!Number.isFinite(v)) throw new SaeError('ERR_NONFINITE', `row ${r} of the external embeddings holds ${v}`);
      s += v * v;
    }
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < D; c++) {
      E[r * D + c] = external.data[r * D + c] * inv;
      Esum[c] += E[r * D + c];
    }
  }
  const fires = new Float64Array(m), sa = new Float64Array(m), sa2 = new Float64Array(m);
  const mn = new Float64Array(m).fill(Infinity), mx = new Float64Array(m).fill(-Infinity);
  const U = new Float64Array(m * D);
  for (let r = 0; r < N; r++)
    for (let s = 0; s < codes.k; s++) {
      const v = codes.values[r * codes.k + s];
      if (v === 0) continue;
      const j = codes.indices[r * codes.k + s];
      fires[j]++;
      sa[j] += v;
      sa2[j] += v * v;
      if (v < mn[j]) mn[j] = v;
      if (v > mx[j]) mx[j] = v;
      const o = j * D, e = r * D;
      for (let c = 0; c < D; c++) U[o + c] += v * E[e + c];
    }
  // Latents that fire on every input have min > 0: their normalized sums are taken in a second, centred
  // pass (expanding (a - min)^2 loses precision when the values barely vary).
  const full = new Map<number, { s1: number; s2: number; u: Float64Array }>();
  for (let j = 0; j < m; j++) if (fires[j] === N && N >= minFires) full.set(j, { s1: 0, s2: 0, u: new Float64Array(D) });
  if (full.size)
    for (let r = 0; r < N; r++)
      for (let s = 0; s < codes.k; s++) {
        const v = codes.values[r * codes.k + s];
        const f = v === 0 ? undefined : full.get(codes.indices[r * codes.k + s]);
        if (!f) continue;
        const j = codes.indices[r * codes.k + s];
        const t = (v - mn[j]) / Math.max(mx[j] - mn[j], 1e-12);
        f.s1 += t;
        f.s2 += t * t;
        for (let c = 0; c < D; c++) f.u[c] += t * E[r * D + c];
      }
  const scores = new Float64Array(m).fill(NaN);
  const kept: number[] = [];
  for (let j = 0; j < m; j++) {
    if (fires[j] < minFires) continue;
    let s1: number, s2: number, quad = 0;
    const f = full.get(j);
    if (f) {
      s1 = f.s1;
      s2 = f.s2;
      for (let c = 0; c < D; c++) quad += f.u[c] * f.u[c];
    } else {
      // Inputs where the latent is silent have activation 0, the minimum (codes are non-negative).
      const lo = Math.min(0, mn[j]);
      const range = Math.max(Math.max(0, mx[j]) - lo, 1e-12);
      s1 = (sa[j] - N * lo) / range;
      s2 = (sa2[j] - 2 * lo * sa[j] + N * lo * lo) / (range * range);
      for (let c = 0; c < D; c++) {
        const t = (U[j * D + c] - lo * Esum[c]) / range;
        quad += t * t;
      }
    }
    const den = s1 * s1 - s2;
    scores[j] = den <= 1e-12 ? 0 : (quad - s2) / den;
    kept.push(scores[j]);
  }
  const sorted = Float64Array.from(kept).sort().reverse();
  const n = sorted.length;
  const median = n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { scores, fires, mean: n ? kept.reduce((a, b) => a + b, 0) / n : NaN, median, latents: n, sorted };
}

export async function evaluateMonosemanticity(
  model: EvalModel,
  inputs: Record<Modality, Matrix>,
  external: Record<Modality, Matrix>,
  opts: { minFires?: number } = {},
): Promise<MsResult> {
  const t0 = performance.now();
  const minFires = opts.minFires ?? 2;
  const side = async (s: Modality) => monosemanticityScores(await model.encode(s, model.prepare(s, inputs[s])), external[s], model.m, minFires);
  const image = await side('image');
  const text = await side('text');
  return { image, text, minFires, rows: { image: inputs.image.rows, text: inputs.text.rows }, seconds: (performance.now() - t0) / 1000 };
}
