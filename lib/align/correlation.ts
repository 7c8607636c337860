/** CorrelationAccumulator: exact, streaming Pearson correlation between two paired sets of sparse codes. */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import { QueuedHandle } from '../native/queued-handle.js';
import type { NativeCorrHandle, NativeCorrStats } from '../native/types.js';
import type { Matrix, SparseCodes } from '../types.js';
import { checkPairedCodes } from '../validate.js';
import { resolveDevice, type Device } from '../device.js';

/**
 * n (rows seen); firesA/B (rows in which each latent is active, value != 0); aliveA/B (1 when the latent fired
 * at least minFires times and is not constant); meanA/B; stdA/B (population standard deviations); and the
 * mA x mB Pearson correlation (float32; 0 wherever either latent is not alive), plus the same in float64 when
 * result({ float64: true }) asked for it.
 */
export type CorrelationResult = NativeCorrStats & { correlation: Matrix; correlation64?: Float64Array };

export interface TopCorrelations {
  /** For each A latent, its k largest correlations with alive B latents (best first; index -1 = none). */
  rows: { k: number; indices: Int32Array; values: Float32Array };
  /** For each B latent, its k largest correlations with alive A latents. */
  cols: { k: number; indices: Int32Array; values: Float32Array };
}

/**
 * Accumulates, over paired rows of codes a (from SAE A) and b (from SAE B), the moments and co-moments
 * S_ij = sum a_i b_j in float64 without densifying the codes: O(rows * kA * kB) work plus O(mA * mB)
 * memory (8 bytes per pair). Shards can be merged and serialized.
 */
export class CorrelationAccumulator implements Disposable {
  readonly #handle: QueuedHandle<NativeCorrHandle>;
  readonly mA: number;
  readonly mB: number;

  /**
   * @param opts.device where the pair products accumulate: 'auto' (default; CMSAE_DEVICE overrides: CUDA when a
   *   device exists), 'cpu' or 'cuda' (ERR_CUDA_UNAVAILABLE without one). The per-latent moments stay on the CPU.
   */
  constructor(mA: number, mB: number, opts?: { device?: Device });
  /** @internal */
  constructor(mA: number, mB: number, opts: { device?: Device } | undefined, handle: NativeCorrHandle);
  constructor(mA: number, mB: number, opts: { device?: Device } = {}, handle?: NativeCorrHandle) {
    if (!handle) {
      for (const [name, v] of [['mA', mA], ['mB', mB]] as const)
        if (!Number.isInteger(v) || v < 1) throw new SaeError('ERR_ARG', `${name} must be an integer >= 1, got ${String(v)}`);
    }
    this.mA = mA;
    this.mB = mB;
    this.#handle = new QueuedHandle(handle ?? new (native().NativeCorr)(mA, mB, resolveDevice(opts?.device)), 'this CorrelationAccumulator');
  }

  #native(): NativeCorrHandle {
    return this.#handle.sync();
  }

  #check(a: SparseCodes, b: SparseCodes): void {
    checkPairedCodes(a, b, this.mA, this.mB);
  }

  /** Adds paired rows (row r of a and row r of b describe the same sample). */
  add(a: SparseCodes, b: SparseCodes): void {
    this.#check(a, b);
    this.#native().add(a.indices, a.values, a.k, b.indices, b.values, b.k, a.rows);
  }

  /** add() on a worker thread; the inputs must not change until it settles. */
  addAsync(a: SparseCodes, b: SparseCodes): Promise<void> {
    try {
      this.#check(a, b);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#handle.enqueue((h) => h.addAsync(a.indices, a.values, a.k, b.indices, b.values, b.k, a.rows));
  }

  /** Adds another accumulator's rows into this one (shards from other threads, processes or machines). */
  merge(other: CorrelationAccumulator): void {
    if (!(other instanceof CorrelationAccumulator)) throw new SaeError('ERR_ARG', 'merge needs a CorrelationAccumulator');
    this.#native().merge(other.#native());
  }

  serialize(): Uint8Array {
    return this.#native().serialize();
  }

  static deserialize(bytes: Uint8Array): CorrelationAccumulator {
    if (!(bytes instanceof Uint8Array)) throw new SaeError('ERR_DTYPE', 'deserialize needs a Uint8Array');
    const h = new (native().NativeCorr)(bytes);
    const s = h.stats(1);
    return new CorrelationAccumulator(s.firesA.length, s.firesB.length, undefined, h);
  }

  /** Rows added so far. */
  get n(): number {
    return this.#native().stats(1).n;
  }

  /** Moments, alive masks and the dense mA x mB correlation matrix. */
  result(opts: { minFires?: number; float64?: boolean } = {}): CorrelationResult {
    const minFires = checkMinFires(opts.minFires);
    const h = this.#native();
    const s = h.stats(minFires);
    const correlation: Matrix = { rows: this.mA, cols: this.mB, data: new Float32Array(this.mA * this.mB) };
    h.correlation(minFires, correlation.data);
    const out: CorrelationResult = { ...s, correlation };
    if (opts.float64) {
      out.correlation64 = new Float64Array(this.mA * this.mB);
      h.correlation(minFires, out.correlation64);
    }
    return out;
  }

  /** The k strongest (largest) correlations per row and per column, computed without a dense matrix. */
  topCorrelations(k: number, opts: { minFires?: number } = {}): TopCorrelations {
    if (!Number.isInteger(k) || k < 1 || k > this.mA || k > this.mB) throw new SaeError('ERR_ARG', `k must be an integer in [1, min(mA, mB)], got ${String(k)}`);
    const t = this.#native().top(k, checkMinFires(opts.minFires));
    return { rows: { k, indices: t.rowIndices, values: t.rowValues }, cols: { k, indices: t.colIndices, values: t.colValues } };
  }

  dispose(): void {
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function checkMinFires(v: unknown): number {
  const x = v ?? 1;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new SaeError('ERR_ARG', `minFires must be a number >= 0, got ${String(v)}`);
  return x;
}
