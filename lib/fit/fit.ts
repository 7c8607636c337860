/**
 * `cmsae fit`: trains every requested method for every seed, aligns, evaluates every method on the same
 * footing and writes results.json, results.md, figures and report.html (paper Table 1, Figures 2, 7, 8).
 *
 * Layout of `out`:
 *   fit.json                         the inputs and options of the latest fit
 *   train/<method>/seed-<s>/         Trainer run directories ('separate' is the 'posthoc' run without its permutation)
 *   eval/<method>/seed-<s>/<name>.json  one evaluation, with the key of its inputs
 *   results.json, results.md, report.html, figures/
 * Every stage reuses what an earlier fit produced: a finished training run with the same configuration is
 * kept, an interrupted one resumes from its checkpoint, and an evaluation whose key (options, input files'
 * size and mtime, model weights' size and mtime) is unchanged is read back instead of recomputed.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';

import { PairedEmbeddings } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { METHODS, parseConfig, type Method, type TrainConfig } from '../train/config.js';
import { Trainer, type TrainProgress } from '../train/trainer.js';
import { readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../run/layout.js';
import { correlateSaes, heterogeneity, type HeterogeneityResult } from '../eval/heterogeneity.js';
import { loadEvalInputs, specPath, type FitInputs, type LoadedEval } from '../eval/inputs.js';
import { loadEvalModel, type EvalModel } from '../eval/model.js';
import { evaluateMonosemanticity, type MsResult } from '../eval/monosemanticity.js';
import { evaluateReconstruction, reconstructionStats, type ReconstructionResult } from '../eval/reconstruction.js';
import { evaluateRetrieval, type RetrievalResult } from '../eval/retrieval.js';
import { evaluateSteering, steeringCsv, steeringOptions, type SteeringOptions, type SteeringResult } from '../eval/steering.js';
import { checkMaxFireRate, evaluateZeroShot, type ZeroShotResult } from '../eval/zeroshot.js';
import { EmbeddingFile } from '../io/embeddings.js';
import { AlignedPair } from '../align/aligned-pair.js';
import { TopKSAE } from '../sae/topk-sae.js';
import { writeFitReport } from './report.js';
import { summarize, type FitSummary } from './summary.js';

export const EVALUATIONS = ['reconstruction', 'retrieval', 'zeroshot', 'steering', 'monosemanticity', 'heterogeneity'] as const;
export type Evaluation = (typeof EVALUATIONS)[number];

export interface FitOptions {
  out: string;
  inputs: FitInputs;
  methods?: Method[];
  seeds?: number[];
  /** Training configuration shared by every method (sae, train, align, data.normalization / valFraction). */
  config?: Record<string, unknown>;
  evaluations?: Evaluation[];
  steering?: SteeringOptions;
  zeroShot?: { maxFireRate?: number; fireRates?: 'train' | 'eval'; fireRateRows?: number };
  monosemanticity?: { minFires?: number };
  /** Retrain runs whose saved configuration differs instead of failing. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: FitEvent) => void;
}

export type FitEvent =
  | { type: 'train'; method: string; seed: number; status: 'start' | 'reused' | 'resumed' | 'done'; seconds?: number }
  | { type: 'progress'; method: string; seed: number; progress: TrainProgress }
  | { type: 'eval'; method: string; seed: number; evaluation: Evaluation; status: 'start' | 'reused' | 'done' | 'skipped'; seconds?: number; reason?: string }
  | { type: 'report'; files: string[] };

export interface MethodSeedResults {
  reconstruction?: ReconstructionResult & { zeroShot?: { mse: number; fvu: number } };
  retrieval?: RetrievalResult;
  zeroshot?: ZeroShotResult;
  steering?: SteeringResult;
  monosemanticity?: MsResult;
  heterogeneity?: HeterogeneityResult;
}

export interface FitResult {
  out: string;
  methods: Method[];
  seeds: number[];
  results: Record<string, Record<number, MethodSeedResults>>;
  summary: FitSummary;
  timings: { trainSeconds: Record<string, number>; evalSeconds: Record<string, number>; totalSeconds: number };
  files: string[];
}

/** Training runs needed by the requested methods: 'separate' and 'posthoc' share one run. */
function trainMethodOf(m: Method): Method {
  return m === 'separate' ? 'posthoc' : m;
}

