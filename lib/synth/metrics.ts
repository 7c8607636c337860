/**
 * The five synthetic metrics of the paper (App. D.3), on a pair of SAEs (the same SAE twice for the shared
 * methods; for the post-hoc method the text SAE of the aligned pair, whose latents are already permuted).
 * Each difference from the authors' code (reference-implementation §8–§9) is an option:
 *  - reconstruction: 'mse' (paper: 1/2 E[|x - x~|^2 + |y - y~|^2]) or 'fvu' (code: mean of the two eval FVUs);
 *  - recovery: 'full' (paper: the SAE's own encode/decode of each atom) or 'top1' (code: only the largest
 *    latent of ReLU(W_enc g + b_enc), no b_dec pre-subtraction).
 */
import { native } from '../native/load.js';
import type { TopKSAE } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import type { SynthData } from './generator.js';

export interface SynthMetrics {
  reconstructionError: number;
  featureRecoveryError: number;
  latentAlignmentError: number;
  featureAlignmentError: number;
  collapseRate: number;
  /** Parts: per-modality reconstruction and recovery errors. */
  reconstructionImage: number;
  reconstructionText: number;
  recoveryImage: number;
  recoveryText: number;
}

export interface SynthMetricOptions {
  reconstruction?: 'mse' | 'fvu';
  recovery?: 'full' | 'top1';
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

/** Authors' GRE: z = only the largest entry of ReLU(W_enc g + b_enc), g~ = z W_dec[j] + b_dec. */
function top1Recovery(sae: TopKSAE, atoms: Matrix): number {
  const w = sae.getWeights();
  const { d, m } = sae;
  let total = 0;
  for (let i = 0; i < atoms.rows; i++) {
    const g = atoms.data.subarray(i * d, (i + 1) * d);
    let best = -1, bv = 0;
    for (let j = 0; j < m; j++) {
      let p = w.b_enc[j];
      for (let c = 0; c < d; c++) p += g[c] * w.W_enc.data[c * m + j];
      if (p > bv) [bv, best] = [p, j];
    }
    let e = 0;
    for (let c = 0; c < d; c++) {
      const rec = (best >= 0 ? bv * w.W_dec.data[best * d + c] : 0) + w.b_dec[c];
      e += (g[c] - rec) ** 2;
    }
    total += e;
  }
  return total / atoms.rows;
}

export function syntheticMetrics(image: TopKSAE, text: TopKSAE, data: SynthData, opts: SynthMetricOptions = {}): SynthMetrics {
  const recon = opts.reconstruction ?? 'mse';
  const ev = data.eval;
  const zi = image.encode(ev.image), zt = text.encode(ev.text);
  const ri = rowErrors(ev.image, image.decode(zi)), rt = rowErrors(ev.text, text.decode(zt));
  const reconstructionImage = recon === 'mse' ? ri.mse : ri.fvu;
  const reconstructionText = recon === 'mse' ? rt.mse : rt.fvu;
  let lat = 0;
  for (let r = 0; r < ev.image.rows; r++) lat += codeCosine(zi, r, zt, r);
  const phi = data.phiShared, psi = data.psiShared;
  const fi = image.encode(phi), ft = text.encode(psi);
  let recoveryImage: number, recoveryText: number;
  if ((opts.recovery ?? 'full') === 'full') {
    recoveryImage = rowErrors(phi, image.decode(fi)).mse;
    recoveryText = rowErrors(psi, text.decode(ft)).mse;
  } else {
    recoveryImage = top1Recovery(image, phi);
    recoveryText = top1Recovery(text, psi);
  }
  let feat = 0;
  for (let i = 0; i < phi.rows; i++) feat += codeCosine(fi, i, ft, i);
  const n = native();
  const wi = image.getWeights().W_dec, wt = text.getWeights().W_dec;
  const ai = n.argmaxCosine(wi.data, wi.rows, phi.data, phi.rows, phi.cols).idx;
  const at = n.argmaxCosine(wt.data, wt.rows, psi.data, psi.rows, psi.cols).idx;
  let same = 0;
  for (let i = 0; i < phi.rows; i++) if (ai[i] === at[i]) same++;
  return {
    reconstructionError: (reconstructionImage + reconstructionText) / 2,
    featureRecoveryError: (recoveryImage + recoveryText) / 2,
    latentAlignmentError: 1 - lat / ev.image.rows,
    featureAlignmentError: 1 - feat / phi.rows,
    collapseRate: same / phi.rows,
    reconstructionImage,
    reconstructionText,
    recoveryImage,
    recoveryText,
  };
}
