/**
 * `cmsae fit`: trains every requested method for every seed (and every setting of a K / activation sweep),
 * aligns, evaluates every method on the same footing and writes results.json, results.md, figures and
 * report.html (paper Table 1, or Tables 2 / 4 for a sweep; Figures 2, 7, 8).
 *
 * Layout of `out`:
 *   fit.json                                     the inputs and options of the latest fit
 *   train/[<setting>/]<method>/seed-<s>/         Trainer run directories ('separate' is the 'posthoc' run
 *                                                without its permutation; <setting> = k<K>-<activation>, only
 *                                                when sweeping)
 *   train/figure2-d1/posthoc/seed-<s>/           Figure 2's App. D.1 run (heterogeneity protocol 'd1')
 *   eval/[<setting>/]<method>/seed-<s>/<name>.json  one evaluation, with the key of its inputs (Figure 2's
 *                                                heterogeneity.json under the posthoc run it was computed from)
 *   results.json, results.md, report.html, figures/
 * Every stage reuses what an earlier fit produced: a finished training run with the same configuration is
 * kept, an interrupted one resumes from its checkpoint, and an evaluation whose key (options, input files'
 * size and mtime, model weights' size and mtime) is unchanged is read back instead of recomputed.
 */
import path from 'node:path';

import { PairedEmbeddings } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ensureDirectory } from '../io/files.js';
import { METHODS, latentsPerSae, type Method, type TrainConfig } from '../train/config.js';
import type { TrainProgress } from '../train/trainer.js';
import { trainingRows } from '../run/layout.js';
import { heterogeneityOfRun } from '../eval/heterogeneity.js';
import { loadEvalInputs, specPath, type FitInputs, type LoadedEval } from '../eval/inputs.js';
import { loadEvalModel, type EvalModel } from '../eval/model.js';
import { evaluateMonosemanticity, type MsResult } from '../eval/monosemanticity.js';
import { evaluateReconstruction, reconstructionStats, type ReconstructionResult } from '../eval/reconstruction.js';
import { evaluateRetrieval } from '../eval/retrieval.js';
import { evaluateSteering, steeringCsv, steeringOptions, type SteeringOptions } from '../eval/steering.js';
import { checkMaxFireRate, evaluateZeroShot } from '../eval/zeroshot.js';
import { EmbeddingFile } from '../io/embeddings.js';
import { fileKey, hash, modelKey, readCached, toJson } from './cache.js';
import { writeFitReport } from './report.js';
import {
  D1_SETTING,
  fitSettings,
  heterogeneityOptions,
  runConfig,
  settingLabel,
  stageDir,
  toSpec,
  type HeterogeneityOptions,
  type SweepOptions,
} from './settings.js';
import type { Figure2Results, FitSummary, MethodSeedResults, SettingResults } from './results.js';
import { summarize } from './summary.js';
import { trainOrReuse } from './train-stage.js';

export { toJson } from './cache.js';
export { heterogeneityOfRun } from '../eval/heterogeneity.js';

export const EVALUATIONS = ['reconstruction', 'retrieval', 'zeroshot', 'steering', 'monosemanticity', 'heterogeneity'] as const;
export type Evaluation = (typeof EVALUATIONS)[number];

