/**
 * Paired image/text embeddings for training and evaluation: the two files (row r of one pairs with row r of
 * the other), a seeded train/validation split, a validation scan (NaN/Inf rows, per-modality means) and the
 * input normalization that is applied identically at training, alignment and evaluation.
 */
import { SaeError } from '../errors.js';
import { EmbeddingFile, type EmbeddingSpec } from '../io/embeddings.js';
import type { Matrix } from '../types.js';

/** 'l2' (default): x / (|x| + 1e-12). 'none': as stored. 'center+l2': (x - mean) then l2; the mean is the
 * training split's, saved with the model. */
export type Normalization = 'l2' | 'none' | 'center+l2';
export type Modality = 'image' | 'text';
export const MODALITIES: readonly Modality[] = ['image', 'text'];

/** `side` as a Modality, or ERR_ARG naming what was given ('audio' must not fall through to the text side). */
export function checkModality(side: unknown, what = 'modality'): Modality {
  if (side !== 'image' && side !== 'text')
    throw new SaeError('ERR_ARG', `${what} must be 'image' or 'text', got ${typeof side === 'string' ? `'${side}'` : String(side)}`);
  return side;
}

/** Deterministic 32-bit generator (mulberry32) for splits and epoch orders. */
export function rng32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of 0..n-1 (or of `of`) with a seeded generator. */
export function shuffled(n: number, seed: number, of?: Int32Array): Int32Array {
  const a = of ? Int32Array.from(of) : Int32Array.from({ length: n }, (_, i) => i);
  const r = rng32(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** The rows of epoch `epoch`: the training rows shuffled by (seed, epoch). */
export function epochOrder(train: Int32Array, seed: number, epoch: number): Int32Array {
  return shuffled(train.length, (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0, train);
}

/** Train/validation split by seed: `valFraction` of the rows (rounded down) go to validation, both sorted. */
export function splitRows(n: number, valFraction: number, seed: number): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new SaeError('ERR_ARG', `valFraction must be in [0, 1), got ${valFraction}`);
  const nVal = Math.floor(n * valFraction);
  const perm = shuffled(n, (seed ^ 0x5eed5eed) >>> 0);
  const val = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  return { train, val };
}

export class PairedEmbeddings {
  readonly image: EmbeddingFile;
  readonly text: EmbeddingFile;

  private constructor(image: EmbeddingFile, text: EmbeddingFile) {
    this.image = image;
    this.text = text;
  }

  /** Opens the two files (or two tensors of one safetensors file); their row counts must agree. */
  static open(image: EmbeddingSpec | string, text: EmbeddingSpec | string): PairedEmbeddings {
    const a = EmbeddingFile.open(image);
    let b: EmbeddingFile;
    try {
      b = EmbeddingFile.open(text);
    } catch (e) {
      a.close();
      throw e;
    }
    if (a.rows !== b.rows) {
      a.close();
      b.close();
      throw new SaeError('ERR_SHAPE', `the image file has ${a.rows} rows and the text file ${b.rows}: paired files must have the same rows (row r of one pairs with row r of the other)`);
    }
    return new PairedEmbeddings(a, b);
  }

  get rows(): number {
    return this.image.rows;
  }

  file(side: Modality): EmbeddingFile {
    return checkModality(side) === 'image' ? this.image : this.text;
  }

  close(): void {
    this.image.close();
    this.text.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Streams the given rows of a file once (chunks of 4096 rows): throws ERR_NONFINITE naming the first row
 * that holds NaN or Inf, and returns the float64 mean of the rows.
 */
export function scanRows(file: EmbeddingFile, rows: Int32Array, onProgress?: (done: number) => void): Float64Array {
  const it = scanChunks(file, rows, onProgress);
  for (let r = it.next(); ; r = it.next()) if (r.done) return r.value;
}

/** scanRows that gives the event loop a turn after every chunk of 4096 rows. */
export async function scanRowsAsync(file: EmbeddingFile, rows: Int32Array, onProgress?: (done: number) => void): Promise<Float64Array> {
  const it = scanChunks(file, rows, onProgress);
  for (let r = it.next(); ; r = it.next()) {
    if (r.done) return r.value;
    await new Promise((res) => setImmediate(res));
  }
}

function* scanChunks(file: EmbeddingFile, rows: Int32Array, onProgress?: (done: number) => void): Generator<void, Float64Array> {
  const d = file.dim;
  const mean = new Float64Array(d);
  const chunk = 4096;
  const buf = new Float32Array(chunk * d);
  for (let q = 0; q < rows.length; q += chunk) {
    const idx = rows.subarray(q, Math.min(rows.length, q + chunk));
    file.readRows(idx, buf);
    for (let r = 0; r < idx.length; r++) {
      const o = r * d;
      for (let c = 0; c < d; c++) {
        const v = buf[o + c];
        if (!Number.isFinite(v))
          throw new SaeError('ERR_NONFINITE', `row ${idx[r]} of ${file.path} holds ${v} (column ${c}): remove or repair that row`);
        mean[c] += v;
      }
    }
    onProgress?.(Math.min(rows.length, q + chunk));
    yield;
  }
  for (let c = 0; c < d; c++) mean[c] /= Math.max(1, rows.length);
  return mean;
}

/** Input normalization with its state (the centring means), applied in place to batches. */
export class Normalizer {
  readonly kind: Normalization;
  readonly mean: Partial<Record<Modality, Float32Array>>;

  constructor(kind: Normalization, mean: Partial<Record<Modality, Float32Array>> = {}) {
    if (!['l2', 'none', 'center+l2'].includes(kind)) throw new SaeError('ERR_ARG', `normalization must be 'l2', 'none' or 'center+l2', got '${String(kind)}'`);
    this.kind = kind;
    this.mean = mean;
  }

  /**
   * What a model's cfg.json records of this normalization, so that a checkpoint copied out of its run or pair
   * still encodes like it: the kind and, for center+l2, that modality's mean. A shared SAE ('shared' or any
   * other name) under center+l2 has two means, so nothing is recorded for it (the run's normalization.json stays
   * the source).
   */
  record(model: string): { kind: Normalization; mean?: Float32Array } | undefined {
    if (model === 'image' || model === 'text') return { kind: this.kind, ...(this.mean[model] ? { mean: this.mean[model] } : {}) };
    return this.kind === 'center+l2' ? undefined : { kind: this.kind };
  }

  /** Normalizes `rows` rows of `data` ([rows, dim]) in place. */
  apply(side: Modality, data: Float32Array, rows: number, dim: number): void {
    checkModality(side);
    if (this.kind === 'none') return;
    const mu = this.kind === 'center+l2' ? this.mean[side] : undefined;
    if (this.kind === 'center+l2' && (!mu || mu.length !== dim))
      throw new SaeError('ERR_STATE', `center+l2 normalization has no ${dim}-wide ${side} mean: fit it on the training rows first`);
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      if (mu) for (let c = 0; c < dim; c++) data[o + c] -= mu[c];
      let s = 0;
      for (let c = 0; c < dim; c++) s += data[o + c] * data[o + c];
      const inv = 1 / (Math.sqrt(s) + 1e-12);
      for (let c = 0; c < dim; c++) data[o + c] *= inv;
    }
  }

  toJSON(): { kind: Normalization; mean: Partial<Record<Modality, number[]>> } {
    const mean: Partial<Record<Modality, number[]>> = {};
    for (const side of ['image', 'text'] as const) if (this.mean[side]) mean[side] = Array.from(this.mean[side]!);
    return { kind: this.kind, mean };
  }

  /** The inverse of toJSON, validated: anything else is ERR_FORMAT naming the field. */
  static fromJSON(j: { kind: Normalization; mean?: Partial<Record<Modality, number[]>> }): Normalizer {
    const bad = (why: string): never => {
      throw new SaeError('ERR_FORMAT', `normalization state ${why}`);
    };
    if (typeof j !== 'object' || j === null || Array.isArray(j)) bad(`must be an object { kind, mean }, got ${j === null ? 'null' : typeof j}`);
    if (!['l2', 'none', 'center+l2'].includes(j.kind)) bad(`has kind ${JSON.stringify(j.kind)}; expected 'l2', 'none' or 'center+l2'`);
    if (j.mean !== undefined && (typeof j.mean !== 'object' || j.mean === null || Array.isArray(j.mean))) bad('has a mean that is not an object');
    const mean: Partial<Record<Modality, Float32Array>> = {};
    for (const [side, v] of Object.entries(j.mean ?? {})) {
      checkModality(side, 'normalization mean side');
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad(`mean.${side} must be a non-empty array of finite numbers`);
      mean[side as Modality] = Float32Array.from(v as number[]);
    }
    if (j.kind === 'center+l2' && (!mean.image || !mean.text)) bad(`'center+l2' needs the image and text means`);
    return new Normalizer(j.kind, mean);
  }
}

/** Reads and normalizes the given rows of one modality into a Matrix. */
export function readBatch(data: PairedEmbeddings, side: Modality, rows: ArrayLike<number>, norm: Normalizer, out?: Float32Array): Matrix {
  const f = data.file(checkModality(side));
  const buf = out && out.length >= rows.length * f.dim ? out.subarray(0, rows.length * f.dim) : new Float32Array(rows.length * f.dim);
  f.readRows(rows, buf);
  for (let i = 0; i < buf.length; i++)
    if (!Number.isFinite(buf[i])) throw new SaeError('ERR_NONFINITE', `row ${rows[Math.floor(i / f.dim)]} of ${f.path} holds ${buf[i]}: remove or repair that row`);
  norm.apply(side, buf, rows.length, f.dim);
  return { rows: rows.length, cols: f.dim, data: buf };
}
