/**
 * The evaluation view of a trained method: an image encoder/decoder and a text encoder/decoder whose latent
 * indices are meant to correspond (one shared SAE, or an aligned pair), plus the input normalization of the
 * run. Every evaluation reads its inputs through `prepare`, so all methods are compared on the same footing:
 * the normalization they were trained with, applied identically at evaluation (the reference trains on raw
 * vectors and evaluates on unit vectors, reference-implementation §3.3).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair } from '../align/aligned-pair.js';
import { Normalizer, checkModality, type Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { EmbeddingFile, type EmbeddingSpec } from '../io/embeddings.js';
import { TopKSAE } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import { readRunMethod, readRunNormalizer, runOfModelDir, runPaths } from '../run/layout.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../io/load-checkpoint.js';

/** How the latent indices of the two modalities relate: 'shared' (one SAE), 'aligned' (post-hoc permutation), 'unaligned' (separate SAEs, index i vs index i). */
export type IndexSpace = 'shared' | 'aligned' | 'unaligned';

/** Which latents fired on the training pairs (1) or never did (0), per side, in the model's index space. */
export interface TrainAlive {
  image: Uint8Array;
  text: Uint8Array;
}

export class EvalModel implements Disposable {
  readonly image: TopKSAE;
  readonly text: TopKSAE;
  readonly normalizer: Normalizer;
  readonly space: IndexSpace;
  /** Alive latents on the training pairs when known (an aligned pair's alignment statistics), else null. */
  readonly trainAlive: TrainAlive | null;
  readonly #owned: TopKSAE[];

  constructor(image: TopKSAE, text: TopKSAE, normalizer: Normalizer, space: IndexSpace, owned: TopKSAE[] = [], trainAlive: TrainAlive | null = null) {
    if (image.m !== text.m) throw new SaeError('ERR_SHAPE', `the image SAE has ${image.m} latents and the text SAE ${text.m}: cross-modal evaluation needs one latent index space`);
    if (trainAlive && (trainAlive.image.length !== image.m || trainAlive.text.length !== text.m))
      throw new SaeError('ERR_SHAPE', `alive masks of ${trainAlive.image.length}/${trainAlive.text.length} latents for SAEs of ${image.m} latents`);
    this.image = image;
    this.text = text;
    this.normalizer = normalizer;
    this.space = space;
    this.trainAlive = trainAlive;
    this.#owned = owned;
  }

  get m(): number {
    return this.image.m;
  }

  sae(side: Modality): TopKSAE {
    return checkModality(side) === 'image' ? this.image : this.text;
  }

  /** Normalizes a copy of x the way the run's training data was normalized. */
  prepare(side: Modality, x: Matrix): Matrix {
    const want = this.sae(side).d;
    if (x.cols !== want) throw new SaeError('ERR_SHAPE', `${side} rows have ${x.cols} values but the ${side} SAE expects ${want}: were these embeddings made by the same model as the training data?`);
    const data = Float32Array.from(x.data);
    this.normalizer.apply(side, data, x.rows, x.cols);
    return { rows: x.rows, cols: x.cols, data };
  }

  /**
   * Codes of prepared (normalized) rows, in batches that keep the native calls short. A BatchTopK SAE keeps
   * the latents above its threshold, up to its row capacity (empty slots hold value 0).
   */
  async encode(side: Modality, prepared: Matrix, batch = 4096): Promise<SparseCodes> {
    const sae = this.sae(side);
    let out: SparseCodes | null = null;
    for (let r = 0; r < prepared.rows; r += batch) {
      const n = Math.min(batch, prepared.rows - r);
      const c = await sae.encodeAsync({ rows: n, cols: prepared.cols, data: prepared.data.subarray(r * prepared.cols, (r + n) * prepared.cols) });
      // Slots per row: k for Top-K, the row capacity for BatchTopK (the same for every batch).
      out ??= { rows: prepared.rows, k: c.k, indices: new Int32Array(prepared.rows * c.k), values: new Float32Array(prepared.rows * c.k) };
      if (c.k !== out.k) throw new SaeError('ERR_INTERNAL', `encode returned ${c.k} slots per row, expected ${out.k}`);
      out.indices.set(c.indices, r * out.k);
      out.values.set(c.values, r * out.k);
    }
    return out ?? { rows: 0, k: sae.k, indices: new Int32Array(0), values: new Float32Array(0) };
  }

