/**
 * Training orchestration: epochs over paired embedding files with a seeded shuffle, LR schedules, the
 * paper's five methods, atomic checkpoints with exact resume, metrics.jsonl and progress events, and the
 * post-hoc alignment step. One native call per SAE per batch; the event loop gets control back between
 * batches (and runs the abort signal).
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import { AlignedPair } from '../align/aligned-pair.js';
import { CorrelationAccumulator } from '../align/correlation.js';
import { ReconstructionAccumulator } from '../eval/reconstruction.js';
import { Normalizer, PairedEmbeddings, epochOrder, readBatch, scanRowsAsync, splitRows, type Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { writeDirectoryAtomic, writeFileAtomic, recoverDirectory } from '../io/atomic.js';
import { checkpointFiles } from '../io/checkpoint.js';
import { DeviceRows } from '../sae/device-rows.js';
import type { TopKSAEOptions } from '../sae/options.js';
import { native } from '../native/load.js';
import { TopKSAE, type StepResult } from '../sae/topk-sae.js';
import type { Matrix } from '../types.js';
import { VERSION } from '../version.js';
import { pairLossWeight, parseConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { lrFactor } from './schedule.js';
import { RUN_CHECKPOINT_DIR, readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../run/layout.js';

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  lr: number;
  loss: number;
  /** Mean of the image and text FVUs of the batch. */
  fvu: number;
  l0: number;
  deadFraction: number;
  pairLoss: number;
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

interface CheckpointState {
  format_version: 1;
  step: number;
  epoch: number;
  batch: number;
  elapsed_ms: number;
}

const CHECKPOINT_DIR = RUN_CHECKPOINT_DIR;

/** Per-step models of a method: one shared SAE, or one per modality. */
export type MethodModels = { kind: 'shared'; sae: TopKSAE } | { kind: 'separate'; image: TopKSAE; text: TopKSAE };
type Models = MethodModels;

export class Trainer extends EventEmitter {
  readonly config: TrainConfig;
  readonly runDir: string;
  readonly #resume: boolean;
  readonly #logEvery: number;

  /**
   * @param config the training configuration (validated; defaults filled in)
   * @param opts out: the run directory; resume: continue from its checkpoint (the saved config is used);
   *   logEvery: steps between metrics.jsonl lines (default 50)
   */
  constructor(config: TrainConfigInput | TrainConfig, opts: { out: string; resume?: boolean; logEvery?: number }) {
    super();
    if (typeof opts?.out !== 'string' || opts.out === '') throw new SaeError('ERR_ARG', 'Trainer needs an output directory (out)');
    this.config = parseConfig(config);
    this.runDir = path.resolve(opts.out);
    this.#resume = opts.resume ?? false;
    this.#logEvery = opts.logEvery ?? 50;
  }

  /** Reads a run's saved configuration (for resume); see readRunConfig. */
  static async loadConfig(runDir: string): Promise<TrainConfig> {
    return readRunConfig(runDir);
  }

