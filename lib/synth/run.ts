/** The two sweeps of the paper's §7.1 with their full and quick settings (quick: see QUICK.reductions). */
import { SaeError } from '../errors.js';
import { runSyntheticCell, PAPER_SWEEP, type MethodRun, type RunRecord, type SweepSettings } from './sweep.js';
import { generatorOptions, SYNTH_DEFAULTS } from './generator.js';
import type { SweepReport } from './report.js';
import { theoryCheck } from './theory.js';

/**
 * --quick: about the paper's number of optimizer steps (20k pairs x 25 epochs of 256 = 1950 steps, as 50k x
 * 10) on half the concepts (512 shared, 256 + 256 private, sparsity 0.98 so a row still holds ~15 active
 * concepts) with half the latents (4096 shared, 2 x 2048: the same latents per concept), one seed and fewer
 * alpha / lambda values.
 */
export const QUICK: { settings: SweepSettings; alphas: number[]; lambdaMultipliers: number[]; seeds: number[]; why: string } = {
  settings: { ...PAPER_SWEEP, m: 4096, epochs: 25, data: { nShared: 512, nImage: 256, nText: 256, sparsity: 0.98, nTrain: 20_000, nEval: 5_000 } },
  alphas: [0, 0.5, 0.9, 1],
  lambdaMultipliers: [1 / 64, 1, 64],
  seeds: [1],
  why:
    "--quick keeps the paper's optimizer step count (20k pairs x 25 epochs of 256 = 1950 steps, as 50k x 10) and the latents per concept " +
    '(half the concepts with half the latents), with sparsity 0.98 so a row still holds about 15 active concepts, one seed and fewer α / λ values',
};

export const FULL = {
  settings: PAPER_SWEEP,
  alphas: [0, 0.2, 0.4, 0.6, 0.8, 1],
  lambdaMultipliers: [1 / 64, 1 / 4, 1, 4, 64],
  seeds: [1, 2, 3],
};

/** The α of the λ-sweep (the paper's d_cos = 0.5). */
export const LAMBDA_SWEEP_ALPHA = 0.5;

/** Settings on top of the full or quick ones: nested objects (data, metrics, lambdaBase) merge key by key. */
export type SweepOverrides = Partial<Omit<SweepSettings, 'data' | 'metrics' | 'lambdaBase'>> & {
  data?: SweepSettings['data'];
  metrics?: SweepSettings['metrics'];
  lambdaBase?: Partial<SweepSettings['lambdaBase']>;
};

export interface SweepRunOptions {
  quick?: boolean;
  settings?: SweepOverrides;
  /** α-sweep: its α values; λ-sweep: one value at most (default 0.5). */
  alphas?: number[];
  seeds?: number[];
  multipliers?: number[];
  onRecord?: (r: RunRecord, done: number, total: number) => void;
}

