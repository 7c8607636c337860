/**
 * Native evaluation kernels and their plain TypeScript references:
 *  - retrievalRanks: exact retrieval ranks over sparse codes by cosine, ties counted against the query
 *    (the paper's Recall@K); an inverted index over the items, float64, bitwise equal to the reference;
 *  - rankingMetrics: AP, RR, NDCG@10, median rank, P@K, R@K of dense queries against dense items by cosine
 *    (concept steering); only the relevant items are sorted;
 *  - decoderDistanceHistogram: the joint histogram of co-activation correlation x decoder cosine distance over
 *    alive latent pairs (the paper's Figure 2).
 * Their plain references (`...Reference`, in test/helpers/eval-references.ts) compute the same definitions the
 * obvious way (dense vectors, a full stable sort, a double loop); the tests compare both. The argument checks
 * (`check...Args`) are exported for them.
 */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import type { NativeRankingMetrics } from '../native/types.js';
import type { Matrix, SparseCodes } from '../types.js';
import { checkCodes, checkMatrix, describe } from '../validate.js';

// ---- retrieval ---------------------------------------------------------------------------------

/** Query q's ground-truth items are items[offsets[q] .. offsets[q+1]); offsets.length = queries.rows + 1. */
export interface GroundTruth {
  offsets: Int32Array;
  items: Int32Array;
}

/** Per query: the 0-based pessimistic rank of its best ground-truth item, and the size of its tie group. */
export interface RetrievalRanks {
  ranks: Int32Array;
  ties: Int32Array;
}

const MAX_LATENTS = 2 ** 30;

export function checkRetrievalArgs(queries: SparseCodes, items: SparseCodes, gt: GroundTruth, opts: { m?: number } | undefined): number {
  checkCodes(queries, 'queries', Infinity);
  checkCodes(items, 'items', Infinity);
  if (typeof gt !== 'object' || gt === null) throw new SaeError('ERR_ARG', `gt must be a GroundTruth { offsets, items }, got ${describe(gt)}`);
  if (!(gt.offsets instanceof Int32Array)) throw new SaeError('ERR_DTYPE', `gt.offsets must be an Int32Array, got ${describe(gt.offsets)}`);
  if (!(gt.items instanceof Int32Array)) throw new SaeError('ERR_DTYPE', `gt.items must be an Int32Array, got ${describe(gt.items)}`);
  const Q = queries.rows, off = gt.offsets;
  if (off.length !== Q + 1) throw new SaeError('ERR_SHAPE', `gt.offsets has ${off.length} entries but queries.rows + 1 = ${Q + 1} are needed`);
  if (off[0] < 0) throw new SaeError('ERR_ARG', `ground truth: offsets[0] = ${off[0]} is negative`);
  for (let q = 0; q < Q; q++) {
    if (off[q + 1] < off[q]) throw new SaeError('ERR_ARG', `ground truth: offsets must be ascending, but offsets[${q + 1}] = ${off[q + 1]} < offsets[${q}] = ${off[q]}`);
    if (off[q + 1] === off[q]) throw new SaeError('ERR_ARG', `ground truth: query ${q} has no ground-truth item (every query needs at least one)`);
  }
  if (off[Q] > gt.items.length)
    throw new SaeError('ERR_SHAPE', `ground truth: offsets end at ${off[Q]} but there are only ${gt.items.length} ground-truth items`);
  for (let p = off[0]; p < off[Q]; p++) {
    const i = gt.items[p];
    if (i < 0 || i >= items.rows) throw new SaeError('ERR_RANGE', `ground truth: item ${i} (entry ${p}) is outside [0, items = ${items.rows})`);
  }
  const m = opts?.m;
  if (m === undefined) return 0;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > MAX_LATENTS)
    throw new SaeError('ERR_ARG', `m must be an integer in [1, 2^30], got ${String(m)}`);
  return m;
}

function retrievalCall(queries: SparseCodes, items: SparseCodes, gt: GroundTruth, m: number) {
  return [queries.indices, queries.values, queries.rows, queries.k, items.indices, items.values, items.rows, items.k, gt.offsets, gt.items, m] as const;
}

/**
 * Exact retrieval ranks. Each code row is a sparse vector (slots with the same latent are summed; value-0 slots
 * are empty), L2-normalized (norm clamped at 1e-12: an all-zero code stays zero); score(q, i) = their dot
 * product (cosine) in float64, summed in ascending latent order, so identical rows score bitwise identically.
 * target(q) = the best score of q's ground-truth items; rank(q) = #{i : score >= target} - 1 (ties count
 * against the query); ties(q) = #{i : score == target}. m (default: max index + 1 over both code sets) bounds
 * the indices (ERR_RANGE outside [0, m)). Queries and items may have different k.
 */
