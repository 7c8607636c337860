/**
 * Plain TypeScript references of the evaluation kernels (lib/eval/kernels.ts, lib/eval/monosemanticity.ts):
 * the same definitions computed the obvious way (dense vectors, a full stable sort, a double loop, O(N^2)
 * pairs), for the tests that compare the fast kernels with them. They take the kernels' argument checks.
 */
import { SaeError } from '../../lib/errors.js';
import {
  checkHistogramArgs,
  checkRankingArgs,
  checkRetrievalArgs,
  type DistanceHistogram,
  type GroundTruth,
  type HistogramOptions,
  type RankingMetrics,
  type RetrievalRanks,
} from '../../lib/eval/kernels.js';
import type { MsSide } from '../../lib/eval/monosemanticity.js';
import type { Matrix, SparseCodes } from '../../lib/types.js';

function checkCodeValues(c: SparseCodes, name: string, m: number): void {
  for (let p = 0; p < c.rows * c.k; p++) {
    const j = c.indices[p];
    if (j < 0 || j >= m)
      throw new SaeError('ERR_RANGE', `${name}.indices has latent ${j} at row ${Math.floor(p / c.k)}, slot ${p % c.k}, outside [0, m = ${m})`);
  }
  for (let p = 0; p < c.rows * c.k; p++)
    if (!Number.isFinite(c.values[p]))
      throw new SaeError('ERR_NONFINITE', `${name}.values has a non-finite value (${String(c.values[p])}) at row ${Math.floor(p / c.k)}, column ${p % c.k}`);
}

/** Row r of the codes as a dense unit vector of length m (float64). */
function unitDense(c: SparseCodes, r: number, m: number): Float64Array {
  const x = new Float64Array(m);
  for (let s = 0; s < c.k; s++) x[c.indices[r * c.k + s]] += c.values[r * c.k + s];
  let ss = 0;
  for (let l = 0; l < m; l++) ss += x[l] * x[l];
  const norm = Math.max(Math.sqrt(ss), 1e-12);
  for (let l = 0; l < m; l++) x[l] = x[l] / norm;
  return x;
}

/** retrievalRanks computed densely in TypeScript (O(queries x items x nnz(query)) after densifying the items). */
export function retrievalRanksReference(queries: SparseCodes, items: SparseCodes, gt: GroundTruth): RetrievalRanks {
  checkRetrievalArgs(queries, items, gt, undefined);
  let m = 0;
  for (const c of [queries, items]) for (const j of c.indices) m = Math.max(m, j + 1);
  checkCodeValues(queries, 'queries', m);
  checkCodeValues(items, 'items', m);
  const I = items.rows;
  const dense = Array.from({ length: I }, (_, i) => unitDense(items, i, m));
  const ranks = new Int32Array(queries.rows), ties = new Int32Array(queries.rows);
  const score = new Float64Array(I);
  for (let q = 0; q < queries.rows; q++) {
    const qv = unitDense(queries, q, m);
    const nz: number[] = [];
    for (let l = 0; l < m; l++) if (qv[l] !== 0) nz.push(l);
    for (let i = 0; i < I; i++) {
      let s = 0;
      for (const l of nz) s += qv[l] * dense[i][l]; // ascending latents; the skipped terms are all zero
      score[i] = s;
    }
    let target = -Infinity;
    for (let p = gt.offsets[q]; p < gt.offsets[q + 1]; p++) target = Math.max(target, score[gt.items[p]]);
    let ge = 0, eq = 0;
    for (let i = 0; i < I; i++) {
      if (score[i] >= target) ge++;
      if (score[i] === target) eq++;
    }
    ranks[q] = ge - 1;
    ties[q] = eq;
  }
  return { ranks, ties };
}

function checkFinite(x: Matrix, name: string): void {
  for (let p = 0; p < x.data.length; p++)
    if (!Number.isFinite(x.data[p]))
      throw new SaeError('ERR_NONFINITE', `${name} has a non-finite value (${Number.isNaN(x.data[p]) ? 'NaN' : 'Inf'}) at row ${Math.floor(p / x.cols)}, column ${p % x.cols}`);
}

/** 1 / max(||row||, 1e-12) per row (squares summed in float64, in column order). */
function inverseNorms(x: Matrix): Float64Array {
  const inv = new Float64Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    let ss = 0;
    for (let c = 0; c < x.cols; c++) ss += x.data[r * x.cols + c] * x.data[r * x.cols + c];
    inv[r] = 1 / Math.max(Math.sqrt(ss), 1e-12);
  }
  return inv;
}

