/** TopKSAE: the public handle of a native Top-K sparse autoencoder. */
import { SaeError } from '../errors.js';
import { bareSaeRefusal, readCheckpoint, saveSae, type CheckpointContents, type SaveOptions } from '../io/checkpoint.js';
import { native } from '../native/load.js';
import { QueuedHandle } from '../native/queued-handle.js';
import type { NativeSaeHandle, NativeStepStats } from '../native/types.js';
import type { Matrix, SparseCodes } from '../types.js';
import { checkCodes, checkFloatArray, checkMatrix, checkOptionKeys, describe } from '../validate.js';
import { DeviceRows } from './device-rows.js';
import { nativeOptions, resolveOptions, type ResolvedOptions, type TopKSAEOptions } from './options.js';
import { MOMENT_NAMES, type SaeWeights, type StepOptions, type StepResult, type TrainingState } from './types.js';

export { MOMENT_NAMES, type SaeWeights, type StepOptions, type StepResult, type TrainingState } from './types.js';

function toResult({ rows: _rows, ...stats }: NativeStepStats): StepResult {
  return stats;
}

export class TopKSAE implements Disposable {
  readonly options: ResolvedOptions;
  readonly #handle: QueuedHandle<NativeSaeHandle>;

  private constructor(options: ResolvedOptions, initialize: boolean) {
    this.options = options;
    const h = new (native().NativeSae)(nativeOptions(options));
    this.#handle = new QueuedHandle(h, 'this SAE');
    if (initialize) h.init(options.seed, options.bDecInit === 'mean');
  }

  /** A freshly initialized SAE: W_enc ~ U(+-1/sqrt d), b_enc = 0, W_dec = row-normalized W_enc, b_dec = 0. */
  static create(options: TopKSAEOptions): TopKSAE {
    return new TopKSAE(resolveOptions(options), true);
  }

  /** An SAE with the given weights (SAELens orientation). d and m are taken from the weights. */
  static fromWeights(weights: SaeWeights, options: Omit<TopKSAEOptions, 'd' | 'm'> & { d?: number; m?: number }): TopKSAE {
    if (typeof weights !== 'object' || weights === null) throw new SaeError('ERR_ARG', 'weights must be an object');
    if (typeof options !== 'object' || options === null)
      throw new SaeError('ERR_ARG', `fromWeights needs options with at least k (e.g. TopKSAE.fromWeights(w, { k: 32 })), got ${describe(options)}`);
    checkMatrix(weights.W_enc, 'W_enc');
    const d = weights.W_enc.rows;
    const m = weights.W_enc.cols;
    if ((options.d !== undefined && options.d !== d) || (options.m !== undefined && options.m !== m))
      throw new SaeError('ERR_SHAPE', `options say d=${options.d}, m=${options.m} but W_enc is ${d} x ${m}`);
    const sae = new TopKSAE(resolveOptions({ ...options, d, m }), false);
    try {
      sae.setWeights(weights);
    } catch (e) {
      sae.dispose();
      throw e;
    }
    return sae;
  }

  get d(): number {
    return this.options.d;
  }
  get m(): number {
    return this.options.m;
  }
  get k(): number {
    return this.options.k;
  }
  get disposed(): boolean {
    return this.#handle.disposed;
  }

