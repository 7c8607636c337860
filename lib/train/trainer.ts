/**
 * Training orchestration: epochs over paired embedding files with a seeded shuffle, LR schedules, the
 * paper's five methods, atomic checkpoints with exact resume, metrics.jsonl and progress events, and the
 * post-hoc alignment step. One native call per SAE per batch; the event loop gets control back between
 * batches (and runs the abort signal).
 *
 * A new run refuses a directory that holds another run unless `force` (lib/train/run-claim.ts). A step
 * whose result is not finite, or a model whose parameters are not finite when it is about to be saved, stops
 * the run with ERR_DIVERGED: the last good checkpoint is left as it was and nothing non-finite is written.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import { AlignedPair } from '../align/aligned-pair.js';
import { alignmentBudget, denseCorrelationBytes, denseCorrelationFits, encodeAndCorrelate, encodeToCodes, fileBatches } from '../align/encode-correlate.js';
import { ReconstructionAccumulator } from '../eval/reconstruction.js';
import { Normalizer, PairedEmbeddings, readBatch, scanRowsAsync, splitRows, type Modality } from '../data/paired.js';
import { SaeError, isSaeError } from '../errors.js';
import { writeDirectoryAtomic, writeFileAtomic, recoverDirectory } from '../io/atomic.js';
import { checkpointFiles, saveSae } from '../io/checkpoint.js';
import { sealJson, unsealJson } from '../io/json-seal.js';
import { ensureDirectory, fsError, readTextFile } from '../io/files.js';
import { DeviceRows } from '../sae/device-rows.js';
import { native } from '../native/load.js';
import { TopKSAE } from '../sae/topk-sae.js';
import { VERSION } from '../version.js';
import { parseConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { checkModelsFinite, createMethodModels, disposeModels, methodStep, methodStepResident, namedModels, type MethodModels, type StepProgress } from './methods.js';
import { epochPlan, runEpochs } from './epochs.js';
import { claimRunDirectory } from './run-claim.js';
import { readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../run/layout.js';

export interface TrainProgress extends StepProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  lr: number;
  samplesPerSec: number;
  etaSec: number;
}

export interface ValidationRecord {
  epoch: number;
  step: number;
  fvuImage: number;
  fvuText: number;
  rows: number;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  /** Final model directories: { shared } or { image, text } (+ pair for posthoc). */
  models: Record<string, string>;
  last: TrainProgress | null;
  validation: ValidationRecord[];
}

export interface TrainerOptions {
  /** The run directory. */
  out: string;
  /** Continue from the run directory's checkpoint (the saved configuration is used). */
  resume?: boolean;
  /** Start a new run even where the directory holds another run (its config, metrics, checkpoint and final models are removed). */
  force?: boolean;
  /** Steps between metrics.jsonl lines (default 50). */
  logEvery?: number;
}

interface CheckpointState {
  format_version: 1;
  step: number;
  epoch: number;
  batch: number;
  elapsed_ms: number;
}

/** One metrics.jsonl line: numbers that are not finite are left out (never written as null). */
function metricLine(record: object): string {
  return JSON.stringify(record, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? undefined : v));
}

/** Refuses batches whose buffers cannot be allocated, before allocating them. */
function checkBatchFits(rows: number, dims: number, batchSize: number): void {
  const maxRows = Math.max(1, Math.floor(Math.min(2 ** 32 / dims, os.totalmem() / 4 / (4 * dims))));
  if (rows > maxRows)
    throw new SaeError('ERR_NOMEM', `batchSize ${batchSize} needs ${((rows * dims * 4) / 2 ** 30).toFixed(1)} GiB of batch buffers (${dims} values per pair), more than this machine can hold: at most ${maxRows} rows per batch fit`);
}

export class Trainer extends EventEmitter {
  readonly config: TrainConfig;
  readonly runDir: string;
  readonly #resume: boolean;
  readonly #force: boolean;
  readonly #logEvery: number;