  dispose(): void {
    for (const s of this.#owned) s.dispose();
    this.#owned.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export { readRunNormalizer };

/**
 * An aligned pair's alive masks in its own index space: image latent i as trained, and aligned text latent i,
 * which is the original text latent perm[i] (the statistics index the text SAE before permutation).
 */
export function pairTrainAlive(pair: AlignedPair): TrainAlive {
  const { aliveImage, aliveText } = pair.stats;
  return { image: Uint8Array.from(aliveImage), text: Uint8Array.from(pair.perm, (j) => aliveText[j]) };
}

/** The normalization a standalone checkpoint's inputs need (see loadEvalModel). */
async function checkpointNormalizer(dir: string, c: LoadedCheckpoint): Promise<Normalizer> {
  const rec = c.normalization;
  // A side's own checkpoint records its modality's mean; evaluated as a shared SAE, both modalities use it.
  if (rec) return new Normalizer(rec.kind, rec.mean ? { image: Float32Array.from(rec.mean), text: Float32Array.from(rec.mean) } : {});
  const run = c.format === 'cmsae' ? runOfModelDir(dir) : null;
  return run ? readRunNormalizer(run) : new Normalizer('l2');
}

/**
 * Loads the evaluation view of a model directory:
 * - a training run (config.json + final/): its method decides; `view: 'separate'` evaluates a posthoc run's
 *   SAEs without the permutation (the paper's "Modality-Specific SAEs" row);
 * - an aligned pair (alignment.json): image + permuted text;
 * - a single SAE checkpoint (cfg.json, ours or a SAELens/sparsify one): shared by both modalities, normalized as
 *   its cfg.json records (a foreign checkpoint: as its forward pass does), else as its run's normalization.json
 *   when it sits in a run, else `l2` (cmsae train's default).
 */
export async function loadEvalModel(dir: string, opts: { view?: 'separate'; normalization?: Normalizer } = {}): Promise<EvalModel> {
  if (existsSync(path.join(dir, 'alignment.json'))) {
    const pair = await AlignedPair.load(dir);
    if (opts.view === 'separate') {
      pair.dispose();
      throw new SaeError('ERR_ARG', `${dir} is an aligned pair; the unaligned view needs the training run (its final/image and final/text)`);
    }
    return new EvalModel(pair.image, pair.text, opts.normalization ?? pair.normalizer, 'aligned', [pair.image, pair.text], pairTrainAlive(pair));
  }
  if (existsSync(path.join(dir, 'cfg.json'))) {
    const c = await loadCheckpoint(dir);
    try {
      return new EvalModel(c.sae, c.sae, opts.normalization ?? (await checkpointNormalizer(dir, c)), 'shared', [c.sae]);
    } catch (e) {
      c.sae.dispose();
      throw e;
    }
  }
  if (!existsSync(runPaths(dir).config)) throw new SaeError('ERR_IO', `${dir} is neither a training run (config.json), an aligned pair (alignment.json) nor an SAE checkpoint (cfg.json)`);
  const method = await readRunMethod(dir);
  const run = runPaths(dir);
  const norm = opts.normalization ?? (await readRunNormalizer(dir));
  if (method.startsWith('shared')) {
    if (opts.view === 'separate') throw new SaeError('ERR_ARG', `${dir} trained one shared SAE (method ${method}); there is no separate view`);
    const sae = await loadFinal(run.final('shared'));
    return new EvalModel(sae, sae, norm, 'shared', [sae]);
  }
  if (method === 'posthoc' && opts.view !== 'separate') {
    const pair = await AlignedPair.load(run.final('pair')).catch((e) => {
      throw new SaeError((e as SaeError).code ?? 'ERR_IO', `${run.final('pair')}: ${(e as Error).message} (has the run finished?)`);
    });
    return new EvalModel(pair.image, pair.text, norm, 'aligned', [pair.image, pair.text], pairTrainAlive(pair));
  }
  const image = await loadFinal(run.final('image'));
  try {
    const text = await loadFinal(run.final('text'));
    return new EvalModel(image, text, norm, 'unaligned', [image, text]);
  } catch (e) {
    image.dispose();
    throw e;
  }
}

async function loadFinal(dir: string): Promise<TopKSAE> {
  if (!existsSync(path.join(dir, 'cfg.json'))) throw new SaeError('ERR_IO', `${dir} is missing: has the training run finished?`);
  return TopKSAE.load(dir);
}

/** Reads a whole embedding file (evaluation sets fit in memory) as a Matrix. */
export function readMatrix(spec: EmbeddingSpec | string): Matrix {
  const f = EmbeddingFile.open(spec);
  try {
    const data = new Float32Array(f.rows * f.dim);
    f.readRange(0, f.rows, data);
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i])) throw new SaeError('ERR_NONFINITE', `row ${Math.floor(i / f.dim)} of ${f.path} holds ${data[i]}: remove or repair that row`);
    return { rows: f.rows, cols: f.dim, data };
  } finally {
    f.close();
  }
}

/** How many rows each latent fires on (a nonzero value in the row's code; one pass over the k slots per row). */
export function fireCounts(c: SparseCodes, m: number): Float64Array {
  const f = new Float64Array(m);
  for (let p = 0; p < c.rows * c.k; p++) if (c.values[p] !== 0) f[c.indices[p]] += 1;
  return f;
}

/** Rows of a Matrix (copy). */
export function takeRows(x: Matrix, rows: ArrayLike<number>): Matrix {
  const out = new Float32Array(rows.length * x.cols);
  for (let i = 0; i < rows.length; i++) out.set(x.data.subarray(rows[i] * x.cols, (rows[i] + 1) * x.cols), i * x.cols);
  return { rows: rows.length, cols: x.cols, data: out };
}

/** x / max(||x||, 1e-12) per row, in place. */
export function l2NormalizeRows(x: Matrix): Matrix {
  for (let r = 0; r < x.rows; r++) {
    const o = r * x.cols;
    let s = 0;
    for (let c = 0; c < x.cols; c++) s += x.data[o + c] * x.data[o + c];
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < x.cols; c++) x.data[o + c] *= inv;
  }
  return x;
}

/** cos(a[ai*d ..], b[bi*d ..]) of two rows of width d (norms clamped at 1e-12). */
export function rowCosine(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let dot = 0, x = 0, y = 0;
  for (let c = 0; c < d; c++) {
    const u = a[ai * d + c], v = b[bi * d + c];
    dot += u * v;
    x += u * u;
    y += v * v;
  }
  return dot / Math.max(Math.sqrt(x) * Math.sqrt(y), 1e-12);
}