  /**
   * Trains to the end (or until `signal` aborts: then a checkpoint is written and the promise rejects with
   * ERR_ABORTED). Emits 'progress' (TrainProgress) after every step and 'validation' after every epoch.
   */
  async run(opts: { signal?: AbortSignal } = {}): Promise<TrainResult> {
    const cfg = this.config;
    const t = cfg.train;
    await fs.mkdir(this.runDir, { recursive: true });
    await recoverDirectory(path.join(this.runDir, CHECKPOINT_DIR));
    const data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
    const val = cfg.data.valImage && cfg.data.valText ? PairedEmbeddings.open(cfg.data.valImage, cfg.data.valText) : null;
    let models: Models | null = null;
    let resident: ResidentSplit | null = null;
    try {
      if (cfg.method.startsWith('shared') && data.image.dim !== data.text.dim)
        throw new SaeError('ERR_SHAPE', `method '${cfg.method}' runs both modalities through one SAE, but image rows have ${data.image.dim} values and text rows ${data.text.dim}`);
      if (val && (val.image.dim !== data.image.dim || val.text.dim !== data.text.dim))
        throw new SaeError('ERR_SHAPE', `validation files have ${val.image.dim}/${val.text.dim} columns, training files ${data.image.dim}/${data.text.dim}`);
      const split = val ? { train: trainingRows(cfg, data.rows), val: new Int32Array(0) } : splitRows(data.rows, cfg.data.valFraction, t.seed);
      const steps = t.dropLast ? Math.floor(split.train.length / t.batchSize) : Math.ceil(split.train.length / t.batchSize);
      if (steps < 1) throw new SaeError('ERR_SHAPE', `${split.train.length} training rows make no batch of ${t.batchSize}: lower batchSize or add data`);
      const totalSteps = steps * t.epochs;

      let state: CheckpointState = { format_version: 1, step: 0, epoch: 0, batch: 0, elapsed_ms: 0 };
      let norm: Normalizer;
      if (this.#resume) {
        const loaded = await this.#loadCheckpoint();
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
        await writeFileAtomic(runPaths(this.runDir).config, JSON.stringify({ ...cfg, library_version: VERSION }, null, 2) + '\n');
        await writeFileAtomic(runPaths(this.runDir).normalization, JSON.stringify(norm.toJSON()) + '\n');
        await fs.writeFile(runPaths(this.runDir).metrics, '');
        models = createMethodModels(this.config, data.image.dim, data.text.dim);
      }

      const B = t.batchSize;
      const bufImage = new Float32Array(B * data.image.dim), bufText = new Float32Array(B * data.text.dim);
      resident = await this.#residentSplit(models, data, split.train, norm);
      const validation: ValidationRecord[] = [];
      let last: TrainProgress | null = null;
      const started = Date.now() - state.elapsed_ms;
      const samplesAtStart = state.step * B;
      const runStart = Date.now();
      const lines: string[] = [];
      for (let epoch = state.epoch; epoch < t.epochs; epoch++) {
        const order = epochOrder(split.train, t.seed, epoch);
        for (let b = epoch === state.epoch ? state.batch : 0; b < steps; b++) {
          if (opts.signal?.aborted) {
            await this.#saveCheckpoint(models, { format_version: 1, step: state.step, epoch, batch: b, elapsed_ms: Date.now() - started });
            await this.#appendMetrics(lines);
            throw new SaeError('ERR_ABORTED', `training stopped at step ${state.step}; resume with the same run directory`);
          }
          const rows = order.subarray(b * B, Math.min(order.length, (b + 1) * B));
          const lr = t.lr * lrFactor(t.schedule, state.step, totalSteps, t.warmupRatio);
          let s: ReturnType<typeof methodStep>;
          if (resident) {
            const idx = Int32Array.from(rows, (r) => resident!.position[r]);
            s = methodStepResident(models, resident.image, resident.text, idx, lr, this.config.train);
          } else {
            const x = readBatch(data, 'image', rows, norm, bufImage);
            const y = readBatch(data, 'text', rows, norm, bufText);
            s = methodStep(models, x, y, lr, this.config.train);
          }
          state.step++;
          const elapsed = (Date.now() - runStart) / 1000;
          const rate = (state.step * B - samplesAtStart) / Math.max(1e-3, elapsed);
          last = { step: state.step, totalSteps, epoch, lr, ...s, samplesPerSec: rate, etaSec: ((totalSteps - state.step) * B) / Math.max(1e-9, rate) };
          this.emit('progress', last);
          if (state.step % this.#logEvery === 0 || state.step === totalSteps) lines.push(JSON.stringify({ type: 'train', time: new Date().toISOString(), ...last }));
          if (t.checkpointEvery > 0 && state.step % t.checkpointEvery === 0 && state.step < totalSteps) {
            await this.#saveCheckpoint(models, { format_version: 1, step: state.step, epoch: b + 1 === steps ? epoch + 1 : epoch, batch: b + 1 === steps ? 0 : b + 1, elapsed_ms: Date.now() - started });
            await this.#appendMetrics(lines);
          }
          await yieldToEventLoop();
        }
        const v = await this.#validate(models, val ?? data, val ? null : split.val, norm, epoch, state.step);
        if (v) {
          validation.push(v);
          lines.push(JSON.stringify({ type: 'val', ...v }));
          this.emit('validation', v);
        }
        await this.#appendMetrics(lines);
      }
      await this.#saveCheckpoint(models, { format_version: 1, step: state.step, epoch: t.epochs, batch: 0, elapsed_ms: Date.now() - started });
      const out = await this.#saveFinal(models, data, split.train, norm);
      return { runDir: this.runDir, steps: state.step, models: out, last, validation };
    } finally {
      resident?.image.dispose();
      resident?.text.dispose();
      data.close();
      val?.close();
      if (models?.kind === 'shared') models.sae.dispose();
      else if (models) {
        models.image.dispose();
        models.text.dispose();
      }
    }
  }

  /**
   * On CUDA: the normalized training split uploaded once to the device (position i = split row i), when the
   * configuration allows it ('auto': at most half the free device memory).
   */
  async #residentSplit(models: Models, data: PairedEmbeddings, train: Int32Array, norm: Normalizer): Promise<ResidentSplit | null> {
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
  async #validate(models: Models, data: PairedEmbeddings, rows: Int32Array | null, norm: Normalizer, epoch: number, step: number): Promise<ValidationRecord | null> {
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
    await fs.appendFile(runPaths(this.runDir).metrics, lines.join('\n') + '\n');
    lines.length = 0;
  }

