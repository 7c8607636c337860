/**
 * The five synthetic metrics of the paper (App. D.3), on a pair of SAEs (the same SAE twice for the shared
 * methods; for the post-hoc method the text SAE of the aligned pair, whose latents are already permuted).
 * Both variants of each metric where the paper and the authors' code differ (reference-implementation §8–§9)
 * are computed from the same models, so a report can state a claim under either:
 *  - reconstruction: 'mse' (paper: 1/2 E[|x - x~|^2 + |y - y~|^2]) or 'fvu' (code: mean of the two eval FVUs);
 *  - recovery: 'full' (paper: the SAE's own encode/decode of each atom) or 'top1' (code, and the authors'
 *    plots: only the largest latent of ReLU(W_enc g + b_enc), no b_dec pre-subtraction, g~ = z W_dec[j] + b_dec).
 * `reconstructionError` / `featureRecoveryError` are the variants chosen by the options (default: the paper's).
 *
 * The paper's collapse rate (57), mean_i [argmax_j cos(w_j^img, phi_i) = argmax_j cos(w_j^txt, psi_i)], counts
 * concepts whose image and text directions land on the same latent coordinate. For an SAE pair whose text
 * latents were permuted to match the image latents (post-hoc alignment, `aligned: true`) the same count is the
 * share of concepts the alignment matched correctly (higher is better), not a collapse: it is reported as
 * `matchRate` and `collapseRate` is null. For any other pair `collapseRate` is set and `matchRate` is null.
 */
import { native } from '../native/load.js';
import { TopKSAE } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import type { SynthData } from './generator.js';

export type ReconstructionMetric = 'mse' | 'fvu';
export type RecoveryMetric = 'full' | 'top1';

export interface SynthMetrics {
  /** The variant chosen by `reconstruction` (default 'mse'). */
  reconstructionError: number;
  /** The variant chosen by `recovery` (default 'full'). */
  featureRecoveryError: number;
  latentAlignmentError: number;
  featureAlignmentError: number;
  /** Same-coordinate rate of an unaligned pair (the paper's collapse rate); null for an aligned pair. */
  collapseRate: number | null;
  /** Same-coordinate rate of an aligned pair (share of correctly matched concepts); null otherwise. */
  matchRate: number | null;
  /** Every variant, mean of the two modalities. */
  reconstructionMse: number;
  reconstructionFvu: number;
  recoveryFull: number;
  recoveryTop1: number;
  /** Per-modality parts of the chosen variants. */
  reconstructionImage: number;
  reconstructionText: number;
  recoveryImage: number;
  recoveryText: number;
}

export interface SynthMetricOptions {
  reconstruction?: ReconstructionMetric;
  recovery?: RecoveryMetric;
}

/** cos of two sparse code rows (dense cosine; 0 when either is all zero). */
function codeCosine(a: SparseCodes, ra: number, b: SparseCodes, rb: number): number {
  let dot = 0, na = 0, nb = 0;
  for (let s = 0; s < a.k; s++) {
    const va = a.values[ra * a.k + s];
    if (va === 0) continue;
    na += va * va;
    const j = a.indices[ra * a.k + s];
    for (let t = 0; t < b.k; t++) if (b.indices[rb * b.k + t] === j) dot += va * b.values[rb * b.k + t];
  }
  for (let t = 0; t < b.k; t++) nb += b.values[rb * b.k + t] ** 2;
  return na > 0 && nb > 0 ? dot / (Math.sqrt(na) * Math.sqrt(nb)) : 0;
}

/** Mean squared row error and FVU (SSE over the total variance about the column means) of a reconstruction. */
function rowErrors(x: Matrix, xhat: Matrix): { mse: number; fvu: number } {
  const { rows, cols: d } = x;
  let sse = 0;
  const mean = new Float64Array(d);
  for (let i = 0; i < rows * d; i++) {
    sse += (x.data[i] - xhat.data[i]) ** 2;
    mean[i % d] += x.data[i] / rows;
  }
  let tv = 0;
  for (let i = 0; i < rows * d; i++) tv += (x.data[i] - mean[i % d]) ** 2;
  return { mse: sse / rows, fvu: tv > 0 ? sse / tv : NaN };
}

