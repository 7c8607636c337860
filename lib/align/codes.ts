/**
 * CoactivationCodes: paired sparse codes kept whole, for the exact alignment at any width whose codes fit
 * (mA x mB beyond what a dense co-moment matrix allows), and for shards that merge exactly across processes.
 */
import { SaeError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularFile } from '../io/files.js';
import { native } from '../native/load.js';
import { QueuedHandle } from '../native/queued-handle.js';
import type { NativeCodesAlignment, NativeCodesHandle, NativeCodesInfo, NativeCodesPlan } from '../native/types.js';
import type { Matrix, SparseCodes } from '../types.js';
import { checkOptionKeys, checkPairedCodes } from '../validate.js';

export interface AlignCodesOptions {
  /** Maximize the signed correlation (default true) or its absolute value. */
  signed?: boolean;
  /** A latent is alive when it fired at least this often (default 1). */
  minFires?: number;
  /**
   * 'auto' (default): the dense path when the alive correlation submatrix fits memoryBudget with everything
   * else, the large-m path otherwise. 'dense' / 'large' force one (ERR_NOMEM when it does not fit).
   * Both return the same certified optimum over the same float32 correlations.
   */
  path?: 'auto' | 'dense' | 'large';
  /** Bytes the alignment may plan for (default: half of physical memory). The plan is reported in the result. */
  memoryBudget?: number;
  /** Large-m path: candidates per row of the first sparse graph (default 16). */
  candidates?: number;
  /**
   * Large-m path: keep the co-firing entries (8 bytes each) between pricing rounds when they fit the budget
   * (default true); false re-forms them from the codes for every round (less memory, one pass per round).
   */
  keepCofiring?: boolean;
}

/** The memory plan (bytes) and the path it chose. */
export type AlignmentPlan = NativeCodesPlan;

/**
 * The alignment of a code store: the statistics (as CorrelationAccumulator.result() has them, without the dense
 * matrix), rowToCol (B latent matched to each A latent, -1 unmatched), perm (when mA == mB: a bijection, leftover
 * latents paired in ascending order, as alignLatents does), matchedCorrelation (C of each A latent with its
 * partner, 0 when either is not alive), objective (sum of C, or |C|, over the matched alive pairs), the duals
 * that certify it (by latent, maximize sense), the plan,
 * the large-m path's counters and the time of each phase.
 */
export type CodesAlignment = NativeCodesAlignment;

const ALIGN_OPTIONS = ['signed', 'minFires', 'path', 'memoryBudget', 'candidates', 'keepCofiring'];

function checkAlignOptions(opts: AlignCodesOptions): AlignCodesOptions {
  checkOptionKeys(opts, ALIGN_OPTIONS, 'CoactivationCodes.align', true);
  if (opts.signed !== undefined && typeof opts.signed !== 'boolean') throw new SaeError('ERR_ARG', `option signed must be a boolean, got ${String(opts.signed)}`);
  if (opts.path !== undefined && !['auto', 'dense', 'large'].includes(opts.path)) throw new SaeError('ERR_ARG', `option path must be 'auto', 'dense' or 'large', got ${String(opts.path)}`);
  const mf = opts.minFires ?? 1;
  if (typeof mf !== 'number' || !Number.isFinite(mf) || mf < 0) throw new SaeError('ERR_ARG', `option minFires must be a number >= 0, got ${String(opts.minFires)}`);
  const mb = opts.memoryBudget ?? 0;
  if (typeof mb !== 'number' || !Number.isFinite(mb) || mb < 0) throw new SaeError('ERR_ARG', `option memoryBudget must be a number of bytes >= 0, got ${String(opts.memoryBudget)}`);
  const policy = native().assignmentPolicy();
  const k = opts.candidates ?? policy.defaultCandidates;
  const max = policy.maxCandidates;
  if (!Number.isInteger(k) || k < 1 || k > max) throw new SaeError('ERR_ARG', `option candidates must be an integer in [1, ${max}], got ${String(opts.candidates)}`);
  if (opts.keepCofiring !== undefined && typeof opts.keepCofiring !== 'boolean') throw new SaeError('ERR_ARG', `option keepCofiring must be a boolean, got ${String(opts.keepCofiring)}`);
  return { signed: opts.signed ?? true, minFires: mf, path: opts.path ?? 'auto', memoryBudget: mb, candidates: k, keepCofiring: opts.keepCofiring ?? true };
}

export class CoactivationCodes implements Disposable {
  readonly #handle: QueuedHandle<NativeCodesHandle>;
  readonly mA: number;
  readonly mB: number;

