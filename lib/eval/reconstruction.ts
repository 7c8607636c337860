/**
 * Reconstruction on held-out rows, per modality (paper Table 1 "Recon. MSE"): MSE = mean over rows of
 * ||x - x_hat||^2 (summed over dimensions) and FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2, both on the
 * inputs as the model sees them (the run's normalization).
 */
import type { Modality } from '../data/paired.js';
import type { Matrix } from '../types.js';
import type { EvalModel } from './model.js';

export interface ReconstructionStats {
  mse: number;
  fvu: number;
  rows: number;
}

export async function reconstructionStats(model: EvalModel, side: Modality, x: Matrix): Promise<ReconstructionStats> {
  const p = model.prepare(side, x);
  const sae = model.sae(side);
  const d = p.cols;
  let sse = 0, sum2 = 0;
  const mean = new Float64Array(d);
  for (let r0 = 0; r0 < p.rows; r0 += 4096) {
    const n = Math.min(4096, p.rows - r0);
    const chunk: Matrix = { rows: n, cols: d, data: p.data.subarray(r0 * d, (r0 + n) * d) };
    const xhat = sae.decode(await sae.encodeAsync(chunk));
    for (let i = 0; i < chunk.data.length; i++) {
      const v = chunk.data[i];
      sse += (v - xhat.data[i]) ** 2;
      sum2 += v * v;
      mean[i % d] += v;
    }
  }
  let mu2 = 0;
  for (let c = 0; c < d; c++) mu2 += (mean[c] / p.rows) ** 2;
  const tv = sum2 - p.rows * mu2;
  return { mse: sse / p.rows, fvu: tv > 0 ? sse / tv : NaN, rows: p.rows };
}

export interface ReconstructionResult {
  image: ReconstructionStats;
  text: ReconstructionStats;
  /** Mean of the two modalities (the paper's "averaged over both modalities"). */
  mse: number;
  fvu: number;
}

export async function evaluateReconstruction(model: EvalModel, images: Matrix, texts: Matrix): Promise<ReconstructionResult> {
  const image = await reconstructionStats(model, 'image', images);
  const text = await reconstructionStats(model, 'text', texts);
  return { image, text, mse: (image.mse + text.mse) / 2, fvu: (image.fvu + text.fvu) / 2 };
}
