/**
 * encodeAndCorrelate: the co-activation correlation of two SAEs over paired rows, batch by batch (encode both
 * sides, feed the exact streaming accumulator). The post-hoc alignment (lib/train/trainer.ts), Figure 2's
 * heterogeneity (lib/eval/heterogeneity.ts) and the synthetic sweep (lib/synth/sweep.ts) all go through it.
 */
import os from 'node:os';

import { readBatch, type Normalizer, type PairedEmbeddings } from '../data/paired.js';
import type { TopKSAE } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import { CoactivationCodes } from './codes.js';
import { CorrelationAccumulator, type CorrelationResult } from './correlation.js';

/** Paired rows read a batch at a time, as the SAEs take them (normalized). */
export interface PairedBatches {
  /** Paired rows in all. */
  rows: number;
  /** Rows per batch (the last one may hold fewer). */
  batchRows: number;
  /** Rows [start, end) of both sides. */
  read(start: number, end: number): { image: Matrix; text: Matrix };
}

/** The rows `rows` (file row numbers) of a pair of embedding files, normalized by `norm`. */
export function fileBatches(data: PairedEmbeddings, rows: Int32Array, norm: Normalizer, batchRows = 4096): PairedBatches {
  return {
    rows: rows.length,
    batchRows,
    read: (start, end) => {
      const idx = rows.subarray(start, end);
      return { image: readBatch(data, 'image', idx, norm), text: readBatch(data, 'text', idx, norm) };
    },
  };
}

/** Row-aligned matrices held in memory (views, no copies). */
export function matrixBatches(image: Matrix, text: Matrix, batchRows: number): PairedBatches {
  const view = (x: Matrix, start: number, end: number): Matrix => ({ rows: end - start, cols: x.cols, data: x.data.subarray(start * x.cols, end * x.cols) });
  return { rows: image.rows, batchRows, read: (start, end) => ({ image: view(image, start, end), text: view(text, start, end) }) };
}

/**
 * Encodes every batch with both SAEs (image rows with `image`, text rows with `text`) and returns the exact
 * correlation of their codes (CorrelationAccumulator.result with minFires). onProgress gets the rows done.
 */
export async function encodeAndCorrelate(
  image: TopKSAE,
  text: TopKSAE,
  batches: PairedBatches,
  opts: { minFires?: number; onProgress?: (done: number) => void } = {},
): Promise<CorrelationResult> {
  using acc = new CorrelationAccumulator(image.m, text.m);
  await encodeInto(acc, image, text, batches, opts.onProgress);
  return acc.result({ minFires: opts.minFires });
}

/** Encodes every batch with both SAEs and adds the paired codes to `sink`; onProgress gets the rows done. */
async function encodeInto(
  sink: { addAsync(a: SparseCodes, b: SparseCodes): Promise<void> },
  image: TopKSAE,
  text: TopKSAE,
  batches: PairedBatches,
  onProgress?: (done: number) => void,
): Promise<void> {
  for (let start = 0; start < batches.rows; start += batches.batchRows) {
    const end = Math.min(batches.rows, start + batches.batchRows);
    const b = batches.read(start, end);
    const [ci, ct] = await Promise.all([image.encodeAsync(b.image), text.encodeAsync(b.text)]);
    await sink.addAsync(ci, ct);
    onProgress?.(end);
  }
}

/**
 * Encodes every batch with both SAEs into a code store (the input of the large-m alignment and of shards):
 * rowStart numbers the first row (a shard's place in the whole job), tag names what encoded it.
 */
export async function encodeToCodes(
  image: TopKSAE,
  text: TopKSAE,
  batches: PairedBatches,
  opts: { rowStart?: number; tag?: string; onProgress?: (done: number) => void } = {},
): Promise<CoactivationCodes> {
  const store = new CoactivationCodes(image.m, text.m, { rowStart: opts.rowStart ?? 0, tag: opts.tag ?? '' });
  try {
    await encodeInto(store, image, text, batches, opts.onProgress);
  } catch (e) {
    store.dispose();
    throw e;
  }
  return store;
}

/**
 * Whether the dense streaming accumulator (8 bytes per latent pair, plus the float32 correlation) fits the
 * memory budget (bytes; default half of physical memory): the post-hoc alignment takes the code store's
 * large-m path otherwise.
 */
export function denseCorrelationFits(mA: number, mB: number, memoryBudget = 0): boolean {
  return denseCorrelationBytes(mA, mB) <= alignmentBudget(memoryBudget);
}

/** The alignment's memory budget in bytes: the one given, or (0 / absent) half of physical memory, as natively. */
export function alignmentBudget(memoryBudget = 0): number {
  return memoryBudget > 0 ? memoryBudget : os.totalmem() / 2;
}

/** Bytes the dense streaming accumulator plans: 8 per latent pair, 4 for the float32 correlation, 256 MiB of chunks. */
export function denseCorrelationBytes(mA: number, mB: number): number {
  return 12 * mA * mB + 2 ** 28;
}