  /**
   * @param opts.rowStart the global number of the first row this store's add() receives (default 0): shards
   *   of one job give their row ranges, so that merged shards are ordered (and overlaps refused).
   * @param opts.tag what produced the codes (e.g. a fingerprint of the SAE pair); merge() requires equal tags.
   */
  constructor(mA: number, mB: number, opts?: { rowStart?: number; tag?: string });
  /** @internal */
  constructor(mA: number, mB: number, opts: { rowStart?: number; tag?: string } | undefined, handle: NativeCodesHandle);
  constructor(mA: number, mB: number, opts: { rowStart?: number; tag?: string } = {}, handle?: NativeCodesHandle) {
    if (!handle) {
      for (const [name, v] of [['mA', mA], ['mB', mB]] as const)
        if (!Number.isInteger(v) || v < 1) throw new SaeError('ERR_ARG', `${name} must be an integer >= 1, got ${String(v)}`);
      checkOptionKeys(opts, ['rowStart', 'tag'], 'CoactivationCodes', true);
      const rs = opts.rowStart ?? 0;
      if (!Number.isInteger(rs) || rs < 0) throw new SaeError('ERR_ARG', `option rowStart must be an integer >= 0, got ${String(opts.rowStart)}`);
      if (opts.tag !== undefined && typeof opts.tag !== 'string') throw new SaeError('ERR_ARG', 'option tag must be a string');
      handle = new (native().NativeCodes)(mA, mB, rs, opts.tag ?? '');
    }
    this.mA = mA;
    this.mB = mB;
    this.#handle = new QueuedHandle(handle, 'this CoactivationCodes store');
  }

  #check(a: SparseCodes, b: SparseCodes): void {
    checkPairedCodes(a, b, this.mA, this.mB);
  }

  /** Appends paired rows (row r of a and row r of b describe the same sample), validated first. */
  add(a: SparseCodes, b: SparseCodes): void {
    this.#check(a, b);
    this.#handle.sync().add(a.indices, a.values, a.k, b.indices, b.values, b.k, a.rows);
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

  /** Copies another store's rows in (a shard of the same job: same sizes and tag, rows that do not overlap). */
  merge(other: CoactivationCodes): void {
    if (!(other instanceof CoactivationCodes)) throw new SaeError('ERR_ARG', 'merge needs a CoactivationCodes store');
    this.#handle.sync().merge(other.#handle.sync());
  }

  /** Rows, nonzeros, bytes held, segments (shards) and tag. */
  info(): NativeCodesInfo {
    return this.#handle.sync().describe();
  }

  get rows(): number {
    return this.info().rows;
  }

  /** The versioned, checksummed binary form (format CMSAECS1); deserialize() reads it back. */
  serialize(): Uint8Array {
    return this.#handle.sync().serialize();
  }

  static deserialize(bytes: Uint8Array): CoactivationCodes {
    if (!(bytes instanceof Uint8Array)) throw new SaeError('ERR_DTYPE', 'deserialize needs a Uint8Array');
    const h = new (native().NativeCodes)(bytes);
    const d = h.describe();
    return new CoactivationCodes(d.mA, d.mB, undefined, h);
  }

  /** Writes the serialized store to `file` atomically (a temporary sibling, then rename). */
  async writeShard(file: string): Promise<void> {
    await writeFileAtomic(file, this.serialize());
  }

  /** Reads a shard written by writeShard (or `cmsae correlate`); ERR_FORMAT names the file when it is not one. */
  static async readShard(file: string): Promise<CoactivationCodes> {
    const bytes = await readRegularFile(file, 'code shard');
    try {
      return CoactivationCodes.deserialize(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      if (e instanceof SaeError && e.code === 'ERR_FORMAT') throw new SaeError('ERR_FORMAT', `${file}: ${e.message}`);
      throw e;
    }
  }

  /**
   * The dense mA x mB float32 correlation of the codes: the bits both alignment paths read (0 wherever either
   * latent is not alive at minFires, default 1). Only where it fits in memory (ERR_NOMEM otherwise).
   */
  correlation(opts: { minFires?: number } = {}): Matrix {
    checkOptionKeys(opts, ['minFires'], 'CoactivationCodes.correlation', true);
    const mf = opts.minFires ?? 1;
    if (typeof mf !== 'number' || !Number.isFinite(mf) || mf < 0) throw new SaeError('ERR_ARG', `option minFires must be a number >= 0, got ${String(opts.minFires)}`);
    const h = this.#handle.sync();
    if (this.mA * this.mB > 2 ** 32) throw new SaeError('ERR_NOMEM', `a dense ${this.mA} x ${this.mB} correlation does not fit in one Float32Array: use align()`);
    const data = new Float32Array(this.mA * this.mB);
    h.correlation(mf, data);
    return { rows: this.mA, cols: this.mB, data };
  }

  /** The exact alignment of everything added (see AlignCodesOptions for the path and memory choices). */
  align(opts: AlignCodesOptions = {}): CodesAlignment {
    return this.#handle.sync().align(checkAlignOptions(opts));
  }

  /** align() on a worker thread. */
  alignAsync(opts: AlignCodesOptions = {}): Promise<CodesAlignment> {
    let o: AlignCodesOptions;
    try {
      o = checkAlignOptions(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#handle.enqueue((h) => h.alignAsync(o));
  }

  dispose(): void {
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
