/**
 * Paired embeddings with planted concepts: C concepts, each with its own unit direction per modality (the
 * image and text dictionaries are unrelated), every row activating `active` concepts with magnitudes in
 * [0.5, 1.5] shared by both modalities, plus a little noise. Written as .npy files.
 */
import path from 'node:path';

import { writeNpy } from '../../lib/index.js';
import { Rng } from './random.js';

export interface PlantedData {
  imagePath: string;
  textPath: string;
  /** [C, d] unit rows */
  imageDict: Float32Array;
  textDict: Float32Array;
  C: number;
  d: number;
  n: number;
  /** [n, C] ground-truth concept magnitudes (0 when inactive). */
  gt: Float32Array;
}

function unitRows(rng: Rng, C: number, d: number): Float32Array {
  const a = new Float32Array(C * d);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += (a[c * d + i] = rng.normal()) ** 2;
    for (let i = 0; i < d; i++) a[c * d + i] /= Math.sqrt(s);
  }
  return a;
}

export async function writePlanted(dir: string, opts: { n: number; d: number; C: number; active: number; noise?: number; seed?: number; textDim?: number }): Promise<PlantedData> {
  const rng = new Rng(opts.seed ?? 3);
  const { n, d, C, active } = opts;
  const dt = opts.textDim ?? d;
  const A = unitRows(rng, C, d), T = unitRows(rng, C, dt);
  const x = new Float32Array(n * d), y = new Float32Array(n * dt);
  const gt = new Float32Array(n * C);
  const noise = opts.noise ?? 0.01;
  for (let r = 0; r < n; r++) {
    const used = new Set<number>();
    while (used.size < active) used.add(rng.int(C));
    for (const c of used) {
      const g = 0.5 + rng.next();
      gt[r * C + c] = g;
      for (let i = 0; i < d; i++) x[r * d + i] += g * A[c * d + i];
      for (let i = 0; i < dt; i++) y[r * dt + i] += g * T[c * dt + i];
    }
    for (let i = 0; i < d; i++) x[r * d + i] += noise * rng.normal();
    for (let i = 0; i < dt; i++) y[r * dt + i] += noise * rng.normal();
  }
  const imagePath = path.join(dir, 'image.npy'), textPath = path.join(dir, 'text.npy');
  await writeNpy(imagePath, { rows: n, cols: d, data: x });
  await writeNpy(textPath, { rows: n, cols: dt, data: y });
  return { imagePath, textPath, imageDict: A, textDict: T, C, d, n, gt };
}

/** Index of the dictionary row most cosine-similar to each decoder row ([m, d]), and that cosine. */
export function bestConcept(Wdec: Float32Array, m: number, dict: Float32Array, C: number, d: number): { concept: Int32Array; cos: Float32Array } {
  const concept = new Int32Array(m), cos = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    let best = -1, bc = -Infinity, nj = 0;
    for (let i = 0; i < d; i++) nj += Wdec[j * d + i] ** 2;
    for (let c = 0; c < C; c++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += Wdec[j * d + i] * dict[c * d + i];
      const v = dot / Math.sqrt(nj || 1);
      if (v > bc) [bc, best] = [v, c];
    }
    concept[j] = best;
    cos[j] = bc;
  }
  return { concept, cos };
}

/** For each latent, the concept whose ground-truth magnitude correlates best with the latent's code over
 * the rows (Pearson), and that correlation (0 for a latent that never fires). */
export function conceptByActivation(codes: { rows: number; k: number; indices: Int32Array; values: Float32Array }, m: number, gt: Float32Array, C: number): { concept: Int32Array; corr: Float32Array } {
  const n = codes.rows;
  const z = new Float64Array(n * m);
  for (let r = 0; r < n; r++) for (let s = 0; s < codes.k; s++) z[r * m + codes.indices[r * codes.k + s]] += codes.values[r * codes.k + s];
  const stats = (get: (r: number) => number) => {
    let s = 0, s2 = 0;
    for (let r = 0; r < n; r++) {
      const v = get(r);
      s += v;
      s2 += v * v;
    }
    const mu = s / n;
    return { mu, sd: Math.sqrt(Math.max(0, s2 / n - mu * mu)) };
  };
  const gs = Array.from({ length: C }, (_, c) => stats((r) => gt[r * C + c]));
  const concept = new Int32Array(m).fill(-1), corr = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    const zs = stats((r) => z[r * m + j]);
    if (zs.sd === 0) continue;
    for (let c = 0; c < C; c++) {
      let cov = 0;
      for (let r = 0; r < n; r++) cov += (z[r * m + j] - zs.mu) * (gt[r * C + c] - gs[c].mu);
      const rho = cov / n / (zs.sd * gs[c].sd);
      if (rho > corr[j]) {
        corr[j] = rho;
        concept[j] = c;
      }
    }
  }
  return { concept, corr };
}
