/**
 * MonoSemanticity score (Pach et al.; paper Figure 8; reference-implementation §11.4). For latent j with
 * activations a over N inputs, min-max normalized a~ = (a - min) / max(max - min, 1e-12), and an external
 * embedding E of the same inputs (rows L2-normalized), S = E E^T:
 *   MS_j = (a~^T S a~ - sum a~^2) / ((sum a~)^2 - sum a~^2)       (0 when the denominator <= 1e-12),
 * the activation-weighted mean similarity of distinct inputs. a~^T S a~ = ||E^T a~||^2 and E^T a~ is
 * accumulated from the sparse codes (E^T a~ = (E^T a - min E^T 1) / range), so S is never formed and the cost
 * is O(N k d_ext), in native code (native/eval/monosemanticity.cc; plain references in
 * test/helpers/eval-references.ts).
 */
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
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

function checkMsArgs(codes: SparseCodes, external: Matrix, minFires: number): void {
  if (!Number.isInteger(minFires) || minFires < 1) throw new SaeError('ERR_ARG', `minFires must be an integer >= 1, got ${minFires}`);
  if (external.rows !== codes.rows) throw new SaeError('ERR_SHAPE', `the external embedding file has ${external.rows} rows for ${codes.rows} coded inputs: it must embed the same inputs in the same order`);
}

function nativeArgs(codes: SparseCodes, external: Matrix, m: number, minFires: number) {
  return [codes.indices, codes.values, codes.rows, codes.k, external.data, external.cols, m, minFires] as const;
}

/** A side's summary from the per-latent scores: the scored latents' (fired >= minFires times) mean, median and descending curve. */
function msSide(scores: Float64Array, fires: Float64Array, minFires: number): MsSide {
  const kept = scores.filter((_, j) => fires[j] >= minFires);
  const sorted = Float64Array.from(kept).sort().reverse();
  const n = sorted.length;
  const median = n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { scores, fires, mean: n ? kept.reduce((a, b) => a + b, 0) / n : NaN, median, latents: n, sorted };
}

/**
 * MS of every latent from codes and the external embeddings of the same rows (native: O(N k d_ext) through
 * posting lists per latent, float64 sums in row order; see native/eval/monosemanticity.h).
 */
export function monosemanticityScores(codes: SparseCodes, external: Matrix, m: number, minFires = 2): MsSide {
  checkMsArgs(codes, external, minFires);
  const r = native().monosemanticityScores(...nativeArgs(codes, external, m, minFires));
  return msSide(r.scores, r.fires, minFires);
}

/** monosemanticityScores on a worker thread; the inputs must not change until it settles. */
export async function monosemanticityScoresAsync(codes: SparseCodes, external: Matrix, m: number, minFires = 2): Promise<MsSide> {
  checkMsArgs(codes, external, minFires);
  const r = await native().monosemanticityScoresAsync(...nativeArgs(codes, external, m, minFires));
  return msSide(r.scores, r.fires, minFires);
}

export async function evaluateMonosemanticity(
  model: EvalModel,
  inputs: Record<Modality, Matrix>,
  external: Record<Modality, Matrix>,
  opts: { minFires?: number } = {},
): Promise<MsResult> {
  const t0 = performance.now();
  const minFires = opts.minFires ?? 2;
  const side = async (s: Modality) => monosemanticityScoresAsync(await model.encode(s, model.prepare(s, inputs[s])), external[s], model.m, minFires);
  const image = await side('image');
  const text = await side('text');
  return { image, text, minFires, rows: { image: inputs.image.rows, text: inputs.text.rows }, seconds: (performance.now() - t0) / 1000 };
}