  /**
   * @param config the training configuration (validated; defaults filled in)
   * @param opts see TrainerOptions
   */
  constructor(config: TrainConfigInput | TrainConfig, opts: TrainerOptions) {
    super();
    if (typeof opts?.out !== 'string' || opts.out === '') throw new SaeError('ERR_ARG', 'Trainer needs an output directory (out)');
    for (const k of ['resume', 'force'] as const)
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw new SaeError('ERR_ARG', `Trainer option ${k} must be a boolean`);
    if (opts.resume && opts.force) throw new SaeError('ERR_ARG', 'resume continues the run in the directory and force replaces it: give one of them');
    if (opts.logEvery !== undefined && !(Number.isSafeInteger(opts.logEvery) && opts.logEvery >= 1)) throw new SaeError('ERR_ARG', `logEvery must be an integer >= 1, got ${String(opts.logEvery)}`);
    this.config = parseConfig(config);
    this.runDir = path.resolve(opts.out);
    this.#resume = opts.resume ?? false;
    this.#force = opts.force ?? false;
    this.#logEvery = opts.logEvery ?? 50;
  }

  /** Reads a run's saved configuration (for resume); see readRunConfig. */
  static async loadConfig(runDir: string): Promise<TrainConfig> {
    return readRunConfig(runDir);
  }