export function retrievalRanks(queries: SparseCodes, items: SparseCodes, gt: GroundTruth, opts?: { m?: number }): RetrievalRanks {
  const m = checkRetrievalArgs(queries, items, gt, opts);
  const r = native().retrievalRanks(...retrievalCall(queries, items, gt, m));
  return { ranks: r.ranks, ties: r.ties };
}

/** retrievalRanks on a worker thread (the event loop stays free); the inputs must not change until it settles. */
export function retrievalRanksAsync(queries: SparseCodes, items: SparseCodes, gt: GroundTruth, opts?: { m?: number }): Promise<RetrievalRanks> {
  try {
    const m = checkRetrievalArgs(queries, items, gt, opts);
    return native()
      .retrievalRanksAsync(...retrievalCall(queries, items, gt, m))
      .then((r) => ({ ranks: r.ranks, ties: r.ties }));
  } catch (e) {
    return Promise.reject(e);
  }
}

// ---- ranking metrics ---------------------------------------------------------------------------

/** One entry per query; precisionAt[K] / recallAt[K] for each K asked for. All NaN for a query set with no relevant item. */
export interface RankingMetrics {
  ap: Float64Array;
  rr: Float64Array;
  ndcg10: Float64Array;
  medianRank: Float64Array;
  precisionAt: Record<number, Float64Array>;
  recallAt: Record<number, Float64Array>;
}

export const DEFAULT_RANKING_KS = [1, 5, 10, 50, 100];

export function checkRankingArgs(queries: Matrix, items: Matrix, relevant: Uint8Array, ks: number[] | undefined): Int32Array {
  checkMatrix(queries, 'queries');
  checkMatrix(items, 'items');
  if (queries.cols !== items.cols)
    throw new SaeError('ERR_SHAPE', `queries have ${queries.cols} columns but items have ${items.cols}: both must live in the same space`);
  if (!(relevant instanceof Uint8Array)) throw new SaeError('ERR_DTYPE', `relevant must be a Uint8Array, got ${describe(relevant)}`);
  if (relevant.length !== items.rows) throw new SaeError('ERR_SHAPE', `relevant has ${relevant.length} entries for ${items.rows} items`);
  const list = ks ?? DEFAULT_RANKING_KS;
  if (!Array.isArray(list)) throw new SaeError('ERR_ARG', `ks must be an array of integers >= 1, got ${describe(list)}`);
  for (const k of list)
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > 0x7fffffff) throw new SaeError('ERR_ARG', `ks must be integers >= 1, got ${String(k)}`);
  return Int32Array.from(list);
}

function toRankingMetrics(r: NativeRankingMetrics, ks: Int32Array, Q: number): RankingMetrics {
  const precisionAt: Record<number, Float64Array> = {}, recallAt: Record<number, Float64Array> = {};
  ks.forEach((k, j) => {
    precisionAt[k] = r.precisionAt.slice(j * Q, (j + 1) * Q);
    recallAt[k] = r.recallAt.slice(j * Q, (j + 1) * Q);
  });
  return { ap: r.ap, rr: r.rr, ndcg10: r.ndcg10, medianRank: r.medianRank, precisionAt, recallAt };
}

/**
 * Ranking metrics of each query against the items by cosine (both sides L2-normalized internally, norms clamped at
 * 1e-12). The items are ranked by a stable sort on descending score (ties: ascending item index); with R the
 * relevant items' 0-based ranks ascending (nrel = |R|): AP = (1/nrel) sum_j (j+1)/(R_j+1); RR = 1/(R_0+1);
 * NDCG@10 = DCG/IDCG (gain 1/log2(rank+2) for ranks < 10); medianRank = numpy's median of R; P@K = #{R_j < K}/K;
 * R@K = #{R_j < K}/nrel. `relevant` (1 = relevant, one entry per item) is shared by all queries. ks default
 * [1, 5, 10, 50, 100]. Native dot products are float32 (SIMD), the scaling float64.
 */
export function rankingMetrics(queries: Matrix, items: Matrix, relevant: Uint8Array, ks?: number[]): RankingMetrics {
  const k = checkRankingArgs(queries, items, relevant, ks);
  const r = native().rankingMetrics(queries.data, queries.rows, items.data, items.rows, items.cols, relevant, k);
  return toRankingMetrics(r, k, queries.rows);
}

/** rankingMetrics on a worker thread; the inputs must not change until it settles. */
export function rankingMetricsAsync(queries: Matrix, items: Matrix, relevant: Uint8Array, ks?: number[]): Promise<RankingMetrics> {
  try {
    const k = checkRankingArgs(queries, items, relevant, ks);
    return native()
      .rankingMetricsAsync(queries.data, queries.rows, items.data, items.rows, items.cols, relevant, k)
      .then((r) => toRankingMetrics(r, k, queries.rows));
  } catch (e) {
    return Promise.reject(e);
  }
}

