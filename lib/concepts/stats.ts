/**
 * The corpus statistics of a concept index, computed from sparse codes in the aligned index space: fire counts,
 * the top-N rows per latent, and each latent's top-P partners on the other side by Pearson correlation over the
 * corpus pairs (text row t with image row imageOfText[t]). The contract of the native kernel
 * (native/eval/concept_index.cc); its plain TypeScript reference is test/concepts/reference.ts.
 */
import type { SparseCodes } from '../types.js';

export interface ConceptStatsOptions {
  m: number;
  topN: number;
  partners: number;
}

/** Padding: rows/partners of -1 (value 0 / correlation NaN) where a latent has fewer than N (or P) of them. */
export interface ConceptStats {
  m: number;
  topN: number;
  partners: number;
  /** Pairs the correlations are over (text rows). */
  pairs: number;
  /** Rows on which each latent is active (a nonzero value), per side [m]. */
  fireImage: Int32Array;
  fireText: Int32Array;
  /** [m, topN]: rows by value descending, ties by ascending row. */
  topImageRows: Int32Array;
  topImageValues: Float32Array;
  topTextRows: Int32Array;
  topTextValues: Float32Array;
  /** corr(image latent i, text latent i) over the pairs; NaN where a side is constant (never fires). */
  matched: Float64Array;
  /** [m, P]: text latents image latent i correlates with most (descending, ties by index). */
  imagePartners: Int32Array;
  imagePartnerCorr: Float64Array;
  /** [m, P]: image latents text latent j correlates with most. */
  textPartners: Int32Array;
  textPartnerCorr: Float64Array;
}

export interface ConceptStatsInput {
  image: SparseCodes;
  text: SparseCodes;
  /** Text row -> image row; null pairs row r with row r (equal row counts). */
  imageOfText: Int32Array | null;
}

/** The statistics of a concept index (see ConceptStats). */
export async function conceptStats(input: ConceptStatsInput, o: ConceptStatsOptions): Promise<ConceptStats> {
  const { conceptStatsReference } = await import('./stats-reference.js');
  return conceptStatsReference(input, o);
}