function finalComplete(dir: string, method: Method): boolean {
  const f = runPaths(dir).finalDir;
  if (method.startsWith('shared')) return existsSync(path.join(f, 'shared', 'cfg.json'));
  return ['image/cfg.json', 'text/cfg.json', 'pair/alignment.json'].every((p) => existsSync(path.join(f, p)));
}

/** Typed arrays as arrays, NaN/Inf as null. */
export function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) => {
      if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
      if (typeof x === 'number' && !Number.isFinite(x)) return null;
      return x;
    },
    1,
  );
}

function fileKey(p: string): string {
  try {
    const s = statSync(p);
    return `${path.resolve(p)}:${s.size}:${s.mtimeMs}`;
  } catch {
    return `${path.resolve(p)}:missing`;
  }
}

async function modelKey(dir: string): Promise<string> {
  const parts: string[] = [];
  const walk = async (d: string) => {
    for (const e of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.safetensors') || e.name.endsWith('.json')) parts.push(fileKey(p));
    }
  };
  await walk(runPaths(dir).finalDir);
  parts.push(fileKey(runPaths(dir).normalization));
  return parts.join('|');
}

function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 32);
}

async function readCached<T>(file: string, key: string): Promise<T | null> {
  try {
    const j = JSON.parse(await fs.readFile(file, 'utf8')) as { key: string; result: T };
    return j.key === key ? j.result : null;
  } catch {
    return null;
  }
}

