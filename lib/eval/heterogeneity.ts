/**
 * Cross-modal feature heterogeneity (paper Figure 2, App. D.1): for modality-specific SAEs, the cosine
 * distance 1 - cos(phi_i, psi_j) between image decoder row i and text decoder row j, for every pair of alive
 * latents, grouped by their co-activation correlation c_ij on paired training embeddings (bins [0, .2), ...,
 * [.8, 1]). Under perfect cross-modal alignment the high-correlation bins would sit at distance 0. Also the
 * distances of the pairs the assignment matched.
 */
import { AlignedPair } from '../align/aligned-pair.js';
import type { CorrelationResult } from '../align/correlation.js';
import { encodeAndCorrelate, fileBatches } from '../align/encode-correlate.js';
import { PairedEmbeddings, type Normalizer } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { alignmentRows, readRunNormalizer, runPaths } from '../run/layout.js';
import { TopKSAE } from '../sae/topk-sae.js';
import type { TrainConfig } from '../train/config.js';
import { decoderDistanceHistogram } from './kernels.js';
import { rowCosine } from './model.js';

export const CORR_EDGES = [0, 0.2, 0.4, 0.6, 0.8, 1];

export interface HeterogeneityBin {
  lo: number;
  hi: number;
  pairs: number;
  meanDistance: number;
  /** Histogram of distances over [0, 2] (distBins bins), normalized to a density (integrates to 1). */
  density: number[];
}

export interface HeterogeneityResult {
  bins: HeterogeneityBin[];
  distBins: number;
  aliveImage: number;
  aliveText: number;
  correlationRows: number;
  /** Distances of matched pairs (perm[i] for alive i), when a permutation was given. */
  matched: { pairs: number; mean: number; median: number } | null;
  seconds: number;
}

/** Exact co-activation correlation of two SAEs over paired rows (as the post-hoc alignment computes it). */
export async function correlateSaes(image: TopKSAE, text: TopKSAE, data: PairedEmbeddings, rows: Int32Array, norm: Normalizer, minFires = 1): Promise<CorrelationResult> {
  return encodeAndCorrelate(image, text, fileBatches(data, rows, norm), { minFires });
}

export function heterogeneity(image: TopKSAE, text: TopKSAE, corr: CorrelationResult, opts: { corrEdges?: number[]; distBins?: number; perm?: Int32Array } = {}): HeterogeneityResult {
  const t0 = performance.now();
  if (corr.correlation.rows !== image.m || corr.correlation.cols !== text.m)
    throw new SaeError('ERR_SHAPE', `the correlation is ${corr.correlation.rows}x${corr.correlation.cols} but the SAEs have ${image.m} and ${text.m} latents`);
  const edges = opts.corrEdges ?? CORR_EDGES;
  const distBins = opts.distBins ?? 100; // 0.02-wide bins: a readable density for a few hundred pairs per bin
  const wi = image.getWeights().W_dec, wt = text.getWeights().W_dec;
  const h = decoderDistanceHistogram(wi, wt, corr.correlation, corr.aliveA, corr.aliveB, { corrEdges: edges, distBins });
  const width = 2 / distBins;
  const bins: HeterogeneityBin[] = [];
  for (let b = 0; b + 1 < edges.length; b++) {
    const pairs = h.pairs[b];
    const density = Array.from(h.counts.subarray(b * distBins, (b + 1) * distBins), (c) => (pairs > 0 ? c / (pairs * width) : 0));
    bins.push({ lo: edges[b], hi: edges[b + 1], pairs, meanDistance: pairs > 0 ? h.sum[b] / pairs : NaN, density });
  }
  let matched: HeterogeneityResult['matched'] = null;
  if (opts.perm) {
    const d = wi.cols;
    const ds: number[] = [];
    for (let i = 0; i < image.m; i++) {
      const j = opts.perm[i];
      if (!corr.aliveA[i] || !corr.aliveB[j]) continue;
      ds.push(1 - rowCosine(wi.data, i, wt.data, j, d));
    }
    ds.sort((x, y) => x - y);
    const n = ds.length;
    matched = { pairs: n, mean: n ? ds.reduce((s, x) => s + x, 0) / n : NaN, median: n ? (n % 2 ? ds[(n - 1) / 2] : (ds[n / 2 - 1] + ds[n / 2]) / 2) : NaN };
  }
  let ai = 0, at = 0;
  for (const v of corr.aliveA) ai += v;
  for (const v of corr.aliveB) at += v;
  return { bins, distBins, aliveImage: ai, aliveText: at, correlationRows: corr.n, matched, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Figure 2 for a modality-specific run (posthoc): the correlation over the rows its alignment correlated
 * (alignmentRows), its decoder distances, and the distances of the pairs its alignment matched.
 */
export async function heterogeneityOfRun(runDir: string, cfg: TrainConfig): Promise<HeterogeneityResult> {
  const pair = await AlignedPair.load(runPaths(runDir).final('pair'));
  const image = pair.image; // the image SAE as trained (only the text SAE is permuted in a pair)
  let text: TopKSAE | null = null;
  let data: PairedEmbeddings | null = null;
  try {
    text = await TopKSAE.load(runPaths(runDir).final('text'));
    data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
    const norm = await readRunNormalizer(runDir);
    const corr = await correlateSaes(image, text, data, alignmentRows(cfg, data.rows), norm, cfg.align.minFires);
    return heterogeneity(image, text, corr, { perm: pair.perm });
  } finally {
    data?.close();
    text?.dispose();
    pair.dispose();
  }
}