  /**
   * Trains to the end (or until `signal` aborts: then a checkpoint is written and the promise rejects with
   * ERR_ABORTED). Emits 'progress' (TrainProgress) after every step, 'validation' after every epoch and
   * 'checkpoint' ({ step, dir }) after every checkpoint. Rejects with ERR_DIVERGED when training diverges.
   */
  async run(opts: { signal?: AbortSignal } = {}): Promise<TrainResult> {
    const cfg = this.config;
    const t = cfg.train;
    const p = runPaths(this.runDir);
    const data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
    let val: PairedEmbeddings | null = null;
    let models: MethodModels | null = null;
    let resident: ResidentSplit | null = null;
    try {
      val = cfg.data.valImage && cfg.data.valText ? PairedEmbeddings.open(cfg.data.valImage, cfg.data.valText) : null;
      if (cfg.method.startsWith('shared') && data.image.dim !== data.text.dim)
        throw new SaeError('ERR_SHAPE', `method '${cfg.method}' runs both modalities through one SAE, but image rows have ${data.image.dim} values and text rows ${data.text.dim}`);
      if (val && (val.image.dim !== data.image.dim || val.text.dim !== data.text.dim))
        throw new SaeError('ERR_SHAPE', `validation files have ${val.image.dim}/${val.text.dim} columns, training files ${data.image.dim}/${data.text.dim}`);
      const split = val ? { train: trainingRows(cfg, data.rows), val: new Int32Array(0) } : splitRows(data.rows, cfg.data.valFraction, t.seed);
      if (split.train.length === 0) throw new SaeError('ERR_SHAPE', 'no training rows: add data or lower valFraction');
      const steps = t.dropLast ? Math.floor(split.train.length / t.batchSize) : Math.ceil(split.train.length / t.batchSize);
      if (steps < 1) throw new SaeError('ERR_RANGE', `batchSize ${t.batchSize} makes no batch of the ${split.train.length} training rows: at most ${split.train.length} rows fit in a batch (lower batchSize or add data)`);
      const totalSteps = steps * t.epochs;
      const B = t.batchSize;
      const batchRows = Math.min(B, split.train.length);
      checkBatchFits(batchRows, data.image.dim + data.text.dim, B);

      await ensureDirectory(this.runDir, 'run directory');
      await recoverDirectory(p.checkpoint);
      if (!this.#resume) await claimRunDirectory(this.runDir, { force: this.#force });

      let state: CheckpointState = { format_version: 1, step: 0, epoch: 0, batch: 0, elapsed_ms: 0 };
      let norm: Normalizer;
      if (this.#resume) {
        const loaded = await this.#loadCheckpoint(steps);
        state = loaded.state;
        models = loaded.models;
        norm = await readRunNormalizer(this.runDir);
        await this.#trimMetrics(state.step);
      } else {
        // One pass over the data: NaN/Inf rows are reported before training starts; centring means.
        this.emit('scan', { rows: split.train.length });
        const mean: Partial<Record<Modality, Float32Array>> = {};
        for (const side of ['image', 'text'] as const) {
          const mu = await scanRowsAsync(data.file(side), split.train);
          if (val) await scanRowsAsync(val.file(side), Int32Array.from({ length: val.rows }, (_, i) => i));
          else if (split.val.length) await scanRowsAsync(data.file(side), split.val);
          if (cfg.data.normalization === 'center+l2') mean[side] = Float32Array.from(mu);
        }
        norm = new Normalizer(cfg.data.normalization, mean);
        await writeFileAtomic(p.config, JSON.stringify({ ...cfg, library_version: VERSION }, null, 2) + '\n');
        await writeFileAtomic(p.normalization, sealJson(norm.toJSON() as unknown as Record<string, unknown>));
        await writeFileAtomic(p.metrics, '');
        models = createMethodModels(this.config, data.image.dim, data.text.dim);
      }

      const bufImage = new Float32Array(batchRows * data.image.dim), bufText = new Float32Array(batchRows * data.text.dim);
      resident = await this.#residentSplit(models, data, split.train, norm);
      const validation: ValidationRecord[] = [];
      let last: TrainProgress | null = null;
      const started = Date.now() - state.elapsed_ms;
      const samplesAtStart = state.step * B;
      const runStart = Date.now();
      const lines: string[] = [];
      /** The step of the checkpoint on disk (null: none yet), and the step a divergence would be reported at. */
      let saved: number | null = this.#resume ? state.step : null;
      let at = state.step;
      const checkpoint = async (s: CheckpointState) => {
        await this.#saveCheckpoint(models!, s, norm);
        saved = s.step;
        await this.#appendMetrics(lines);
      };
      const m = models;
      const stepBatch = (rows: Int32Array, lr: number): StepProgress => {
        if (resident) {
          const idx = Int32Array.from(rows, (r) => resident!.position[r]);
          return methodStepResident(m, resident.image, resident.text, idx, lr, t);
        }
        return methodStep(m, readBatch(data, 'image', rows, norm, bufImage), readBatch(data, 'text', rows, norm, bufText), lr, t);
      };
      try {
        const end = await runEpochs(epochPlan(t, split.train, steps), stepBatch, state, {
          beforeStep: async (pos) => {
            if (opts.signal?.aborted) {
              await checkpoint({ format_version: 1, ...pos, elapsed_ms: Date.now() - started });
              throw new SaeError('ERR_ABORTED', `training stopped at step ${pos.step}; resume with the same run directory`);
            }
            at = pos.step + 1;
          },
          afterStep: async (s, { epoch, lr, next }) => {
            const elapsed = (Date.now() - runStart) / 1000;
            const rate = (next.step * B - samplesAtStart) / Math.max(1e-3, elapsed);
            last = { step: next.step, totalSteps, epoch, lr, ...s, samplesPerSec: rate, etaSec: ((totalSteps - next.step) * B) / Math.max(1e-9, rate) };
            this.emit('progress', last);
            if (next.step % this.#logEvery === 0 || next.step === totalSteps) lines.push(metricLine({ type: 'train', time: new Date().toISOString(), ...last }));
            if (t.checkpointEvery > 0 && next.step % t.checkpointEvery === 0 && next.step < totalSteps) await checkpoint({ format_version: 1, ...next, elapsed_ms: Date.now() - started });
          },
          afterEpoch: async (epoch, step) => {
            const v = await this.#validate(m, val ?? data, val ? null : split.val, norm, epoch, step);
            if (v) {
              // A validation FVU that is not finite comes from diverged parameters, or from validation rows without variance.
              if (!Number.isFinite(v.fvuImage) || !Number.isFinite(v.fvuText)) checkModelsFinite(m);
              validation.push(v);
              lines.push(metricLine({ type: 'val', ...v }));
              this.emit('validation', v);
            }
            await this.#appendMetrics(lines);
          },
        });
        state.step = end.step;
        await checkpoint({ format_version: 1, step: state.step, epoch: t.epochs, batch: 0, elapsed_ms: Date.now() - started });
      } catch (e) {
        if (isSaeError(e, 'ERR_DIVERGED')) throw await this.#diverged(e, at, totalSteps, saved, lines);
        throw e;
      }
      const out = await this.#saveFinal(models, data, split.train, norm);
      return { runDir: this.runDir, steps: state.step, models: out, last, validation };
    } finally {
      resident?.image.dispose();
      resident?.text.dispose();
      data.close();
      val?.close();
      disposeModels(models);
    }
  }

  /**
   * The error a diverged run ends with (the step, what to change, what was kept); the metrics logged before it
   * and a 'diverged' record (no numbers) are appended to metrics.jsonl.
   */
  async #diverged(e: SaeError, step: number, totalSteps: number, saved: number | null, lines: string[]): Promise<SaeError> {
    const p = runPaths(this.runDir);
    lines.push(metricLine({ type: 'diverged', time: new Date().toISOString(), step, reason: e.message }));
    await this.#appendMetrics(lines).catch(() => undefined);
    const kept = saved !== null ? `the last good checkpoint (step ${saved}) in ${p.checkpoint} is kept as it was` : 'no checkpoint had been written';
    return new SaeError(
      'ERR_DIVERGED',
      `training diverged at step ${step} of ${totalSteps} (${e.message}); ${kept}. Lower the learning rate (train.lr is ${this.config.train.lr}; try 10x lower), ` +
        `check the inputs for extreme values (very large or tiny embeddings: normalization 'l2' rescales them), then start again with --force ({ force: true })` +
        (saved !== null ? ` (or set a lower lr in ${p.config} and resume from the checkpoint)` : ''),
      { cause: e },
    );
  }

  /**
   * On CUDA: the normalized training split uploaded once to the device (position i = split row i), when the
   * configuration allows it ('auto': at most half the free device memory).
   */
  async #residentSplit(models: MethodModels, data: PairedEmbeddings, train: Int32Array, norm: Normalizer): Promise<ResidentSplit | null> {
    const mode = this.config.train.resident;
    const saes = models.kind === 'shared' ? [models.sae] : [models.image, models.text];
    if (mode === 'off' || !saes.every((m) => m.options.device === 'cuda')) return null;
    const bytes = train.length * (data.image.dim + data.text.dim) * 4;
    const free = native().cudaInfo().freeMemory ?? 0;
    if (mode === 'auto' && bytes > 0.5 * free) return null;
    const image = new DeviceRows(train.length, data.image.dim);
    let text: DeviceRows | null = null;
    try {
      text = new DeviceRows(train.length, data.text.dim);
      for (let q = 0; q < train.length; q += 4096) {
        const rows = train.subarray(q, Math.min(train.length, q + 4096));
        image.upload(q, readBatch(data, 'image', rows, norm));
        text.upload(q, readBatch(data, 'text', rows, norm));
        await yieldToEventLoop();
      }
    } catch (e) {
      image.dispose();
      text?.dispose();
      throw e;
    }
    const position = new Int32Array(data.rows).fill(-1);
    train.forEach((r, i) => (position[r] = i));
    this.emit('resident', { rows: train.length, bytes });
    return { image, text, position };
  }