  /** On resume: metrics written after the checkpoint's step are dropped (they will be written again). */
  async #trimMetrics(step: number): Promise<void> {
    const file = runPaths(this.runDir).metrics;
    const text = await fs.readFile(file, 'utf8').catch(() => '');
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

  async #saveCheckpoint(models: Models, state: CheckpointState): Promise<void> {
    const files: Record<string, Uint8Array | string> = {};
    const add = (prefix: string, sae: TopKSAE) => {
      for (const [name, f] of Object.entries(checkpointFiles(sae, { includeTrainingState: true }))) files[`${prefix}/${name}`] = f;
    };
    if (models.kind === 'shared') add('shared', models.sae);
    else {
      add('image', models.image);
      add('text', models.text);
    }
    files['state.json'] = JSON.stringify(state) + '\n';
    await writeDirectoryAtomic(path.join(this.runDir, CHECKPOINT_DIR), files);
  }

  async #loadCheckpoint(): Promise<{ state: CheckpointState; models: Models }> {
    const dir = path.join(this.runDir, CHECKPOINT_DIR);
    let state: CheckpointState;
    try {
      state = JSON.parse(await fs.readFile(path.join(dir, 'state.json'), 'utf8'));
    } catch {
      throw new SaeError('ERR_IO', `${dir}/state.json is missing or unreadable: nothing to resume (start a new run, or check the path)`);
    }
    if (state.format_version !== 1 || !Number.isInteger(state.step)) throw new SaeError('ERR_FORMAT', `${dir}/state.json is not a checkpoint state of this version`);
    if (this.config.method.startsWith('shared')) return { state, models: { kind: 'shared', sae: await TopKSAE.load(path.join(dir, 'shared')) } };
    const image = await TopKSAE.load(path.join(dir, 'image'));
    try {
      return { state, models: { kind: 'separate', image, text: await TopKSAE.load(path.join(dir, 'text')) } };
    } catch (e) {
      image.dispose();
      throw e;
    }
  }

  async #saveFinal(models: Models, data: PairedEmbeddings, train: Int32Array, norm: Normalizer): Promise<Record<string, string>> {
    const final = runPaths(this.runDir).finalDir;
    const out: Record<string, string> = {};
    if (models.kind === 'shared') {
      out.shared = path.join(final, 'shared');
      await models.sae.save(out.shared, { includeTrainingState: false });
      return out;
    }
    out.image = path.join(final, 'image');
    out.text = path.join(final, 'text');
    await models.image.save(out.image, { includeTrainingState: false });
    await models.text.save(out.text, { includeTrainingState: false });
    if (this.config.method === 'posthoc') {
      const pair = await alignModels(models.image, models.text, data, train, norm, this.config.align, (done) => this.emit('align', done));
      out.pair = path.join(final, 'pair');
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

/**
 * The post-hoc alignment: encode the training pairs (the first `samples` in file order, 0 = all) with both
 * SAEs, correlate every image latent with every text latent (exact, streaming), solve the assignment and
 * permute the text SAE.
 */
export async function alignModels(
  image: TopKSAE,
  text: TopKSAE,
  data: PairedEmbeddings,
  rows: Int32Array,
  norm: Normalizer,
  opts: { samples: number; minFires: number; signed: boolean },
  onProgress?: (done: number) => void,
): Promise<AlignedPair> {
  const use = opts.samples > 0 ? rows.subarray(0, Math.min(rows.length, opts.samples)) : rows;
  using acc = new CorrelationAccumulator(image.m, text.m);
  for (let q = 0; q < use.length; q += 4096) {
    const idx = use.subarray(q, Math.min(use.length, q + 4096));
    const [ci, ct] = await Promise.all([image.encodeAsync(readBatch(data, 'image', idx, norm)), text.encodeAsync(readBatch(data, 'text', idx, norm))]);
    await acc.addAsync(ci, ct);
    onProgress?.(q + idx.length);
  }
  const r = acc.result({ minFires: opts.minFires });
  return AlignedPair.fromCorrelation(image, text, r, { signed: opts.signed, normalizer: norm });
}

function saeOptions(cfg: TrainConfig, d: number, m: number, seed: number, extra: Partial<TopKSAEOptions> = {}): TopKSAEOptions {
  const { sae, train: t } = cfg;
  return {
    d,
    m,
    k: sae.k,
    seed,
    activation: sae.activation,
    loss: sae.loss,
    auxCoef: sae.auxCoef,
    normalizeDecoder: sae.normalizeDecoder,
    projectDecoderGrad: sae.projectDecoderGrad,
    maxGradNorm: t.maxGradNorm,
    weightDecay: t.weightDecay,
    decayGroups: t.decayGroups,
    beta1: t.beta1,
    beta2: t.beta2,
    eps: t.eps,
    pairedReduction: t.fvuReduction,
    // 'auto' stays unset so that CMSAE_DEVICE can choose.
    ...(t.device !== 'auto' ? { device: t.device } : {}),
    precision: t.precision,
    ...extra,
  };
}

/** The SAEs of a method: one shared SAE (with its pair loss), or one per modality (seeds seed, seed + 1). */
export function createMethodModels(cfg: TrainConfig, dImage: number, dText: number): MethodModels {
  const seed = cfg.train.seed;
  if (cfg.method.startsWith('shared')) {
    if (dImage !== dText) throw new SaeError('ERR_SHAPE', `method '${cfg.method}' runs both modalities through one SAE, but image rows have ${dImage} values and text rows ${dText}`);
    const pairLoss = cfg.method === 'shared+iso' ? cfg.train.isoVariant : cfg.method === 'shared+group' ? 'group' : 'none';
    return { kind: 'shared', sae: TopKSAE.create(saeOptions(cfg, dImage, cfg.sae.m, seed, { pairLoss, pairLossWeight: pairLossWeight(cfg) })) };
  }
  const m = cfg.sae.latentsPerModality === 'half' ? Math.max(cfg.sae.k, Math.floor(cfg.sae.m / 2)) : cfg.sae.m;
  const image = TopKSAE.create(saeOptions(cfg, dImage, m, seed));
  try {
    return { kind: 'separate', image, text: TopKSAE.create(saeOptions(cfg, dText, m, seed + 1)) };
  } catch (e) {
    image.dispose();
    throw e;
  }
}

interface ResidentSplit {
  image: DeviceRows;
  text: DeviceRows;
  /** File row -> position in the resident split (-1 outside it). */
  position: Int32Array;
}

/** methodStep over a batch of resident rows (positions idx in the resident image and text rows). */
export function methodStepResident(
  models: MethodModels,
  image: DeviceRows,
  text: DeviceRows,
  idx: Int32Array,
  lr: number,
  t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number },
): StepProgress {
  if (models.kind === 'shared') {
    return stepProgress(models.sae.stepRows(image, idx, { pair: text, lr }));
  }
  return jointUpdate(models, models.image.forwardBackwardRows(image, idx), models.text.forwardBackwardRows(text, idx), lr, t);
}