/** Restores typed arrays the evaluation code expects after a JSON round trip (NaN came back as null). */
function reviveMs(r: MsResult): MsResult {
  const side = (s: MsResult['image']) => ({ ...s, scores: Float64Array.from(s.scores as unknown as (number | null)[], (x) => x ?? NaN), fires: Float64Array.from(s.fires), sorted: Float64Array.from(s.sorted) });
  return { ...r, image: side(r.image), text: side(r.text) };
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const t0 = performance.now();
  const out = path.resolve(o.out);
  const methods = [...new Set(o.methods ?? [...METHODS])];
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new SaeError('ERR_ARG', `unknown method '${m}': choose from ${METHODS.join(', ')}`);
  const seeds = [...new Set(o.seeds ?? [0])];
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new SaeError('ERR_ARG', 'seeds must be integers >= 0');
  const evaluations = new Set(o.evaluations ?? EVALUATIONS);
  for (const e of evaluations) if (!(EVALUATIONS as readonly string[]).includes(e)) throw new SaeError('ERR_ARG', `unknown evaluation '${e}': choose from ${EVALUATIONS.join(', ')}`);

  // Options and configurations first (bad options fail before anything runs), then the inputs.
  steeringOptions(o.steering);
  checkMaxFireRate(o.zeroShot?.maxFireRate);
  if (o.zeroShot?.fireRates !== undefined && !['train', 'eval'].includes(o.zeroShot.fireRates)) throw new SaeError('ERR_ARG', `zeroShot.fireRates must be 'train' or 'eval', got '${o.zeroShot.fireRates}'`);
  if (o.zeroShot?.fireRateRows !== undefined && !(Number.isInteger(o.zeroShot.fireRateRows) && o.zeroShot.fireRateRows >= 1)) throw new SaeError('ERR_ARG', 'zeroShot.fireRateRows must be an integer >= 1');
  if (o.monosemanticity?.minFires !== undefined && !(Number.isInteger(o.monosemanticity.minFires) && o.monosemanticity.minFires >= 1)) throw new SaeError('ERR_ARG', 'monosemanticity.minFires must be an integer >= 1');
  const configs = new Map<string, TrainConfig>();
  for (const seed of seeds)
    for (const tm of new Set(methods.map(trainMethodOf))) {
      const base = structuredClone(o.config ?? {}) as Record<string, Record<string, unknown>>;
      configs.set(`${tm}:${seed}`, parseConfig({ ...base, method: tm, data: { ...(base.data ?? {}), image: toSpec(o.inputs.train.image), text: toSpec(o.inputs.train.text) }, train: { ...(base.train ?? {}), seed } }));
    }
  const dims = (() => {
    using data = PairedEmbeddings.open(toSpec(o.inputs.train.image), toSpec(o.inputs.train.text));
    return { image: data.image.dim, text: data.text.dim };
  })();
  const ev: LoadedEval = await loadEvalInputs(o.inputs, dims);
  await fs.mkdir(out, { recursive: true });
  await writeFileAtomic(path.join(out, 'fit.json'), toJson({ inputs: o.inputs, methods, seeds, config: o.config ?? {}, evaluations: [...evaluations], steering: o.steering ?? {}, zeroShot: o.zeroShot ?? {}, monosemanticity: o.monosemanticity ?? {} }) + '\n');

  // 1. Training.
  const trainSeconds: Record<string, number> = {};
  for (const seed of seeds)
    for (const tm of new Set(methods.map(trainMethodOf))) {
      const cfg = configs.get(`${tm}:${seed}`)!;
      const dir = path.join(out, 'train', tm, `seed-${seed}`);
      const ts = performance.now();
      const status = await trainOrReuse(dir, cfg, o, (p) => o.onEvent?.({ type: 'progress', method: tm, seed, progress: p }), (s) => o.onEvent?.({ type: 'train', method: tm, seed, status: s }));
      trainSeconds[`${tm}/seed-${seed}`] = status === 'reused' ? 0 : (performance.now() - ts) / 1000;
      o.onEvent?.({ type: 'train', method: tm, seed, status: status === 'reused' ? 'reused' : 'done', seconds: trainSeconds[`${tm}/seed-${seed}`] });
    }

  // 2. Evaluation.
  const evalSeconds: Record<string, number> = {};
  const results: FitResult['results'] = {};
  const keys = (specs: (FitInputs['train']['image'] | string | undefined)[]) => specs.map((sp) => (sp === undefined ? '-' : fileKey(specPath(sp))));
  const ms = o.inputs.monosemanticity;
  const inputKeys: Record<string, unknown[]> = {
    eval: o.inputs.eval ? keys([o.inputs.eval.image, o.inputs.eval.text, ...(o.inputs.eval.labels ?? [])]) : [],
    zeroshot: o.inputs.zeroShot ? [...keys([o.inputs.zeroShot.prompts, o.inputs.zeroShot.images, o.inputs.zeroShot.labels]), o.inputs.zeroShot.templates ?? null] : [],
    ms: ms ? keys([ms.image ?? o.inputs.eval?.image, ms.text ?? o.inputs.eval?.text, ms.externalImage, ms.externalText]) : [],
    train: trainKey(o.inputs),
  };
  inputKeys.reconstruction = [...inputKeys.eval, ...inputKeys.zeroshot];
  for (const method of methods) {
    results[method] = {};
    for (const seed of seeds) {
      const runDir = path.join(out, 'train', trainMethodOf(method), `seed-${seed}`);
      const evalDir = path.join(out, 'eval', method, `seed-${seed}`);
      await fs.mkdir(evalDir, { recursive: true });
      const mk = await modelKey(runDir);
      const r: MethodSeedResults = {};
      results[method][seed] = r;
      let model: EvalModel | null = null;
      const getModel = async () => (model ??= await loadEvalModel(runDir, method === 'separate' ? { view: 'separate' } : {}));
      const run = async <T>(name: Evaluation, opts: unknown, inputs: string, compute: () => Promise<T>, after?: (v: T) => Promise<void>): Promise<T | undefined> => {
        if (!evaluations.has(name)) return undefined;
        const key = hash({ name, opts, inputs: inputKeys[inputs], train: inputKeys.train, model: mk });
        const file = path.join(evalDir, `${name}.json`);
        const cached = await readCached<T>(file, key);
        if (cached !== null) {
          o.onEvent?.({ type: 'eval', method, seed, evaluation: name, status: 'reused' });
          return cached;
        }
        o.onEvent?.({ type: 'eval', method, seed, evaluation: name, status: 'start' });
        const ts = performance.now();
        const v = await compute();
        evalSeconds[`${method}/seed-${seed}/${name}`] = (performance.now() - ts) / 1000;
        if (after) await after(v); // side files first: a cached JSON means they exist
        await writeFileAtomic(file, toJson({ key, result: v }) + '\n');
        o.onEvent?.({ type: 'eval', method, seed, evaluation: name, status: 'done', seconds: evalSeconds[`${method}/seed-${seed}/${name}`] });
        return v;
      };
      const skip = (evaluation: Evaluation, reason: string) => evaluations.has(evaluation) && o.onEvent?.({ type: 'eval', method, seed, evaluation, status: 'skipped', reason });
      try {
        if (ev.retrieval || ev.zeroShot) {
          r.reconstruction = await run('reconstruction', {}, 'reconstruction', async () => {
            const m = await getModel();
            const base = ev.retrieval ? await evaluateReconstruction(m, ev.retrieval.image, ev.retrieval.text) : ({} as ReconstructionResult);
            const zs = ev.zeroShot ? await reconstructionStats(m, 'image', ev.zeroShot.images) : undefined;
            return { ...base, ...(zs ? { zeroShot: { mse: zs.mse, fvu: zs.fvu } } : {}) };
          });
        } else skip('reconstruction', 'no evaluation set');
        if (ev.retrieval) r.retrieval = await run('retrieval', {}, 'eval', async () => evaluateRetrieval(await getModel(), ev.retrieval!.image, ev.retrieval!.text, ev.retrieval!.imageOfText));
        else skip('retrieval', 'no evaluation set (--eval-image/--eval-text)');
        if (ev.zeroShot) {
          const zo = { maxFireRate: o.zeroShot?.maxFireRate ?? 0.5, fireRates: o.zeroShot?.fireRates ?? 'train', fireRateRows: o.zeroShot?.fireRateRows ?? 50_000 };
          r.zeroshot = await run('zeroshot', zo, 'zeroshot', async () => {
            const m = await getModel();
            const z = ev.zeroShot!;
            const fireRateImages = zo.fireRates === 'train' ? readTrainImages(o.inputs, configs.get(`${trainMethodOf(method)}:${seed}`)!, zo.fireRateRows) : undefined;
            return evaluateZeroShot(m, z.prompts, z.templates, z.images, z.labels, { maxFireRate: zo.maxFireRate, fireRateImages });
          });
        } else skip('zeroshot', 'no zero-shot inputs (--zs-prompts/--zs-images/--zs-labels)');
        if (ev.retrieval?.imageConcepts && ev.retrieval.textConcepts) {
          const so = o.steering ?? {};
          r.steering = await run('steering', so, 'eval', async () => evaluateSteering(await getModel(), ev.retrieval!.image, ev.retrieval!.text, ev.retrieval!.labels.concepts, ev.retrieval!.imageConcepts!, ev.retrieval!.textConcepts!, so), async (v) => {
            await writeFileAtomic(path.join(evalDir, 'steering.csv'), steeringCsv(v));
          });
        } else skip('steering', 'the evaluation set has no concept labels');
        if (ev.monosemanticity) {
          const mo = { minFires: o.monosemanticity?.minFires ?? 2 };
          const v = await run('monosemanticity', mo, 'ms', async () => {
            const ms = ev.monosemanticity!;
            return evaluateMonosemanticity(await getModel(), { image: ms.image, text: ms.text }, { image: ms.externalImage, text: ms.externalText }, mo);
          }, async (v) => {
            const lines = ['latent,fires_image,fires_text,ms_image,ms_text'];
            for (let j = 0; j < v.image.scores.length; j++) lines.push(`${j},${v.image.fires[j]},${v.text.fires[j]},${Number.isNaN(v.image.scores[j]) ? '' : v.image.scores[j]},${Number.isNaN(v.text.scores[j]) ? '' : v.text.scores[j]}`);
            await writeFileAtomic(path.join(evalDir, 'monosemanticity.csv'), lines.join('\n') + '\n');
          });
          if (v) r.monosemanticity = reviveMs(v);
        } else skip('monosemanticity', 'no external embeddings (--external-image/--external-text)');
        // One figure per modality-specific run: reported under posthoc when both views are evaluated.
        if (method === 'posthoc' || (method === 'separate' && !methods.includes('posthoc'))) {
          r.heterogeneity = await run('heterogeneity', { edges: 'default' }, 'train', async () => {
            const cfg = configs.get(`${trainMethodOf(method)}:${seed}`)!;
            return heterogeneityOfRun(runDir, cfg);
          });
        }
      } finally {
        (model as EvalModel | null)?.dispose();
      }
    }
  }

  // 3. Report.
  const summary = summarize(results, methods, seeds);
  const timings = { trainSeconds, evalSeconds, totalSeconds: (performance.now() - t0) / 1000 };
  const files = await writeFitReport(out, { methods, seeds, results, summary, timings, date: new Date().toISOString() });
  o.onEvent?.({ type: 'report', files });
  return { out, methods, seeds, results, summary, timings, files };
}