  /** FVU of each modality over the validation rows (encode + decode; the training state is untouched). */
  async #validate(models: MethodModels, data: PairedEmbeddings, rows: Int32Array | null, norm: Normalizer, epoch: number, step: number): Promise<ValidationRecord | null> {
    const idx = rows ?? Int32Array.from({ length: data.rows }, (_, i) => i);
    if (idx.length < 2) return null;
    const fvu = async (side: Modality, sae: TopKSAE) => {
      const acc = new ReconstructionAccumulator(data.file(side).dim);
      for (let q = 0; q < idx.length; q += 4096) {
        const x = readBatch(data, side, idx.subarray(q, Math.min(idx.length, q + 4096)), norm);
        acc.add(x, sae.decode(await sae.encodeAsync(x)));
      }
      return acc.result().fvu;
    };
    const imageSae = models.kind === 'shared' ? models.sae : models.image;
    const textSae = models.kind === 'shared' ? models.sae : models.text;
    return { epoch, step, fvuImage: await fvu('image', imageSae), fvuText: await fvu('text', textSae), rows: idx.length };
  }

  async #appendMetrics(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const file = runPaths(this.runDir).metrics;
    await fs.appendFile(file, lines.join('\n') + '\n').catch((e) => {
      throw fsError(e, 'cannot append to', file);
    });
    lines.length = 0;
  }

  /** On resume: metrics written after the checkpoint's step are dropped (they will be written again). */
  async #trimMetrics(step: number): Promise<void> {
    const file = runPaths(this.runDir).metrics;
    const text = await readTextFile(file, 'metrics file').catch(() => '');
    const keep = text.split('\n').filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
    await writeFileAtomic(file, keep.length ? keep.join('\n') + '\n' : '');
  }

  /**
   * Writes the checkpoint directory and emits 'checkpoint'. checkpointFiles refuses a model whose parameters or
   * moments are not finite (ERR_NONFINITE, nothing written); for a run that is a divergence.
   */
  async #saveCheckpoint(models: MethodModels, state: CheckpointState, norm: Normalizer): Promise<void> {
    const files: Record<string, Uint8Array | string> = {};
    for (const [prefix, sae] of namedModels(models)) {
      let own: Record<string, Uint8Array | string>;
      try {
        own = checkpointFiles(sae, { includeTrainingState: true, normalization: norm.record(prefix) });
      } catch (e) {
        if (isSaeError(e, 'ERR_NONFINITE')) throw new SaeError('ERR_DIVERGED', `the ${prefix} SAE: ${e.message}`, { cause: e });
        throw e;
      }
      for (const [name, f] of Object.entries(own)) files[`${prefix}/${name}`] = f;
    }
    files['state.json'] = sealJson({ ...state });
    const dir = runPaths(this.runDir).checkpoint;
    await writeDirectoryAtomic(dir, files);
    this.emit('checkpoint', { step: state.step, dir });
  }

  /** The checkpoint's state and models, checked against this run (`steps` per epoch) before training goes on. */
  async #loadCheckpoint(steps: number): Promise<{ state: CheckpointState; models: MethodModels }> {
    const p = runPaths(this.runDir);
    let text: string;
    try {
      text = await readTextFile(p.checkpointState, 'checkpoint state');
    } catch (e) {
      throw new SaeError('ERR_IO', `${p.checkpointState} is missing or unreadable (${(e as Error).message}): nothing to resume (start a new run, or check the path)`);
    }
    const state = unsealJson(text, p.checkpointState) as unknown as CheckpointState; // ERR_FORMAT when corrupt or edited
    const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (typeof state !== 'object' || state === null || state.format_version !== 1 || !count(state.step) || !count(state.epoch) || !count(state.batch) || !(Number.isFinite(state.elapsed_ms) && state.elapsed_ms >= 0))
      throw new SaeError('ERR_FORMAT', `${p.checkpointState} is not a checkpoint state of this version (format_version 1, integer step, epoch, batch >= 0)`);
    if (state.epoch > this.config.train.epochs || (state.epoch === this.config.train.epochs && state.batch !== 0) || state.batch >= steps || state.step !== state.epoch * steps + state.batch)
      throw new SaeError(
        'ERR_STATE',
        `${p.checkpointState} (step ${state.step}, epoch ${state.epoch}, batch ${state.batch}) does not fit this run's ${steps} steps per epoch and ${this.config.train.epochs} epochs: ` +
          'were batchSize, epochs, the data or the validation split changed? Resume with the configuration the checkpoint was written with',
      );
    const names = this.config.method.startsWith('shared') ? (['shared'] as const) : (['image', 'text'] as const);
    const loaded: TopKSAE[] = [];
    try {
      for (const name of names) loaded.push(await TopKSAE.load(p.checkpointModel(name)));
      for (const [i, sae] of loaded.entries())
        if (sae.status().step !== state.step) throw new SaeError('ERR_STATE', `${p.checkpointModel(names[i])} is at step ${sae.status().step} but ${p.checkpointState} says ${state.step}: the checkpoint is inconsistent`);
    } catch (e) {
      for (const sae of loaded) sae.dispose();
      throw e;
    }
    return { state, models: loaded.length === 1 ? { kind: 'shared', sae: loaded[0] } : { kind: 'separate', image: loaded[0], text: loaded[1] } };
  }

  async #saveFinal(models: MethodModels, data: PairedEmbeddings, train: Int32Array, norm: Normalizer): Promise<Record<string, string>> {
    const p = runPaths(this.runDir);
    const out: Record<string, string> = {};
    for (const [name, sae] of namedModels(models)) {
      out[name] = p.final(name as 'shared' | 'image' | 'text');
      await saveSae(sae, out[name], { includeTrainingState: false, normalization: norm.record(name) });
    }
    if (this.config.method === 'posthoc' && models.kind === 'separate') {
      const pair = await alignModels(models.image, models.text, data, train, norm, this.config.align, (done) => this.emit('align', done));
      out.pair = p.final('pair');
      try {
        await pair.save(out.pair);
      } finally {
        pair.dispose();
      }
    }
    return out;
  }
}

