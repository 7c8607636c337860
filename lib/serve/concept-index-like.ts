/**
 * What the service reads from a concept index (lib/concepts' ConceptIndex has all of it): the routes are typed
 * against this shape so they need nothing else of the index.
 */
import type { Concept, ConceptIndexMeta, ConceptSummary } from '../concepts/types.js';
import type { SparseCodes } from '../types.js';

export interface ConceptIndexLike {
  readonly meta: ConceptIndexMeta;
  readonly m: number;
  concept(id: number): Concept;
  summaries(): ConceptSummary[];
  captions(rows?: ArrayLike<number>): string[];
  imageRef(row: number): string | null;
  imageLabels(row: number): string[] | null;
  codes(side: 'image' | 'text'): SparseCodes;
  imageOfText(): Int32Array | null;
}