const bad = (msg: string) => new SaeError('ERR_ARG', msg);
const isInt = (v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

function checkList(name: string, xs: unknown, ok: (v: number) => boolean, what: string): number[] {
  if (!Array.isArray(xs) || xs.length === 0) throw bad(`${name} must be a non-empty list of numbers`);
  for (const v of xs) if (typeof v !== 'number' || !ok(v)) throw bad(`${name}: ${String(v)} is not ${what}`);
  if (new Set(xs).size !== xs.length) throw bad(`${name} lists a value twice: ${xs.join(', ')}`);
  return xs as number[];
}

/** The full settings of a sweep, every value checked (typed ERR_ARG before anything is trained). */
export function resolveSweep(kind: SweepReport['kind'], o: SweepRunOptions = {}): { settings: SweepSettings; alphas: number[]; seeds: number[]; multipliers: number[] } {
  const base = o.quick ? QUICK : FULL;
  const over = o.settings ?? {};
  const settings: SweepSettings = {
    ...base.settings,
    ...over,
    data: { ...base.settings.data, ...over.data },
    metrics: { ...base.settings.metrics, ...over.metrics },
    lambdaBase: { ...base.settings.lambdaBase, ...over.lambdaBase },
  };
  const s = settings;
  if (!isInt(s.m, 2, 1 << 20) || s.m % 2 !== 0) throw bad(`m must be an even integer in [2, ${1 << 20}] (each modality SAE gets m/2), got ${s.m}`);
  if (!isInt(s.k, 1, s.m / 2)) throw bad(`k must be an integer in [1, m/2 = ${s.m / 2}], got ${s.k}`);
  if (!isInt(s.batchSize, 1, 1 << 20)) throw bad(`batchSize must be an integer in [1, ${1 << 20}], got ${s.batchSize}`);
  if (!isInt(s.epochs, 1, 100_000)) throw bad(`epochs must be an integer in [1, 100000], got ${s.epochs}`);
  if (!(typeof s.lr === 'number' && s.lr > 0 && s.lr < 1)) throw bad(`lr must be a number in (0, 1), got ${s.lr}`);
  if (s.fvuReduction !== 'sum' && s.fvuReduction !== 'mean') throw bad(`fvuReduction must be 'sum' or 'mean', got ${String(s.fvuReduction)}`);
  if (typeof s.signedAlignment !== 'boolean') throw bad(`signedAlignment must be true or false, got ${String(s.signedAlignment)}`);
  const { reconstruction, recovery } = s.metrics;
  if (reconstruction !== undefined && reconstruction !== 'mse' && reconstruction !== 'fvu') throw bad(`metrics.reconstruction must be 'mse' or 'fvu', got ${String(reconstruction)}`);
  if (recovery !== undefined && recovery !== 'full' && recovery !== 'top1') throw bad(`metrics.recovery must be 'full' or 'top1', got ${String(recovery)}`);
  for (const key of ['iso', 'group'] as const) {
    const v = s.lambdaBase[key];
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw bad(`lambdaBase.${key} must be a number > 0, got ${String(v)}`);
  }
  const data = generatorOptions({ ...s.data, alpha: 0, seed: 0 });
  if (data.nTrain < s.batchSize) throw bad(`nTrain (${data.nTrain}) must hold at least one batch of ${s.batchSize}`);
  const alphas = checkList('alphas', o.alphas ?? (kind === 'alpha-sweep' ? base.alphas : [LAMBDA_SWEEP_ALPHA]), (v) => v >= 0 && v <= 1, 'in [0, 1]');
  if (kind === 'lambda-sweep' && alphas.length !== 1) throw bad(`the λ-sweep runs at one α, got ${alphas.length}: ${alphas.join(', ')}`);
  const seeds = checkList('seeds', o.seeds ?? base.seeds, (v) => isInt(v, 0, MAX_SEED), `an integer in [0, ${MAX_SEED}]`);
  const multipliers = checkList('multipliers', o.multipliers ?? base.lambdaMultipliers, (v) => Number.isFinite(v) && v > 0, 'a number > 0');
  return { settings, alphas, seeds, multipliers };
}

/** Largest seed: the generator derives eight streams per seed (seed * 8 + block). */
export const MAX_SEED = 2 ** 28 - 1;

const fmt = (v: unknown): string => (Array.isArray(v) ? `{${v.map(fmt).join(', ')}}` : String(v));
const fraction = (v: number): string => (v < 1 && Number.isInteger(1 / v) ? `1/${1 / v}` : String(v));

/**
 * Every way a sweep's settings differ from the defaults (the paper's App. D.2 settings, with the authors' code
 * where the paper is silent or differs: docs/synthetic.md), in words.
 */
export function differencesFromPaper(kind: SweepReport['kind'], s: SweepSettings, alphas: number[], seeds: number[], multipliers: number[], quick: boolean): string[] {
  const out: string[] = quick ? [QUICK.why] : [];
  const diff = (name: string, v: unknown, p: unknown) => {
    if (fmt(v) !== fmt(p)) out.push(`${name} ${fmt(v)} (default ${fmt(p)})`);
  };
  for (const k of ['m', 'k', 'batchSize', 'epochs', 'lr', 'fvuReduction', 'signedAlignment'] as const) diff(k, s[k], PAPER_SWEEP[k]);
  const data = generatorOptions({ ...s.data, alpha: 0, seed: 0 });
  for (const k of Object.keys(SYNTH_DEFAULTS) as (keyof typeof SYNTH_DEFAULTS)[]) if (k !== 'seed') diff(k, data[k], SYNTH_DEFAULTS[k]);
  if (kind === 'alpha-sweep') diff('α', alphas, FULL.alphas);
  else {
    diff('α', alphas, [LAMBDA_SWEEP_ALPHA]);
    diff('λ multipliers', multipliers.map(fraction), FULL.lambdaMultipliers.map(fraction));
    diff('Iso-Energy λ', s.lambdaBase.iso, PAPER_SWEEP.lambdaBase.iso);
    diff('group-sparse λ', s.lambdaBase.group, PAPER_SWEEP.lambdaBase.group);
  }
  if (seeds.length !== FULL.seeds.length) out.push(`${seeds.length} seed${seeds.length === 1 ? '' : 's'} (default ${FULL.seeds.length})`);
  return out;
}

export async function runAlphaSweep(o: SweepRunOptions = {}): Promise<SweepReport> {
  const { settings, alphas, seeds } = resolveSweep('alpha-sweep', o);
  const runs: MethodRun[] = [{ method: 'shared' }, { method: 'separate' }, { method: 'posthoc' }];
  const t0 = Date.now();
  const records: RunRecord[] = [];
  let done = 0;
  const total = alphas.length * seeds.length * runs.length;
  for (const alpha of alphas)
    for (const seed of seeds) records.push(...(await runSyntheticCell(alpha, seed, runs, settings, (r) => o.onRecord?.(r, ++done, total))));
  return { kind: 'alpha-sweep', quick: !!o.quick, reductions: differencesFromPaper('alpha-sweep', settings, alphas, seeds, [], !!o.quick), settings, alphas, seeds, records, seconds: (Date.now() - t0) / 1000, theory: theoryCheck(), date: new Date().toISOString() };
}

export async function runLambdaSweep(o: SweepRunOptions = {}): Promise<SweepReport> {
  const { settings, alphas, seeds, multipliers: mults } = resolveSweep('lambda-sweep', o);
  const alpha = alphas[0];
  const runs: MethodRun[] = [
    { method: 'shared' },
    { method: 'separate' },
    { method: 'posthoc' },
    ...mults.map((m) => ({ method: 'shared+iso' as const, lambda: settings.lambdaBase.iso * m, multiplier: m })),
    ...mults.map((m) => ({ method: 'shared+group' as const, lambda: settings.lambdaBase.group * m, multiplier: m })),
  ];
  const t0 = Date.now();
  const records: RunRecord[] = [];
  let done = 0;
  const total = seeds.length * runs.length;
  for (const seed of seeds) records.push(...(await runSyntheticCell(alpha, seed, runs, settings, (r) => o.onRecord?.(r, ++done, total))));
  return { kind: 'lambda-sweep', quick: !!o.quick, reductions: differencesFromPaper('lambda-sweep', settings, [alpha], seeds, mults, !!o.quick), settings, alphas: [alpha], seeds, multipliers: mults, records, seconds: (Date.now() - t0) / 1000, theory: theoryCheck(), date: new Date().toISOString() };
}