type StepProgress = Pick<TrainProgress, 'loss' | 'fvu' | 'l0' | 'deadFraction' | 'pairLoss'>;

function stepProgress(s: StepResult): StepProgress {
  return { loss: s.loss, fvu: s.fvu, l0: s.l0, deadFraction: s.deadFraction, pairLoss: s.pairLoss };
}

/** Clips the two modality SAEs' gradients jointly (the reference's two-sided model) and updates both. */
function jointUpdate(
  models: { image: TopKSAE; text: TopKSAE },
  a: StepResult,
  b: StepResult,
  lr: number,
  t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number },
): StepProgress {
  const w = t.fvuReduction === 'mean' ? 0.5 : 1;
  const norm = w * Math.hypot(a.gradNorm, b.gradNorm);
  const clip = t.maxGradNorm > 0 ? Math.min(1, t.maxGradNorm / (norm + 1e-6)) : 1;
  models.image.applyUpdate(lr, w * clip);
  models.text.applyUpdate(lr, w * clip);
  return { loss: w * (a.loss + b.loss), fvu: (a.fvu + b.fvu) / 2, l0: (a.l0 + b.l0) / 2, deadFraction: (a.deadFraction + b.deadFraction) / 2, pairLoss: 0 };
}

/** One optimizer step on a paired batch; the separate SAEs are clipped jointly like the reference's two-sided model. */
export function methodStep(
  models: MethodModels,
  x: Matrix,
  y: Matrix,
  lr: number,
  t: { fvuReduction: 'sum' | 'mean'; maxGradNorm: number },
): StepProgress {
  if (models.kind === 'shared') {
    return stepProgress(models.sae.step(x, { pair: y, lr }));
  }
  return jointUpdate(models, models.image.forwardBackward(x), models.text.forwardBackward(y), lr, t);
}