/** Size and mtime of the training files: a run trained on other data is never reused. */
function trainKey(inputs: FitInputs): string[] {
  return [inputs.train.image, inputs.train.text].map((sp) => fileKey(specPath(sp)));
}

function toSpec(s: FitInputs['train']['image']): { path: string; tensor?: string; shape?: [number, number] } {
  return typeof s === 'string' ? { path: s } : s;
}

/** The first `rows` training images of the run's split (the zero-shot latent filter's firing rates). */
function readTrainImages(inputs: FitInputs, cfg: TrainConfig, rows: number) {
  const f = EmbeddingFile.open(toSpec(inputs.train.image));
  try {
    const split = trainingRows(cfg, f.rows);
    const use = split.subarray(0, Math.min(rows, split.length));
    const data = new Float32Array(use.length * f.dim);
    f.readRows(use, data);
    return { rows: use.length, cols: f.dim, data };
  } finally {
    f.close();
  }
}

/** Figure 2 for a modality-specific run: correlation over its training split, decoder distances, matched pairs. */
export async function heterogeneityOfRun(runDir: string, cfg: TrainConfig): Promise<HeterogeneityResult> {
  const pair = await AlignedPair.load(runPaths(runDir).final('pair'));
  const image = pair.image; // the image SAE as trained (only the text SAE is permuted in a pair)
  const text = await TopKSAE.load(runPaths(runDir).final('text'));
  const data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
  try {
    const norm = await readRunNormalizer(runDir);
    const train = trainingRows(cfg, data.rows);
    const rows = cfg.align.samples > 0 ? train.subarray(0, Math.min(train.length, cfg.align.samples)) : train;
    const corr = await correlateSaes(image, text, data, rows, norm, cfg.align.minFires);
    return heterogeneity(image, text, corr, { perm: pair.perm });
  } finally {
    data.close();
    text.dispose();
    pair.dispose();
  }
}