export interface FitOptions {
  out: string;
  inputs: FitInputs;
  methods?: Method[];
  seeds?: number[];
  /** Training configuration shared by every method (sae, train, align, data.normalization / valFraction). */
  config?: Record<string, unknown>;
  /** Train and evaluate every (k, activation) (the paper's Tables 2 and 4); default: the configuration's own. */
  sweep?: SweepOptions;
  /** Figure 2's protocol: 'table1' (default; the first setting's posthoc run) or 'd1' (App. D.1's own run). */
  heterogeneity?: HeterogeneityOptions;
  evaluations?: Evaluation[];
  steering?: SteeringOptions;
  zeroShot?: { maxFireRate?: number; fireRates?: 'train' | 'eval'; fireRateRows?: number };
  monosemanticity?: { minFires?: number };
  /** Retrain runs whose saved configuration differs instead of failing. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: FitEvent) => void;
}

/** `setting`: the sweep setting's id ('' without a sweep), or 'figure2-d1' for Figure 2's App. D.1 run. */
export type FitEvent =
  | { type: 'train'; setting: string; method: string; seed: number; status: 'start' | 'reused' | 'resumed' | 'done'; seconds?: number }
  | { type: 'progress'; setting: string; method: string; seed: number; progress: TrainProgress }
  | { type: 'eval'; setting: string; method: string; seed: number; evaluation: Evaluation; status: 'start' | 'reused' | 'done' | 'skipped'; seconds?: number; reason?: string }
  | { type: 'report'; files: string[] };

export interface FitResult {
  out: string;
  methods: Method[];
  seeds: number[];
  settings: SettingResults[];
  /** The first setting's results and summary (the only setting without a sweep). */
  results: SettingResults['results'];
  summary: FitSummary;
  heterogeneity: Figure2Results | null;
  timings: { trainSeconds: Record<string, number>; evalSeconds: Record<string, number>; totalSeconds: number };
  files: string[];
}

/**
 * Versions of an evaluation's result layout, part of its cache key: a result written by code that predates a
 * change (steering 2: alive slots) is recomputed instead of read back without the new fields.
 */
const RESULT_VERSIONS: Partial<Record<Evaluation, number>> = { steering: 2 };

/** Training runs needed by the requested methods: 'separate' and 'posthoc' share one run. */
function trainMethodOf(m: Method): Method {
  return m === 'separate' ? 'posthoc' : m;
}

/** Restores typed arrays the evaluation code expects after a JSON round trip (NaN came back as null). */
function reviveMs(r: MsResult): MsResult {
  const side = (s: MsResult['image']) => ({ ...s, scores: Float64Array.from(s.scores as unknown as (number | null)[], (x) => x ?? NaN), fires: Float64Array.from(s.fires), sorted: Float64Array.from(s.sorted) });
  return { ...r, image: side(r.image), text: side(r.text) };
}

/** A planned training run. */
interface PlannedRun {
  setting: string;
  method: Method;
  seed: number;
  dir: string;
  cfg: TrainConfig;
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const t0 = performance.now();
  const out = path.resolve(o.out);
  const methods = [...new Set(o.methods ?? [...METHODS])];
  if (methods.length === 0) throw new SaeError('ERR_ARG', `methods is empty: name at least one of ${METHODS.join(', ')} (or leave it out for all)`);
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new SaeError('ERR_ARG', `unknown method '${m}': choose from ${METHODS.join(', ')}`);
  const seeds = [...new Set(o.seeds ?? [0])];
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new SaeError('ERR_ARG', 'seeds must be integers >= 0');
  const evaluations = new Set(o.evaluations ?? EVALUATIONS);
  if (evaluations.size === 0) throw new SaeError('ERR_ARG', `evaluations is empty: name at least one of ${EVALUATIONS.join(', ')} (or leave it out for all)`);
  for (const e of evaluations) if (!(EVALUATIONS as readonly string[]).includes(e)) throw new SaeError('ERR_ARG', `unknown evaluation '${e}': choose from ${EVALUATIONS.join(', ')}`);

