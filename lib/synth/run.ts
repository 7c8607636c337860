/** The two sweeps of the paper's §7.1 with their full and quick settings (quick: see QUICK_REDUCTIONS). */
import { runSyntheticCell, PAPER_SWEEP, type MethodRun, type RunRecord, type SweepSettings } from './sweep.js';
import type { SweepReport } from './report.js';
import { theoryCheck } from './theory.js';

export const IA_BASE = 0.03;
export const GS_BASE = 0.05;

/**
 * --quick: about the paper's number of optimizer steps (20k pairs x 25 epochs of 256 = 1950 steps, as 50k x
 * 10) on half the concepts (512 shared, 256 + 256 private, sparsity 0.98 so a row still holds ~15 active
 * concepts) with half the latents (4096 shared, 2 x 2048: the same latents per concept), one seed and fewer
 * alpha / lambda values.
 */
export const QUICK: { settings: SweepSettings; alphas: number[]; lambdaMultipliers: number[]; seeds: number[]; reductions: string[] } = {
  settings: { ...PAPER_SWEEP, m: 4096, epochs: 25, data: { nShared: 512, nImage: 256, nText: 256, sparsity: 0.98, nTrain: 20_000, nEval: 5_000 } },
  alphas: [0, 0.5, 0.9, 1],
  lambdaMultipliers: [1 / 64, 1, 64],
  seeds: [1],
  reductions: [
    'half the concepts (512 shared, 256 image-only, 256 text-only) with sparsity 0.98 (about 15 active concepts per row, as in the paper)',
    'half the latents (4096 shared, 2 × 2048 modality-specific: the same latents per concept)',
    '20k training / 5k evaluation pairs, 25 epochs (1950 steps of 256, the paper\'s step count)',
    'one seed; α ∈ {0, 0.5, 0.9, 1}; λ multipliers {1/64, 1, 64}',
  ],
};

export const FULL = {
  settings: PAPER_SWEEP,
  alphas: [0, 0.2, 0.4, 0.6, 0.8, 1],
  lambdaMultipliers: [1 / 64, 1 / 4, 1, 4, 64],
  seeds: [1, 2, 3],
};

export interface SweepRunOptions {
  quick?: boolean;
  settings?: Partial<SweepSettings>;
  alphas?: number[];
  seeds?: number[];
  multipliers?: number[];
  onRecord?: (r: RunRecord, done: number, total: number) => void;
}

export async function runAlphaSweep(o: SweepRunOptions = {}): Promise<SweepReport> {
  const base = o.quick ? QUICK : FULL;
  const settings = { ...base.settings, ...o.settings, data: { ...base.settings.data, ...o.settings?.data } };
  const alphas = o.alphas ?? base.alphas, seeds = o.seeds ?? base.seeds;
  const runs: MethodRun[] = [{ method: 'shared' }, { method: 'separate' }, { method: 'posthoc' }];
  const t0 = Date.now();
  const records: RunRecord[] = [];
  let done = 0;
  const total = alphas.length * seeds.length * runs.length;
  for (const alpha of alphas)
    for (const seed of seeds) records.push(...(await runSyntheticCell(alpha, seed, runs, settings, (r) => o.onRecord?.(r, ++done, total))));
  return { kind: 'alpha-sweep', quick: !!o.quick, reductions: o.quick ? QUICK.reductions : [], settings, alphas, seeds, records, seconds: (Date.now() - t0) / 1000, theory: theoryCheck(), date: new Date().toISOString() };
}

export async function runLambdaSweep(o: SweepRunOptions = {}): Promise<SweepReport> {
  const base = o.quick ? QUICK : FULL;
  const settings = { ...base.settings, ...o.settings, data: { ...base.settings.data, ...o.settings?.data } };
  const alpha = o.alphas?.[0] ?? 0.5, seeds = o.seeds ?? base.seeds;
  const mults = o.multipliers ?? base.lambdaMultipliers;
  const runs: MethodRun[] = [
    { method: 'shared' },
    { method: 'separate' },
    { method: 'posthoc' },
    ...mults.map((m) => ({ method: 'shared+iso' as const, lambda: IA_BASE * m, multiplier: m })),
    ...mults.map((m) => ({ method: 'shared+group' as const, lambda: GS_BASE * m, multiplier: m })),
  ];
  const t0 = Date.now();
  const records: RunRecord[] = [];
  let done = 0;
  const total = seeds.length * runs.length;
  for (const seed of seeds) records.push(...(await runSyntheticCell(alpha, seed, runs, settings, (r) => o.onRecord?.(r, ++done, total))));
  return { kind: 'lambda-sweep', quick: !!o.quick, reductions: o.quick ? QUICK.reductions : [], settings, alphas: [alpha], seeds, multipliers: mults, records, seconds: (Date.now() - t0) / 1000, theory: theoryCheck(), date: new Date().toISOString() };
}
