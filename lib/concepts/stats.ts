/**
 * The corpus statistics of a concept index, computed from sparse codes in the aligned index space: fire counts,
 * the top-N rows per latent, and each latent's top-P partners on the other side by Pearson correlation over the
 * corpus pairs (text row t with image row imageOfText[t]). The contract of the native kernel
 * (native/eval/concept_index.cc); its plain TypeScript reference is test/concepts/reference.ts.
 */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import type { NativeConceptStats } from '../native/types.js';
import type { SparseCodes } from '../types.js';
import { describe } from '../validate.js';

export interface ConceptStatsOptions {
  m: number;
  topN: number;
  partners: number;
}

/** Padding: rows/partners of -1 (value 0 / correlation NaN) where a latent has fewer than N (or P) of them. */
export interface ConceptStats extends NativeConceptStats {
  m: number;
  topN: number;
  partners: number;
  /** Pairs the correlations are over (text rows). */
  pairs: number;
}

export interface ConceptStatsInput {
  image: SparseCodes;
  text: SparseCodes;
  /** Text row -> image row; null pairs row r with row r (equal row counts). */
  imageOfText: Int32Array | null;
}

/** The statistics of a concept index (see ConceptStats), computed off the event loop by the native kernel. */
export async function conceptStats(input: ConceptStatsInput, o: ConceptStatsOptions): Promise<ConceptStats> {
  if (typeof input !== 'object' || input === null) throw new SaeError('ERR_ARG', `conceptStats needs { image, text, imageOfText }, got ${describe(input)}`);
  if (typeof o !== 'object' || o === null) throw new SaeError('ERR_ARG', `conceptStats needs options { m, topN, partners }, got ${describe(o)}`);
  const { image, text } = input;
  checkCodes(image, 'image');
  checkCodes(text, 'text');
  const map = input.imageOfText ?? null;
  if (map !== null && !(map instanceof Int32Array)) throw new SaeError('ERR_DTYPE', `imageOfText must be an Int32Array or null, got ${describe(map)}`);
  const r = await native().conceptIndexAsync(image.indices, image.values, image.rows, image.k, text.indices, text.values, text.rows, text.k, map, o.m, o.topN, o.partners);
  return { m: o.m, topN: o.topN, partners: o.partners, pairs: text.rows, ...r };
}

function checkCodes(c: SparseCodes, side: string): void {
  if (typeof c !== 'object' || c === null || !(c.indices instanceof Int32Array) || !(c.values instanceof Float32Array))
    throw new SaeError('ERR_ARG', `${side} codes must be SparseCodes { rows, k, indices: Int32Array, values: Float32Array }, got ${describe(c)}`);
  if (!Number.isSafeInteger(c.rows) || !Number.isSafeInteger(c.k) || c.rows < 1 || c.k < 1 || c.indices.length !== c.rows * c.k || c.values.length !== c.rows * c.k)
    throw new SaeError('ERR_SHAPE', `${side} codes: rows ${c.rows} x k ${c.k} must be >= 1 and match indices (${c.indices.length}) and values (${c.values.length})`);
}
