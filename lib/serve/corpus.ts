/**
 * The corpus the service can point at: the concept index's (captions, image refs, labels, codes) and/or the raw
 * corpus embeddings. Rows of the image side are images, rows of the text side captions.
 */
import type { AlignedPair } from '../align/aligned-pair.js';
import type { ConceptCorpus } from '../concepts/types.js';
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { SparseCodes } from '../types.js';
import type { ConceptIndex } from '../concepts/concept-index.js';
import { pairFingerprint } from '../concepts/fingerprint.js';
import { HttpError } from './http-errors.js';
import { CodeSearch, denseTop, unit, type Hit } from './search.js';

export class CorpusView {
  readonly index: ConceptIndex | null;
  readonly raw: ConceptCorpus | null;
  readonly #codes: Partial<Record<Modality, SparseCodes>> = {};
  readonly #search: Partial<Record<Modality, CodeSearch>> = {};
  readonly #unit: Partial<Record<Modality, Float32Array>> = {};
  readonly #pair: AlignedPair;

  constructor(pair: AlignedPair, index: ConceptIndex | null, raw: ConceptCorpus | null) {
    this.#pair = pair;
    this.index = index;
    this.raw = raw;
    if (raw) {
      for (const side of ['image', 'text'] as const)
        if (raw[side].cols !== pair.image.d) throw new SaeError('ERR_SHAPE', `the corpus ${side} embeddings have ${raw[side].cols} columns, the pair d = ${pair.image.d}`);
      if (raw.captions.length !== raw.text.rows) throw new SaeError('ERR_SHAPE', `the corpus has ${raw.captions.length} captions for ${raw.text.rows} text rows`);
    }
    if (index && index.m !== pair.image.m) throw new SaeError('ERR_SHAPE', `the concept index has m = ${index.m}, the pair m = ${pair.image.m}: it was built for another pair`);
    if (index && index.meta.pair !== pairFingerprint(pair))
      throw new SaeError('ERR_STATE', 'the concept index was built from another aligned pair (its pair fingerprint differs): rebuild it with cmsae concepts --pair <this pair>, or serve the pair it was built from');
    if (index && raw && (raw.image.rows !== index.meta.corpus.images || raw.text.rows !== index.meta.corpus.texts))
      throw new SaeError(
        'ERR_SHAPE',
        `the corpus given has ${raw.image.rows} images and ${raw.text.rows} captions, the concept index was built on ${index.meta.corpus.images} and ${index.meta.corpus.texts}: give the corpus the index was built on, or rebuild the index on this one`,
      );
  }

  get present(): boolean {
    return this.index !== null || this.raw !== null;
  }

  rows(side: Modality): number {
    if (this.index) return side === 'image' ? this.index.meta.corpus.images : this.index.meta.corpus.texts;
    return this.raw ? this.raw[side].rows : 0;
  }

  /** ERR_RANGE (404) unless row is a corpus row of that side. */
  checkRow(side: Modality, row: number): void {
    if (!this.present) throw new HttpError(409, 'ERR_STATE', 'this service has no corpus: start it with --concepts (or a corpus) to refer to corpus rows');
    const n = this.rows(side);
    if (!(Number.isSafeInteger(row) && row >= 0 && row < n)) throw new HttpError(404, 'ERR_RANGE', `${side} row ${row} does not exist: the corpus has ${n} ${side === 'image' ? 'images' : 'captions'} (rows 0..${n - 1})`);
  }

  caption(row: number): string {
    return this.index ? this.index.captions([row])[0] : this.raw!.captions[row];
  }

  imageRef(row: number): string | null {
    return this.index ? this.index.imageRef(row) : (this.raw?.imageRefs?.[row] ?? null);
  }

  imageLabels(row: number): string[] | null {
    return this.index ? this.index.imageLabels(row) : (this.raw?.imageLabels?.[row] ?? null);
  }

  imageOfText(): Int32Array | null {
    return this.index ? this.index.imageOfText() : (this.raw?.imageOfText ?? null);
  }

  /** Image row of caption `row` (row r when captions pair with images by row). */
  imageOfCaption(row: number): number {
    return this.imageOfText()?.[row] ?? row;
  }

  /** Caption rows that describe image `row`. */
  captionsOfImage(row: number): number[] {
    const map = this.imageOfText();
    if (!map) return row < this.rows('text') ? [row] : [];
    const out: number[] = [];
    map.forEach((img, t) => img === row && out.push(t));
    return out;
  }

  /** The corpus codes of one side in the aligned index space (the index's, or encoded from the embeddings once). */
  codes(side: Modality): SparseCodes {
    const have = this.#codes[side] ?? this.index?.codes(side);
    if (have) return have;
    if (!this.raw) throw new HttpError(409, 'ERR_STATE', 'this service has no corpus: start it with --concepts (or a corpus) to search it');
    return (this.#codes[side] = this.#pair.encode(side, this.raw[side]));
  }

  /** One corpus row's codes. */
  rowCodes(side: Modality, row: number): SparseCodes {
    this.checkRow(side, row);
    const c = this.codes(side);
    return { rows: 1, k: c.k, indices: c.indices.slice(row * c.k, (row + 1) * c.k), values: c.values.slice(row * c.k, (row + 1) * c.k) };
  }

  /** A raw corpus embedding (needs the corpus embeddings). */
  rowEmbedding(side: Modality, row: number): Float32Array | null {
    this.checkRow(side, row);
    if (!this.raw) return null;
    const d = this.raw[side].cols;
    return this.raw[side].data.slice(row * d, (row + 1) * d);
  }

  searchCodes(side: Modality, indices: ArrayLike<number>, values: ArrayLike<number>, n: number): Hit[] {
    const s = (this.#search[side] ??= new CodeSearch(this.codes(side), this.#pair.image.m));
    return s.top(indices, values, n);
  }

  /** Dense cosine retrieval against the normalized corpus embeddings; null without them. */
  searchDense(side: Modality, q: Float32Array, n: number): Hit[] | null {
    if (!this.raw) return null;
    let x = this.#unit[side];
    if (!x) {
      const m = this.raw[side];
      x = Float32Array.from(m.data);
      this.#pair.normalizer.apply(side, x, m.rows, m.cols);
      // The normalizer's l2 step leaves unit rows only for 'l2'/'center+l2'; 'none' rows are made unit here.
      if (this.#pair.normalizer.kind === 'none') for (let r = 0; r < m.rows; r++) x.set(unit(x.subarray(r * m.cols, (r + 1) * m.cols)), r * m.cols);
      this.#unit[side] = x;
    }
    return denseTop(x, this.raw[side].cols, unit(q), n);
  }
}