// ---- decoder-distance histogram ----------------------------------------------------------------

/** counts is nCorrBins x distBins (row-major); pairs and sum (of distances) have one entry per correlation bin. */
export interface DistanceHistogram {
  corrEdges: number[];
  distBins: number;
  counts: Float64Array;
  pairs: Float64Array;
  sum: Float64Array;
}

export const DEFAULT_CORR_EDGES = [0, 0.2, 0.4, 0.6, 0.8, 1];
export const DEFAULT_DIST_BINS = 200;

export interface HistogramOptions {
  corrEdges?: number[];
  distBins?: number;
}

export function checkHistogramArgs(
  imageDec: Matrix, textDec: Matrix, corr: Matrix, aliveImage: Uint8Array, aliveText: Uint8Array, opts: HistogramOptions | undefined,
): { edges: number[]; distBins: number } {
  checkMatrix(imageDec, 'imageDec');
  checkMatrix(textDec, 'textDec');
  checkMatrix(corr, 'corr');
  if (textDec.cols !== imageDec.cols)
    throw new SaeError('ERR_SHAPE', `imageDec has ${imageDec.cols} columns but textDec has ${textDec.cols}: decoders must share d`);
  if (corr.rows !== imageDec.rows || corr.cols !== textDec.rows)
    throw new SaeError('ERR_SHAPE', `corr is ${corr.rows}x${corr.cols} but the decoders have ${imageDec.rows} image and ${textDec.rows} text latents`);
  for (const [name, a, n] of [['aliveImage', aliveImage, imageDec.rows], ['aliveText', aliveText, textDec.rows]] as const) {
    if (!(a instanceof Uint8Array)) throw new SaeError('ERR_DTYPE', `${name} must be a Uint8Array, got ${describe(a)}`);
    if (a.length !== n) throw new SaeError('ERR_SHAPE', `${name} has ${a.length} entries for ${n} latents`);
  }
  const edges = opts?.corrEdges ?? DEFAULT_CORR_EDGES;
  if (!Array.isArray(edges) || edges.length < 2 || edges.length > 65536)
    throw new SaeError('ERR_ARG', `corrEdges must be an array of 2 to 65536 ascending numbers, got ${describe(edges)}`);
  edges.forEach((e, b) => {
    if (typeof e !== 'number' || !Number.isFinite(e)) throw new SaeError('ERR_ARG', `corrEdges[${b}] is not a finite number: ${String(e)}`);
    if (b > 0 && !(e > edges[b - 1])) throw new SaeError('ERR_ARG', `corrEdges must be strictly ascending, but corrEdges[${b}] = ${e} <= corrEdges[${b - 1}]`);
  });
  const distBins = opts?.distBins ?? DEFAULT_DIST_BINS;
  if (typeof distBins !== 'number' || !Number.isInteger(distBins) || distBins < 1 || distBins > 2 ** 24)
    throw new SaeError('ERR_ARG', `distBins must be an integer in [1, 2^24], got ${String(distBins)}`);
  if ((edges.length - 1) * distBins > 1e8) throw new SaeError('ERR_ARG', '(corrEdges - 1) x distBins must be <= 1e8 bins');
  return { edges: [...edges], distBins };
}

/**
 * Joint histogram over alive pairs (aliveImage[i] && aliveText[j]): c = corr[i, j] falls in bin b when
 * corrEdges[b] <= c < corrEdges[b+1] (the last bin closed on the right; other pairs are skipped);
 * dist = 1 - cos(imageDec row i, textDec row j) (norms clamped at 1e-12), in [0, 2]; its bin is
 * min(distBins-1, floor(dist/2 * distBins)) (negatives to 0). counts[b*distBins + bin] += 1, pairs[b] += 1,
 * sum[b] += dist. corr[i*m_t + j] is the correlation of image latent i with text latent j; only alive pairs
 * are read (a NaN there is ERR_NONFINITE). Native dot products are float32 (SIMD), distances float64.
 */
export function decoderDistanceHistogram(
  imageDec: Matrix, textDec: Matrix, corr: Matrix, aliveImage: Uint8Array, aliveText: Uint8Array, opts?: HistogramOptions,
): DistanceHistogram {
  const { edges, distBins } = checkHistogramArgs(imageDec, textDec, corr, aliveImage, aliveText, opts);
  const r = native().decoderDistanceHistogram(
    imageDec.data, imageDec.rows, textDec.data, textDec.rows, imageDec.cols, corr.data, aliveImage, aliveText, Float64Array.from(edges), distBins,
  );
  return { corrEdges: edges, distBins, counts: r.counts, pairs: r.pairs, sum: r.sum };
}