export { trainingRows };

/** The post-hoc alignment's options (TrainConfig.align: samples, minFires, signed, path, memoryBudget). */
export interface AlignModelsOptions {
  samples: number;
  minFires: number;
  signed: boolean;
  path?: 'auto' | 'dense' | 'large';
  memoryBudget?: number;
}

/**
 * The post-hoc alignment: encode the training pairs (the first `samples` in file order, 0 = all) with both
 * SAEs, correlate every image latent with every text latent (exact), solve the assignment and permute the text
 * SAE. path 'auto' (default) streams into the dense accumulator when its mA x mB co-moments fit memoryBudget
 * and keeps the codes for the large-m path otherwise; 'dense' / 'large' force one (same optimum either way).
 */
export async function alignModels(
  image: TopKSAE,
  text: TopKSAE,
  data: PairedEmbeddings,
  rows: Int32Array,
  norm: Normalizer,
  opts: AlignModelsOptions,
  onProgress?: (done: number) => void,
): Promise<AlignedPair> {
  return (await alignModelsPlanned(image, text, data, rows, norm, opts, onProgress)).pair;
}

/** What alignModels planned: the path and the bytes it planned within the budget. */
export interface AlignModelsPlan {
  path: 'dense' | 'large';
  planned: number;
  budget: number;
}