/**
 * Authors' GRE: z = only the largest entry of ReLU(W_enc g + b_enc), g~ = z W_dec[j] + b_dec, mean |g - g~|^2.
 * The native encoder computes ReLU(W_enc (g - b_dec) + b_enc): a k = 1 copy of the SAE with b_dec = 0 computes
 * the authors' pre-activation and its top-1 decode z W_dec[j]; b_dec is added back here.
 */
export function top1Recovery(sae: TopKSAE, atoms: Matrix): number {
  const w = sae.getWeights();
  const b = w.b_dec;
  using probe = TopKSAE.fromWeights({ ...w, b_dec: new Float32Array(sae.d) }, { k: 1 });
  const rec = probe.decode(probe.encode(atoms));
  const d = sae.d;
  let total = 0;
  for (let i = 0; i < atoms.rows * d; i++) total += (atoms.data[i] - rec.data[i] - b[i % d]) ** 2;
  return total / atoms.rows;
}

export function syntheticMetrics(image: TopKSAE, text: TopKSAE, data: SynthData, opts: SynthMetricOptions & { aligned?: boolean } = {}): SynthMetrics {
  const ev = data.eval;
  const zi = image.encode(ev.image), zt = text.encode(ev.text);
  const ri = rowErrors(ev.image, image.decode(zi)), rt = rowErrors(ev.text, text.decode(zt));
  let lat = 0;
  for (let r = 0; r < ev.image.rows; r++) lat += codeCosine(zi, r, zt, r);
  const phi = data.phiShared, psi = data.psiShared;
  const fi = image.encode(phi), ft = text.encode(psi);
  const fullImage = rowErrors(phi, image.decode(fi)).mse, fullText = rowErrors(psi, text.decode(ft)).mse;
  const top1Image = top1Recovery(image, phi), top1Text = top1Recovery(text, psi);
  let feat = 0;
  for (let i = 0; i < phi.rows; i++) feat += codeCosine(fi, i, ft, i);
  const n = native();
  const wi = image.getWeights().W_dec, wt = text.getWeights().W_dec;
  const ai = n.argmaxCosine(wi.data, wi.rows, phi.data, phi.rows, phi.cols).idx;
  const at = n.argmaxCosine(wt.data, wt.rows, psi.data, psi.rows, psi.cols).idx;
  let same = 0;
  for (let i = 0; i < phi.rows; i++) if (ai[i] === at[i]) same++;
  const sameRate = same / phi.rows;
  const mse = (opts.reconstruction ?? 'mse') === 'mse', full = (opts.recovery ?? 'full') === 'full';
  const reconstructionImage = mse ? ri.mse : ri.fvu, reconstructionText = mse ? rt.mse : rt.fvu;
  const recoveryImage = full ? fullImage : top1Image, recoveryText = full ? fullText : top1Text;
  return {
    reconstructionError: (reconstructionImage + reconstructionText) / 2,
    featureRecoveryError: (recoveryImage + recoveryText) / 2,
    latentAlignmentError: 1 - lat / ev.image.rows,
    featureAlignmentError: 1 - feat / phi.rows,
    collapseRate: opts.aligned ? null : sameRate,
    matchRate: opts.aligned ? sameRate : null,
    reconstructionMse: (ri.mse + rt.mse) / 2,
    reconstructionFvu: (ri.fvu + rt.fvu) / 2,
    recoveryFull: (fullImage + fullText) / 2,
    recoveryTop1: (top1Image + top1Text) / 2,
    reconstructionImage,
    reconstructionText,
    recoveryImage,
    recoveryText,
  };
}