async function trainOrReuse(
  dir: string,
  cfg: TrainConfig,
  o: FitOptions,
  onProgress: (p: TrainProgress) => void,
  onStatus: (s: 'start' | 'resumed') => void,
): Promise<'reused' | 'resumed' | 'trained'> {
  const cfgFile = runPaths(dir).config;
  const dataFile = path.join(dir, 'training-data.json');
  const dataKey = JSON.stringify(trainKey(o.inputs));
  let resume = false;
  if (existsSync(cfgFile)) {
    let same = false;
    try {
      same = JSON.stringify(await readRunConfig(dir)) === JSON.stringify(cfg) && (await fs.readFile(dataFile, 'utf8')) === dataKey;
    } catch {
      same = false;
    }
    if (!same) {
      if (!o.force)
        throw new SaeError('ERR_STATE', `${dir} holds a training run with a different configuration or other training data (size or mtime changed): use another --out, or --force to retrain it`);
      await fs.rm(dir, { recursive: true, force: true });
    } else if (finalComplete(dir, cfg.method)) return 'reused';
    else if (existsSync(runPaths(dir).checkpointState)) resume = true;
    else await fs.rm(dir, { recursive: true, force: true });
  }
  if (!resume) {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(dataFile, dataKey);
  }
  onStatus(resume ? 'resumed' : 'start');
  const trainer = new Trainer(cfg, { out: dir, resume });
  trainer.on('progress', onProgress);
  await trainer.run({ signal: o.signal });
  return resume ? 'resumed' : 'trained';
}