/** alignModels, also reporting the path taken and its memory plan. */
export async function alignModelsPlanned(
  image: TopKSAE,
  text: TopKSAE,
  data: PairedEmbeddings,
  rows: Int32Array,
  norm: Normalizer,
  opts: AlignModelsOptions,
  onProgress?: (done: number) => void,
): Promise<{ pair: AlignedPair; plan: AlignModelsPlan }> {
  const use = opts.samples > 0 ? rows.subarray(0, Math.min(rows.length, opts.samples)) : rows;
  const path = opts.path ?? 'auto';
  if (path === 'dense' || (path === 'auto' && denseCorrelationFits(image.m, text.m, opts.memoryBudget))) {
    const r = await encodeAndCorrelate(image, text, fileBatches(data, use, norm), { minFires: opts.minFires, onProgress });
    const pair = AlignedPair.fromCorrelation(image, text, r, { signed: opts.signed, normalizer: norm });
    return { pair, plan: { path: 'dense', planned: denseCorrelationBytes(image.m, text.m), budget: alignmentBudget(opts.memoryBudget) } };
  }
  using store = await encodeToCodes(image, text, fileBatches(data, use, norm), { onProgress });
  const r = await store.alignAsync({ signed: opts.signed, minFires: opts.minFires, path: 'large', memoryBudget: opts.memoryBudget });
  const pair = AlignedPair.fromCodesAlignment(image, text, r, { normalizer: norm });
  return { pair, plan: { path: 'large', planned: r.plan.large, budget: r.plan.budget } };
}

interface ResidentSplit {
  image: DeviceRows;
  text: DeviceRows;
  /** File row -> position in the resident split (-1 outside it). */
  position: Int32Array;
}