  #native(): NativeSaeHandle {
    return this.#handle.sync();
  }

  #allocCodes(rows: number): SparseCodes {
    const k = this.#native().status().codesK;
    return { rows, k, indices: new Int32Array(rows * k), values: new Float32Array(rows * k) };
  }

  /** Top-K codes of each row of x (BatchTopK models: latents above the learned threshold, at most the capacity). */
  encode(x: Matrix): SparseCodes {
    checkMatrix(x, 'x', this.d);
    const codes = this.#allocCodes(x.rows);
    this.#native().encode(x.data, x.rows, codes.indices, codes.values);
    return codes;
  }

  /** encode() on a worker thread; x must not be modified until the promise settles. */
  encodeAsync(x: Matrix): Promise<SparseCodes> {
    try {
      checkMatrix(x, 'x', this.d);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#handle.enqueue(async (h) => {
      const k = h.status().codesK;
      const codes: SparseCodes = { rows: x.rows, k, indices: new Int32Array(x.rows * k), values: new Float32Array(x.rows * k) };
      await h.encodeAsync(x.data, x.rows, codes.indices, codes.values);
      return codes;
    });
  }

  /** x_hat = codes . W_dec + b_dec. */
  decode(codes: SparseCodes): Matrix {
    checkCodes(codes, 'codes', this.m);
    const out: Matrix = { rows: codes.rows, cols: this.d, data: new Float32Array(codes.rows * this.d) };
    this.#native().decode(codes.indices, codes.values, codes.rows, codes.k, out.data);
    return out;
  }

  #checkBatch(x: Matrix, pair: Matrix | undefined): void {
    checkMatrix(x, 'x', this.d);
    if (pair !== undefined) {
      checkMatrix(pair, 'pair', this.d);
      if (pair.rows !== x.rows) throw new SaeError('ERR_SHAPE', `pair has ${pair.rows} rows but x has ${x.rows}: paired batches need equal rows`);
    }
  }

  /** One training step: forward, loss, sparse backward, projection, clipping, AdamW, decoder renorm. */
  step(x: Matrix, opts: StepOptions): StepResult {
    const o = stepOptions(opts, 'step');
    this.#checkBatch(x, o.pair);
    return toResult(this.#native().step(x.data, o.pair?.data ?? null, x.rows, o.lr));
  }

  /** step() on a worker thread; the event loop stays free. Inputs must not be modified until it settles. */
  stepAsync(x: Matrix, opts: StepOptions): Promise<StepResult> {
    let o: StepOptions;
    try {
      o = stepOptions(opts, 'stepAsync');
      this.#checkBatch(x, o.pair);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#handle.enqueue(async (h) => toResult(await h.stepAsync(x.data, o.pair?.data ?? null, x.rows, o.lr)));
  }

  /**
   * Forward + backward without an update; gradients stay inside for applyUpdate() (used to clip several
   * SAEs jointly). `extraDval` ([rows(*2), k]) adds dL/d(code value) from code-level losses.
   */
  forwardBackward(x: Matrix, opts: { pair?: Matrix; extraDval?: Float32Array } = {}): StepResult {
    checkOptionKeys(opts, ['pair', 'extraDval'], 'forwardBackward');
    this.#checkBatch(x, opts.pair);
    if (opts.extraDval !== undefined) checkFloatArray(opts.extraDval, 'extraDval', x.rows * (opts.pair ? 2 : 1) * this.k);
    return toResult(this.#native().forwardBackward(x.data, opts.pair?.data ?? null, x.rows, opts.extraDval ?? null));
  }

  /**
   * step() over rows resident on the device: the batch is x's rows `idx` (positions in x), paired with the
   * same rows of `pair`. Needs device 'cuda'.
   */
  stepRows(x: DeviceRows, idx: Int32Array, opts: { lr: number; pair?: DeviceRows }): StepResult {
    const o = stepOptions(opts, 'stepRows');
    this.#checkRows(x, idx, o.pair);
    return toResult(this.#native().stepRows(x.handle, o.pair?.handle ?? null, idx, o.lr));
  }

  /** stepRows() on a worker thread. idx must not change until it settles. */
  stepRowsAsync(x: DeviceRows, idx: Int32Array, opts: { lr: number; pair?: DeviceRows }): Promise<StepResult> {
    let o: { lr: number; pair?: DeviceRows };
    try {
      o = stepOptions(opts, 'stepRowsAsync');
      this.#checkRows(x, idx, o.pair);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.#handle.enqueue(async (h) => toResult(await h.stepRowsAsync(x.handle, o.pair?.handle ?? null, idx, o.lr)));
    return o.pair ? o.pair.pin(x.pin(run)) : x.pin(run);
  }

  /** forwardBackward() over resident rows (see stepRows). */
  forwardBackwardRows(x: DeviceRows, idx: Int32Array, opts: { pair?: DeviceRows; extraDval?: Float32Array } = {}): StepResult {
    checkOptionKeys(opts, ['pair', 'extraDval'], 'forwardBackwardRows');
    this.#checkRows(x, idx, opts.pair);
    if (opts.extraDval !== undefined) checkFloatArray(opts.extraDval, 'extraDval', idx.length * (opts.pair ? 2 : 1) * this.k);
    return toResult(this.#native().forwardBackwardRows(x.handle, opts.pair?.handle ?? null, idx, opts.extraDval ?? null));
  }

  #checkRows(x: DeviceRows, idx: Int32Array, pair: DeviceRows | undefined): void {
    if (this.options.device !== 'cuda') throw new SaeError('ERR_STATE', "resident rows need an SAE on device 'cuda'");
    if (!(x instanceof DeviceRows) || (pair !== undefined && !(pair instanceof DeviceRows))) throw new SaeError('ERR_ARG', 'x and pair must be DeviceRows');
    if (!(idx instanceof Int32Array)) throw new SaeError('ERR_DTYPE', 'idx must be an Int32Array');
    if (idx.length === 0) throw new SaeError('ERR_SHAPE', 'empty batch: give at least one row index');
    if (x.dim !== this.d || (pair && pair.dim !== this.d)) throw new SaeError('ERR_SHAPE', `resident rows have ${x.dim} values, this SAE expects ${this.d}`);
  }

  /** AdamW update from the gradients of the last forwardBackward(), scaled by gradScale (clipping). */
  applyUpdate(lr: number, gradScale = 1): void {
    if (typeof gradScale !== 'number' || !Number.isFinite(gradScale) || gradScale < 0)
      throw new SaeError('ERR_ARG', `gradScale must be a finite number >= 0, got ${String(gradScale)}`);
    this.#native().applyUpdate(checkLr(lr), gradScale);
  }

  /** Loss and dense gradients (after decoder-gradient projection when enabled, before clipping); no update. */
  computeGradients(x: Matrix, opts: { pair?: Matrix } = {}): { loss: number; stats: StepResult; grads: SaeWeights } {
    checkOptionKeys(opts, ['pair'], 'computeGradients');
    const stats = this.forwardBackward(x, opts);
    const grads = this.#emptyWeights();
    this.#native().readGradients(grads.W_enc.data, grads.b_enc, grads.W_dec.data, grads.b_dec);
    return { loss: stats.loss, stats, grads };
  }

  /** Codes chosen by the last training forward pass (rows of x, then rows of the pair). */
  lastCodes(): SparseCodes {
    return this.#native().lastCodes();
  }

  #emptyWeights(): SaeWeights {
    const { d, m } = this;
    return {
      W_enc: { rows: d, cols: m, data: new Float32Array(d * m) },
      b_enc: new Float32Array(m),
      W_dec: { rows: m, cols: d, data: new Float32Array(m * d) },
      b_dec: new Float32Array(d),
    };
  }

  /** A copy of the weights in SAELens orientation. */
  getWeights(): SaeWeights {
    const w = this.#emptyWeights();
    this.#native().readWeights(w.W_enc.data, w.b_enc, w.W_dec.data, w.b_dec);
    return w;
  }

  /** Replaces the weights (validated: shapes, dtypes, finiteness). Optimizer state is kept. */
  setWeights(w: SaeWeights): void {
    const { d, m } = this;
    if (typeof w !== 'object' || w === null) throw new SaeError('ERR_ARG', 'weights must be an object');
    checkMatrix(w.W_enc, 'W_enc', m);
    if (w.W_enc.rows !== d) throw new SaeError('ERR_SHAPE', `W_enc must be ${d} x ${m}, got ${w.W_enc.rows} x ${w.W_enc.cols}`);
    checkMatrix(w.W_dec, 'W_dec', d);
    if (w.W_dec.rows !== m) throw new SaeError('ERR_SHAPE', `W_dec must be ${m} x ${d}, got ${w.W_dec.rows} x ${w.W_dec.cols}`);
    checkFloatArray(w.b_enc, 'b_enc', m);
    checkFloatArray(w.b_dec, 'b_dec', d);
    this.#native().writeWeights(w.W_enc.data, w.b_enc, w.W_dec.data, w.b_dec);
  }

  /** Optimizer moments, step count, latent fire statistics and the BatchTopK threshold. */
  getTrainingState(): TrainingState {
    const { d, m } = this;
    const sizes: Record<string, number> = { W_enc: d * m, b_enc: m, W_dec: d * m, b_dec: d };
    const arrays: Record<string, Float32Array | Float64Array> = {};
    for (const name of MOMENT_NAMES) arrays[name] = new Float32Array(sizes[name.split('.')[0]]);
    arrays.fires = new Float64Array(m);
    arrays.since = new Float64Array(m);
    const s = this.#native().readState(arrays);
    return { arrays, ...s };
  }

  /**
   * Restores what getTrainingState() returned. Checked before anything changes: the arrays (dtype, length,
   * finite; exp_avg_sq, fires and since >= 0, counts whole) and the scalars (step and samplesSeen whole numbers
   * >= 0, threshold finite, flags boolean). ERR_ARG for a missing or mistyped part, ERR_RANGE for a value
   * outside its meaning.
   */
  setTrainingState(state: TrainingState): void {
    if (typeof state !== 'object' || state === null)
      throw new SaeError('ERR_ARG', `setTrainingState needs the object getTrainingState() returns, got ${describe(state)}`);
    const { arrays, ...scalars } = state;
    if (typeof arrays !== 'object' || arrays === null) throw new SaeError('ERR_ARG', 'training state: arrays must be an object of typed arrays');
    for (const key of ['step', 'samplesSeen', 'threshold'] as const)
      if (typeof scalars[key] !== 'number') throw new SaeError('ERR_ARG', `training state: ${key} must be a number, got ${describe(scalars[key])}`);
    for (const key of ['thresholdReady', 'bDecMeanInitPending'] as const)
      if (typeof scalars[key] !== 'boolean') throw new SaeError('ERR_ARG', `training state: ${key} must be a boolean, got ${describe(scalars[key])}`);
    this.#native().writeState(arrays, scalars);
  }

  /** Per-latent fire counts and samples since each latent last fired. */
  latentStats(): { fireCounts: Float64Array; samplesSinceFired: Float64Array; samplesSeen: number } {
    const s = this.getTrainingState();
    return { fireCounts: s.arrays.fires as Float64Array, samplesSinceFired: s.arrays.since as Float64Array, samplesSeen: s.samplesSeen };
  }

  /**
   * Optimizer step count, samples seen, BatchTopK threshold, dead fraction, and checkedUpdates: updates that
   * could not be proven overflow-free in advance and ran on a checked snapshot instead (slower; normal
   * settings need none, see docs/engine.md "Divergence").
   */
  status(): { step: number; samplesSeen: number; threshold: number | null; deadFraction: number; k: number; checkedUpdates: number } {
    const s = this.#native().status();
    return {
      step: s.step,
      samplesSeen: s.samplesSeen,
      threshold: s.thresholdReady ? s.threshold : null,
      deadFraction: s.deadFraction,
      k: s.codesK,
      checkedUpdates: s.checkedUpdates,
    };
  }

  /**
   * Saves cfg.json + sae_weights.safetensors (+ trainer_state.safetensors) atomically. The save takes its turn
   * in this SAE's queue: it waits for the async calls queued before it, and calls queued after it (e.g. a
   * stepAsync right after save()) wait until it has read the state.
   */
  save(dir: string, opts: SaveOptions = {}): Promise<void> {
    return this.#handle.enqueue(() => saveSae(this, dir, opts));
  }

  /**
   * Loads an SAE saved by save(), or a SAELens (4.x-6.x) / sparsify Top-K checkpoint whose forward pass needs no
   * input normalization (see loadCheckpoint for the others and for what was folded on load).
   */
  static async load(dir: string, overrides: Partial<TopKSAEOptions> = {}): Promise<TopKSAE> {
    const c = await readCheckpoint(dir, overrides);
    const sae = saeFromCheckpoint(c);
    const refusal = bareSaeRefusal(dir, c);
    if (refusal) {
      sae.dispose();
      throw refusal;
    }
    return sae;
  }

  /**
   * Frees the native memory (weights, optimizer state, scratch: about 36 bytes per weight) now. Idempotent;
   * queued async work finishes first. Dispose SAEs you no longer need, or declare them with `using`: an SAE
   * that is only dropped is freed by the garbage collector, which Node runs between event-loop turns, so a
   * synchronous loop that creates many SAEs without dispose() holds all of them until it yields.
   */
  dispose(): void {
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** The SAE a checkpoint read by readCheckpoint describes: its weights, then its training state or its BatchTopK threshold. */
export function saeFromCheckpoint(c: CheckpointContents): TopKSAE {
  const sae = TopKSAE.fromWeights(c.weights, c.options);
  try {
    if (c.state) sae.setTrainingState(c.state);
    else if (c.threshold !== null) sae.setTrainingState({ ...sae.getTrainingState(), threshold: c.threshold, thresholdReady: true });
  } catch (e) {
    sae.dispose();
    throw e;
  }
  return sae;
}

/** opts of the step methods: an object with lr (and optionally pair), checked by name. */
function stepOptions<T extends { lr: number; pair?: unknown }>(opts: T, method: string): T {
  if (typeof opts !== 'object' || opts === null)
    throw new SaeError('ERR_ARG', `${method} needs options with the learning rate, e.g. sae.${method}(x, { lr: 1e-3 }); got ${describe(opts)}`);
  checkOptionKeys(opts, ['lr', 'pair'], method);
  checkLr(opts.lr);
  return opts;
}

function checkLr(lr: unknown): number {
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)
    throw new SaeError('ERR_ARG', `lr must be a finite number >= 0, got ${String(lr)}`);
  return lr;
}
