/**
 * Cross-modal retrieval on latent codes (paper Table 1): image->text and text->image Recall@K, ranking by
 * the cosine of L2-normalized codes in the model's latent index space, exact over sparse codes (native),
 * ties counted against the query (reference-implementation §11.1).
 */
import { SaeError } from '../errors.js';
import type { Matrix, SparseCodes } from '../types.js';
import { retrievalRanksAsync, type GroundTruth } from './kernels.js';
import type { EvalModel } from './model.js';

export interface RecallAt {
  r1: number;
  r5: number;
  r10: number;
}

export interface RetrievalResult {
  /** Fractions in [0, 1] (tables print them as percentages). */
  imageToText: RecallAt;
  textToImage: RecallAt;
  nImages: number;
  nCaptions: number;
  /** Images with no caption (left out of image->text). */
  imagesWithoutCaptions: number;
  latents: number;
  /** Fraction of queries whose ground-truth score is tied with another item, and the mean tie size. */
  ties: { imageToText: { fraction: number; meanSize: number }; textToImage: { fraction: number; meanSize: number } };
  seconds: number;
}

/** Recall@K from pessimistic 0-based ranks. */
export function recallAt(ranks: Int32Array, k: number): number {
  if (ranks.length === 0) return NaN;
  let hit = 0;
  for (const r of ranks) if (r < k) hit++;
  return hit / ranks.length;
}

function tieStats(ties: Int32Array): { fraction: number; meanSize: number } {
  let n = 0, size = 0;
  for (const t of ties)
    if (t > 1) {
      n++;
      size += t;
    }
  return { fraction: ties.length ? n / ties.length : NaN, meanSize: n ? size / n : 0 };
}

/** Ranks of both directions from codes: captions[t] describes image imageOfText[t]. */
export async function retrievalFromCodes(img: SparseCodes, txt: SparseCodes, imageOfText: Int32Array, m: number): Promise<Omit<RetrievalResult, 'seconds' | 'latents'>> {
  if (imageOfText.length !== txt.rows) throw new SaeError('ERR_SHAPE', `imageOfText has ${imageOfText.length} entries for ${txt.rows} captions`);
  const t2iGt: GroundTruth = { offsets: Int32Array.from({ length: txt.rows + 1 }, (_, i) => i), items: Int32Array.from(imageOfText) };
  // Captions of each image (CSR); images without captions are not image->text queries.
  const count = new Int32Array(img.rows);
  for (const i of imageOfText) {
    if (!(i >= 0 && i < img.rows)) throw new SaeError('ERR_SHAPE', `a caption points at image row ${i}, but there are ${img.rows} images`);
    count[i]++;
  }
  const queries: number[] = [];
  for (let i = 0; i < img.rows; i++) if (count[i] > 0) queries.push(i);
  const offsets = new Int32Array(queries.length + 1);
  const slot = new Int32Array(img.rows).fill(-1);
  queries.forEach((i, q) => {
    slot[i] = q;
    offsets[q + 1] = offsets[q] + count[i];
  });
  const items = new Int32Array(txt.rows);
  const fill = Int32Array.from(offsets.subarray(0, queries.length));
  imageOfText.forEach((i, t) => (items[fill[slot[i]]++] = t));
  const qImg: SparseCodes = queries.length === img.rows ? img : selectCodes(img, queries);
  const [i2t, t2i] = await Promise.all([
    retrievalRanksAsync(qImg, txt, { offsets, items }, { m }),
    retrievalRanksAsync(txt, img, t2iGt, { m }),
  ]);
  return {
    imageToText: { r1: recallAt(i2t.ranks, 1), r5: recallAt(i2t.ranks, 5), r10: recallAt(i2t.ranks, 10) },
    textToImage: { r1: recallAt(t2i.ranks, 1), r5: recallAt(t2i.ranks, 5), r10: recallAt(t2i.ranks, 10) },
    nImages: img.rows,
    nCaptions: txt.rows,
    imagesWithoutCaptions: img.rows - queries.length,
    ties: { imageToText: tieStats(i2t.ties), textToImage: tieStats(t2i.ties) },
  };
}

export function selectCodes(c: SparseCodes, rows: ArrayLike<number>): SparseCodes {
  const out: SparseCodes = { rows: rows.length, k: c.k, indices: new Int32Array(rows.length * c.k), values: new Float32Array(rows.length * c.k) };
  for (let i = 0; i < rows.length; i++) {
    out.indices.set(c.indices.subarray(rows[i] * c.k, (rows[i] + 1) * c.k), i * c.k);
    out.values.set(c.values.subarray(rows[i] * c.k, (rows[i] + 1) * c.k), i * c.k);
  }
  return out;
}

/** Encodes both sides with the model (normalized as trained) and ranks both directions. */
export async function evaluateRetrieval(model: EvalModel, images: Matrix, texts: Matrix, imageOfText: Int32Array): Promise<RetrievalResult> {
  const t0 = performance.now();
  const [img, txt] = await Promise.all([model.encode('image', model.prepare('image', images)), model.encode('text', model.prepare('text', texts))]);
  const r = await retrievalFromCodes(img, txt, imageOfText, model.m);
  return { ...r, latents: model.m, seconds: (performance.now() - t0) / 1000 };
}