/** rankingMetrics in plain TypeScript: float64 dot products and a full stable sort per query. */
export function rankingMetricsReference(queries: Matrix, items: Matrix, relevant: Uint8Array, ks?: number[]): RankingMetrics {
  const kList = Array.from(checkRankingArgs(queries, items, relevant, ks));
  checkFinite(queries, 'queries');
  checkFinite(items, 'items');
  const Q = queries.rows, N = items.rows, d = items.cols;
  const out: RankingMetrics = {
    ap: new Float64Array(Q), rr: new Float64Array(Q), ndcg10: new Float64Array(Q), medianRank: new Float64Array(Q),
    precisionAt: {}, recallAt: {},
  };
  for (const k of kList) {
    out.precisionAt[k] = new Float64Array(Q);
    out.recallAt[k] = new Float64Array(Q);
  }
  const iq = inverseNorms(queries), ix = inverseNorms(items);
  let nrel = 0;
  for (const v of relevant) if (v) nrel++;
  let idcg = 0;
  for (let j = 0; j < Math.min(nrel, 10); j++) idcg += 1 / Math.log2(j + 2);
  const score = new Float64Array(N);
  for (let q = 0; q < Q; q++) {
    if (nrel === 0) {
      out.ap[q] = out.rr[q] = out.ndcg10[q] = out.medianRank[q] = NaN;
      for (const k of kList) out.precisionAt[k][q] = out.recallAt[k][q] = NaN;
      continue;
    }
    for (let i = 0; i < N; i++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += queries.data[q * d + c] * items.data[i * d + c];
      score[i] = dot * iq[q] * ix[i];
    }
    const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => score[b] - score[a]); // stable: ties keep index order
    const R: number[] = [];
    order.forEach((item, rank) => {
      if (relevant[item]) R.push(rank);
    });
    let ap = 0, dcg = 0;
    R.forEach((r, j) => {
      ap += (j + 1) / (r + 1);
      if (r < 10) dcg += 1 / Math.log2(r + 2);
    });
    out.ap[q] = ap / nrel;
    out.rr[q] = 1 / (R[0] + 1);
    out.ndcg10[q] = dcg / idcg;
    out.medianRank[q] = nrel % 2 ? R[(nrel - 1) / 2] : (R[nrel / 2 - 1] + R[nrel / 2]) / 2;
    for (const k of kList) {
      const hits = R.filter((r) => r < k).length;
      out.precisionAt[k][q] = hits / k;
      out.recallAt[k][q] = hits / nrel;
    }
  }
  return out;
}

/** decoderDistanceHistogram in plain TypeScript (float64 dot products, one pass over the pairs in order). */
export function decoderDistanceHistogramReference(
  imageDec: Matrix, textDec: Matrix, corr: Matrix, aliveImage: Uint8Array, aliveText: Uint8Array, opts?: HistogramOptions,
): DistanceHistogram {
  const { edges, distBins } = checkHistogramArgs(imageDec, textDec, corr, aliveImage, aliveText, opts);
  checkFinite(imageDec, 'imageDec');
  checkFinite(textDec, 'textDec');
  const mi = imageDec.rows, mt = textDec.rows, d = imageDec.cols, nb = edges.length - 1;
  for (let i = 0; i < mi; i++)
    for (let j = 0; j < mt; j++)
      if (aliveImage[i] && aliveText[j] && !Number.isFinite(corr.data[i * mt + j]))
        throw new SaeError('ERR_NONFINITE', `corr has a non-finite value at row ${i}, column ${j} (both latents alive)`);
  const ia = inverseNorms(imageDec), it = inverseNorms(textDec);
  const counts = new Float64Array(nb * distBins), pairs = new Float64Array(nb), sum = new Float64Array(nb);
  for (let i = 0; i < mi; i++) {
    if (!aliveImage[i]) continue;
    for (let j = 0; j < mt; j++) {
      if (!aliveText[j]) continue;
      const c = corr.data[i * mt + j];
      let b = -1;
      for (let e = 0; e < nb; e++)
        if (edges[e] <= c && (c < edges[e + 1] || (e === nb - 1 && c === edges[nb]))) {
          b = e;
          break;
        }
      if (b < 0) continue;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += imageDec.data[i * d + k] * textDec.data[j * d + k];
      const dist = 1 - dot * ia[i] * it[j];
      const h = Math.min(distBins - 1, Math.max(0, Math.floor((dist / 2) * distBins)));
      counts[b * distBins + h] += 1;
      pairs[b] += 1;
      sum[b] += dist;
    }
  }
  return { corrEdges: edges, distBins, counts, pairs, sum };
}

/** Plain O(N^2) reference of one latent's score (tests). */
export function monosemanticityReference(a: ArrayLike<number>, external: Matrix): number {
  const N = a.length, D = external.cols;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < N; i++) (lo = Math.min(lo, a[i])), (hi = Math.max(hi, a[i]));
  const t = Array.from(a, (v) => (v - lo) / Math.max(hi - lo, 1e-12));
  const e = (i: number) => {
    let s = 0;
    for (let c = 0; c < D; c++) s += external.data[i * D + c] ** 2;
    return Math.max(Math.sqrt(s), 1e-12);
  };
  const norms = Array.from({ length: N }, (_, i) => e(i));
  let num = 0, den = 0;
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) {
      if (i === j) continue;
      let s = 0;
      for (let c = 0; c < D; c++) s += external.data[i * D + c] * external.data[j * D + c];
      num += t[i] * t[j] * (s / (norms[i] * norms[j]));
      den += t[i] * t[j];
    }
  return den <= 1e-12 ? 0 : num / den;
}

/**
 * monosemanticityScores as lib/ computed it in TypeScript before it went native (the same sums in the same order:
 * the native kernel must equal it bit for bit).
 */
export function monosemanticityScoresReference(codes: SparseCodes, external: Matrix, m: number, minFires = 2): MsSide {
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