  // Options and configurations first (bad options fail before anything runs), then the inputs.
  steeringOptions(o.steering);
  checkMaxFireRate(o.zeroShot?.maxFireRate);
  if (o.zeroShot?.fireRates !== undefined && !['train', 'eval'].includes(o.zeroShot.fireRates)) throw new SaeError('ERR_ARG', `zeroShot.fireRates must be 'train' or 'eval', got '${o.zeroShot.fireRates}'`);
  if (o.zeroShot?.fireRateRows !== undefined && !(Number.isInteger(o.zeroShot.fireRateRows) && o.zeroShot.fireRateRows >= 1)) throw new SaeError('ERR_ARG', 'zeroShot.fireRateRows must be an integer >= 1');
  if (o.monosemanticity?.minFires !== undefined && !(Number.isInteger(o.monosemanticity.minFires) && o.monosemanticity.minFires >= 1)) throw new SaeError('ERR_ARG', 'monosemanticity.minFires must be an integer >= 1');
  const config = o.config ?? {};
  const settings = fitSettings(config, o.sweep);
  const het = heterogeneityOptions(o.heterogeneity);
  /** A run's configuration; a refusal names the setting or the Figure 2 run it belongs to. */
  const configOf = (method: Method, seed: number, over: Parameters<typeof runConfig>[4], what: string | null) => {
    try {
      return runConfig(config, o.inputs, method, seed, over);
    } catch (e) {
      if (what && e instanceof SaeError) throw new SaeError(e.code, `${what}: ${e.message}`);
      throw e;
    }
  };
  const runs: PlannedRun[] = [];
  for (const s of settings)
    for (const seed of seeds)
      for (const method of new Set(methods.map(trainMethodOf)))
        runs.push({ setting: s.id, method, seed, dir: stageDir(out, 'train', s.id, method, seed), cfg: configOf(method, seed, s, s.id ? `setting ${settingLabel(s)} (--k / --activation)` : null) });
  const runOf = (setting: string, method: Method, seed: number) => runs.find((r) => r.setting === setting && r.method === trainMethodOf(method) && r.seed === seed)!;
  // Figure 2's run per seed: the first setting's posthoc run (table1), or App. D.1's own run, which is
  // the posthoc run of a setting when their configurations are equal (e.g. the toy's K = 8, 30 epochs).
  const figure2 = new Map<number, PlannedRun>();
  if (evaluations.has('heterogeneity'))
    for (const seed of seeds) {
      if (het.protocol === 'table1') {
        if (methods.includes('posthoc') || methods.includes('separate')) figure2.set(seed, runOf(settings[0].id, 'posthoc', seed));
        continue;
      }
      const cfg = configOf('posthoc', seed, { k: het.k, activation: 'topk', epochs: het.epochs }, `Figure 2's App. D.1 run (K = ${het.k}, ${het.epochs} epochs; --heterogeneity-k / --heterogeneity-epochs)`);
      const same = runs.find((r) => r.seed === seed && JSON.stringify(r.cfg) === JSON.stringify(cfg));
      figure2.set(seed, same ?? { setting: D1_SETTING, method: 'posthoc', seed, dir: stageDir(out, 'train', D1_SETTING, 'posthoc', seed), cfg });
    }
  const dims = (() => {
    using data = PairedEmbeddings.open(toSpec(o.inputs.train.image), toSpec(o.inputs.train.text));
    return { image: data.image.dim, text: data.text.dim };
  })();
  const ev: LoadedEval = await loadEvalInputs(o.inputs, dims);
  await ensureDirectory(out, 'fit output directory');
  await writeFileAtomic(
    path.join(out, 'fit.json'),
    toJson({ inputs: o.inputs, methods, seeds, config, sweep: o.sweep ?? {}, settings, heterogeneity: het, evaluations: [...evaluations], steering: o.steering ?? {}, zeroShot: o.zeroShot ?? {}, monosemanticity: o.monosemanticity ?? {} }) + '\n',
  );

  // 1. Training (Figure 2's own runs last).
  const trainSeconds: Record<string, number> = {};
  const dataKey = JSON.stringify(trainKey(o.inputs));
  const toTrain = [...runs, ...[...figure2.values()].filter((r) => !runs.includes(r))];
  for (const r of toTrain) {
    const id = path.relative(path.join(out, 'train'), r.dir);
    const base = { setting: r.setting, method: r.method, seed: r.seed };
    const ts = performance.now();
    const status = await trainOrReuse(r.dir, r.cfg, dataKey, o, (p) => o.onEvent?.({ type: 'progress', ...base, progress: p }), (s) => o.onEvent?.({ type: 'train', ...base, status: s }));
    trainSeconds[id] = status === 'reused' ? 0 : (performance.now() - ts) / 1000;
    o.onEvent?.({ type: 'train', ...base, status: status === 'reused' ? 'reused' : 'done', seconds: trainSeconds[id] });
  }

  // 2. Evaluation.
  const evalSeconds: Record<string, number> = {};
  const keys = (specs: (FitInputs['train']['image'] | string | undefined)[]) => specs.map((sp) => (sp === undefined ? '-' : fileKey(specPath(sp))));
  const ms = o.inputs.monosemanticity;
  const inputKeys: Record<string, unknown[]> = {
    eval: o.inputs.eval ? keys([o.inputs.eval.image, o.inputs.eval.text, ...(o.inputs.eval.labels ?? [])]) : [],
    zeroshot: o.inputs.zeroShot ? [...keys([o.inputs.zeroShot.prompts, o.inputs.zeroShot.images, o.inputs.zeroShot.labels]), o.inputs.zeroShot.templates ?? null] : [],
    ms: ms ? keys([ms.image ?? o.inputs.eval?.image, ms.text ?? o.inputs.eval?.text, ms.externalImage, ms.externalText]) : [],
    train: trainKey(o.inputs),
  };
  inputKeys.reconstruction = [...inputKeys.eval, ...inputKeys.zeroshot];

