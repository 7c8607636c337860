/** What every route of one service shares. */
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { SparseCodes } from '../types.js';
import type { CorpusView } from './corpus.js';
import type { PairEngine } from './engine.js';
import type { ServiceMetrics } from './metrics.js';
import type { ResolvedServiceOptions } from './options.js';

export interface ServiceContext {
  engine: PairEngine;
  corpus: CorpusView;
  options: ResolvedServiceOptions;
  metrics: ServiceMetrics;
  /** Where the pair was loaded from and its alignment.json checksum (null for a pair given as an object). */
  provenance: { dir: string | null; checksum: string | null };
  /** Label per concept id (null without a concept index). */
  labels: string[] | null;
}

/** Rows x cols nested arrays of a flat typed array (what JSON responses hold). */
export function nested(a: ArrayLike<number>, rows: number, cols: number): number[][] {
  const out: number[][] = new Array(rows);
  for (let r = 0; r < rows; r++) out[r] = Array.prototype.slice.call(a, r * cols, (r + 1) * cols) as number[];
  return out;
}

/** A flat Float32Array of a vector or a list of equal-length vectors (null read as NaN). */
export function flatten(v: (number | null)[] | (number | null)[][], what: string): { rows: number; cols: number; data: Float32Array } {
  const rowsOf = Array.isArray(v[0]) ? (v as (number | null)[][]) : [v as (number | null)[]];
  const cols = rowsOf[0].length;
  const data = new Float32Array(rowsOf.length * cols);
  rowsOf.forEach((row, r) => {
    if (row.length !== cols) throw new SaeError('ERR_SHAPE', `${what} row ${r} has ${row.length} values, row 0 has ${cols}: every row needs the same length`);
    for (let c = 0; c < cols; c++) data[r * cols + c] = row[c] ?? NaN;
  });
  return { rows: rowsOf.length, cols, data };
}

/** The concept labels of the active slots of some codes. */
export function codeLabels(ctx: ServiceContext, c: SparseCodes): string[][] | undefined {
  const labels = ctx.labels;
  if (!labels) return undefined;
  const out: string[][] = [];
  for (let r = 0; r < c.rows; r++) {
    const row: string[] = [];
    for (let s = 0; s < c.k; s++) row.push(c.values[r * c.k + s] !== 0 ? labels[c.indices[r * c.k + s]] : '');
    out.push(row);
  }
  return out;
}

export type { Modality };