  /** Runs one evaluation, or reads it back when its key is unchanged. */
  const cached = async <T>(where: { setting: string; method: string; seed: number; dir: string; runDir: string }, name: Evaluation, opts: unknown, inputs: string, compute: () => Promise<T>, after?: (v: T) => Promise<void>): Promise<T> => {
    const version = RESULT_VERSIONS[name];
    const key = hash({ name, opts, inputs: inputKeys[inputs], train: inputKeys.train, model: await modelKey(where.runDir), ...(version ? { version } : {}) });
    const file = path.join(where.dir, `${name}.json`);
    const event = { type: 'eval' as const, setting: where.setting, method: where.method, seed: where.seed, evaluation: name };
    const hit = await readCached<T>(file, key);
    if (hit !== null) {
      o.onEvent?.({ ...event, status: 'reused' });
      return hit;
    }
    o.onEvent?.({ ...event, status: 'start' });
    const ts = performance.now();
    await ensureDirectory(where.dir, 'evaluation directory');
    const v = await compute();
    const id = `${path.relative(path.join(out, 'eval'), where.dir)}/${name}`;
    evalSeconds[id] = (performance.now() - ts) / 1000;
    if (after) await after(v); // side files first: a cached JSON means they exist
    await writeFileAtomic(file, toJson({ key, result: v }) + '\n');
    o.onEvent?.({ ...event, status: 'done', seconds: evalSeconds[id] });
    return v;
  };

  const settingResults: SettingResults[] = [];
  for (const s of settings) {
    const results: SettingResults['results'] = {};
    for (const method of methods) {
      results[method] = {};
      for (const seed of seeds) {
        const run = runOf(s.id, method, seed);
        const where = { setting: s.id, method, seed, dir: stageDir(out, 'eval', s.id, method, seed), runDir: run.dir };
        results[method][seed] = await evaluateMethod(where, method, run.cfg);
      }
    }
    settingResults.push({ ...s, label: settingLabel(s), results, summary: summarize(results, methods, seeds) });
  }

  /** Every evaluation but heterogeneity of one method, seed and setting. */
  async function evaluateMethod(where: Parameters<typeof cached>[0], method: Method, cfg: TrainConfig): Promise<MethodSeedResults> {
    const r: MethodSeedResults = {};
    let model: EvalModel | null = null;
    const getModel = async () => (model ??= await loadEvalModel(where.runDir, method === 'separate' ? { view: 'separate' } : {}));
    const run = async <T>(name: Evaluation, opts: unknown, inputs: string, compute: () => Promise<T>, after?: (v: T) => Promise<void>) =>
      evaluations.has(name) ? cached(where, name, opts, inputs, compute, after) : undefined;
    const skip = (evaluation: Evaluation, reason: string) => evaluations.has(evaluation) && o.onEvent?.({ type: 'eval', setting: where.setting, method, seed: where.seed, evaluation, status: 'skipped', reason });
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
          const fireRateImages = zo.fireRates === 'train' ? readTrainImages(o.inputs, cfg, zo.fireRateRows) : undefined;
          return evaluateZeroShot(m, z.prompts, z.templates, z.images, z.labels, { maxFireRate: zo.maxFireRate, fireRateImages });
        });
      } else skip('zeroshot', 'no zero-shot inputs (--zs-prompts/--zs-images/--zs-labels)');
      if (ev.retrieval?.imageConcepts && ev.retrieval.textConcepts) {
        const so = o.steering ?? {};
        r.steering = await run('steering', so, 'eval', async () => evaluateSteering(await getModel(), ev.retrieval!.image, ev.retrieval!.text, ev.retrieval!.labels.concepts, ev.retrieval!.imageConcepts!, ev.retrieval!.textConcepts!, so), async (v) => {
          await writeFileAtomic(path.join(where.dir, 'steering.csv'), steeringCsv(v));
        });
      } else skip('steering', 'the evaluation set has no concept labels');
      if (ev.monosemanticity) {
        const mo = { minFires: o.monosemanticity?.minFires ?? 2 };
        const v = await run('monosemanticity', mo, 'ms', async () => {
          const msi = ev.monosemanticity!;
          return evaluateMonosemanticity(await getModel(), { image: msi.image, text: msi.text }, { image: msi.externalImage, text: msi.externalText }, mo);
        }, async (v) => {
          const lines = ['latent,fires_image,fires_text,ms_image,ms_text'];
          for (let j = 0; j < v.image.scores.length; j++) lines.push(`${j},${v.image.fires[j]},${v.text.fires[j]},${Number.isNaN(v.image.scores[j]) ? '' : v.image.scores[j]},${Number.isNaN(v.text.scores[j]) ? '' : v.text.scores[j]}`);
          await writeFileAtomic(path.join(where.dir, 'monosemanticity.csv'), lines.join('\n') + '\n');
        });
        if (v) r.monosemanticity = reviveMs(v);
      } else skip('monosemanticity', 'no external embeddings (--external-image/--external-text)');
    } finally {
      (model as EvalModel | null)?.dispose();
    }
    return r;
  }

  // Figure 2: one modality-specific run per seed, chosen by the protocol.
  let heterogeneity: Figure2Results | null = null;
  if (figure2.size) {
    const first = figure2.get(seeds[0])!;
    const sharedWith = first.setting === D1_SETTING ? null : path.relative(out, first.dir).replace(/[\\/]seed-\d+$/, '');
    const c = first.cfg;
    heterogeneity = {
      protocol: het.protocol,
      description: figure2Description(het.protocol, c, sharedWith),
      run: { method: 'posthoc', k: c.sae.k, activation: c.sae.activation, epochs: c.train.epochs, latentsPerModality: latentsPerSae(c), setting: first.setting, sharedWith },
      seeds: {},
    };
    for (const seed of seeds) {
      const r = figure2.get(seed)!;
      // Stored with the run's own evaluations: a run's heterogeneity is the same under either protocol.
      const where = { setting: r.setting, method: 'posthoc', seed, dir: stageDir(out, 'eval', r.setting, 'posthoc', seed), runDir: r.dir };
      heterogeneity.seeds[seed] = await cached(where, 'heterogeneity', { edges: 'default' }, 'train', async () => heterogeneityOfRun(r.dir, r.cfg));
    }
  } else if (evaluations.has('heterogeneity'))
    for (const seed of seeds) o.onEvent?.({ type: 'eval', setting: settings[0].id, method: 'posthoc', seed, evaluation: 'heterogeneity', status: 'skipped', reason: "heterogeneity protocol 'table1' reads the posthoc run: add posthoc or separate to the methods, or use protocol 'd1'" });

  // 3. Report.
  const timings = { trainSeconds, evalSeconds, totalSeconds: (performance.now() - t0) / 1000 };
  const files = await writeFitReport(out, { methods, seeds, settings: settingResults, heterogeneity, timings, date: new Date().toISOString() });
  o.onEvent?.({ type: 'report', files });
  return { out, methods, seeds, settings: settingResults, results: settingResults[0].results, summary: settingResults[0].summary, heterogeneity, timings, files };
}

/** Which run Figure 2 came from, in words (results.md, report.html, results.json). */
function figure2Description(protocol: 'table1' | 'd1', c: TrainConfig, sharedWith: string | null): string {
  const run = `modality-specific SAEs (${latentsPerSae(c)} latents each), ${c.sae.activation === 'topk' ? 'Top-K' : 'BatchTop-K'} K = ${c.sae.k}, ${c.train.epochs} epochs, lr ${c.train.lr}, batch ${c.train.batchSize}, schedule ${c.train.schedule}`;
  if (protocol === 'd1')
    return `protocol 'd1' (the paper's App. D.1): ${run}${sharedWith ? `; that is exactly the configuration of ${sharedWith}, so its run is used` : ', trained for this figure (train/figure2-d1)'}`;
  return `protocol 'table1': the Table 1 post-hoc run itself (${sharedWith ?? 'train/posthoc'}: ${run}), not the paper's App. D.1 run (K = 8, 30 epochs; --heterogeneity-protocol d1)`;
}

/** Size and mtime of the training files: a run trained on other data is never reused. */
function trainKey(inputs: FitInputs): string[] {
  return [inputs.train.image, inputs.train.text].map((sp) => fileKey(specPath(sp)));
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


