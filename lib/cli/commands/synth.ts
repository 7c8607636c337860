/**
 * `cmsae synth alpha-sweep | lambda-sweep`: the paper's synthetic experiments (Figures 5 and 6) with a report.
 * Every option of the library's benchmark (lib/synth: generator, training, alignment, metric variants) is a flag;
 * --out is required, so the hour-long full benchmark never starts by accident in the current directory.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';

import { setThreads } from '../../info.js';
import { checkReportDirectory, writeReport } from '../../synth/report.js';
import { resolveSweep, runAlphaSweep, runLambdaSweep, type SweepOverrides, type SweepRunOptions } from '../../synth/run.js';
import type { SynthOptions } from '../../synth/generator.js';
import type { ReconstructionMetric, RecoveryMetric } from '../../synth/metrics.js';
import type { RunRecord, SweepSettings } from '../../synth/sweep.js';
import { nonNegativeInt, plainDecimal, positiveInt } from '../parse.js';

/** A number written plainly or as a fraction (1/64). */
function numberOrFraction(t: string): number {
  const parts = t.trim().split('/');
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) return NaN;
  const xs = parts.map(plainDecimal);
  return xs.length === 2 ? xs[0] / xs[1] : xs[0];
}

const list = (ok: (v: number) => boolean, what: string) => (v: string) => {
  const xs = v.split(',').map(numberOrFraction);
  if (!xs.every((x) => Number.isFinite(x) && ok(x))) throw new InvalidArgumentError(`expected comma-separated ${what}`);
  return xs;
};
const inRange = (lo: number, hi: number, open: 'closed' | 'right-open' | 'open') => (v: string) => {
  const x = numberOrFraction(v);
  const ok = Number.isFinite(x) && (open === 'open' ? x > lo && x < hi : x >= lo && (open === 'closed' ? x <= hi : x < hi));
  if (!ok) throw new InvalidArgumentError(`expected a number in ${open === 'open' ? '(' : '['}${lo}, ${hi}${open === 'closed' ? ']' : ')'}`);
  return x;
};
const positive = (v: string) => {
  const x = numberOrFraction(v);
  if (!(Number.isFinite(x) && x > 0)) throw new InvalidArgumentError('expected a number > 0');
  return x;
};
type DataFlags = Pick<SynthOptions, 'd' | 'nShared' | 'nImage' | 'nText' | 'sparsity' | 'noise' | 'nTrain' | 'nEval' | 'maxInterference' | 'boundAcrossBlocks' | 'l2Normalize'>;

interface SynthFlags extends DataFlags {
  out: string;
  quick?: boolean;
  alphas?: number[];
  alpha?: number;
  seeds?: number[];
  multipliers?: number[];
  isoLambda?: number;
  groupLambda?: number;
  m?: number;
  k?: number;
  batchSize?: number;
  epochs?: number;
  lr?: number;
  fvuReduction?: SweepSettings['fvuReduction'];
  alignment?: 'signed' | 'absolute';
  reconstruction?: ReconstructionMetric;
  recovery?: RecoveryMetric;
  magnitudes?: SynthOptions['sharedMagnitudes'];
  threads?: number;
  quiet?: boolean;
}

/** Flags -> library overrides: only what was given, so the full / quick defaults fill the rest. */
export function sweepOptions(f: SynthFlags): SweepRunOptions {
  const pick = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const settings: SweepOverrides = pick({
    m: f.m,
    k: f.k,
    batchSize: f.batchSize,
    epochs: f.epochs,
    lr: f.lr,
    fvuReduction: f.fvuReduction,
    signedAlignment: f.alignment === undefined ? undefined : f.alignment === 'signed',
  });
  settings.data = pick({
    d: f.d,
    nShared: f.nShared,
    nImage: f.nImage,
    nText: f.nText,
    sparsity: f.sparsity,
    noise: f.noise,
    nTrain: f.nTrain,
    nEval: f.nEval,
    maxInterference: f.maxInterference,
    boundAcrossBlocks: f.boundAcrossBlocks,
    sharedMagnitudes: f.magnitudes,
    l2Normalize: f.l2Normalize === false ? false : undefined,
  });
  settings.metrics = pick({ reconstruction: f.reconstruction, recovery: f.recovery });
  settings.lambdaBase = pick({ iso: f.isoLambda, group: f.groupLambda });
  return { quick: f.quick, alphas: f.alphas ?? (f.alpha !== undefined ? [f.alpha] : undefined), seeds: f.seeds, multipliers: f.multipliers, settings };
}

function progressLine(r: RunRecord, done: number, total: number): string {
  const lam = r.multiplier !== undefined ? ` λ×${r.multiplier}` : '';
  const m = r.metrics;
  const same = m.matchRate !== null ? `match rate ${m.matchRate.toFixed(3)}` : `collapse rate ${(m.collapseRate ?? NaN).toFixed(3)}`;
  return `[${done}/${total}] α=${r.alpha} seed ${r.seed} ${r.method}${lam}: ${same}, reconstruction ${m.reconstructionError.toFixed(3)}, feature recovery ${m.featureRecoveryError.toFixed(3)} (top-1 ${m.recoveryTop1.toFixed(3)}), feature alignment ${m.featureAlignmentError.toFixed(3)} (${r.trainSeconds.toFixed(0)} s)\n`;
}

function register(parent: Command, kind: 'alpha-sweep' | 'lambda-sweep'): void {
  const alpha = kind === 'alpha-sweep';
  const cmd = parent
    .command(kind)
    .description(alpha ? 'Figure 5: shared vs modality-specific vs post-hoc SAEs over α = cos(φ, ψ)' : 'Figure 6: Iso-Energy and group-sparse over λ at one α, against the shared, separate and post-hoc references')
    .requiredOption('--out <dir>', 'output directory (results.json, plots, report.html); required')
    .option('--quick', 'a few minutes on 2 cores: half the concepts and latents, 1950 steps, one seed (the report lists every difference from the paper)')
    .option('--seeds <list>', 'seeds, integers >= 0 (default 1,2,3; quick 1)', list((x) => Number.isInteger(x) && x >= 0, 'integers >= 0'));
  if (alpha) cmd.option('--alphas <list>', 'α values in [0, 1] (default 0,0.2,…,1; quick 0,0.5,0.9,1)', list((x) => x >= 0 && x <= 1, 'numbers in [0, 1]'));
  else
    cmd
      .option('--alpha <a>', 'α of the sweep, in [0, 1] (default 0.5: the paper\'s d_cos = 0.5)', inRange(0, 1, 'closed'))
      .option('--multipliers <list>', 'λ multipliers > 0 of the default λ (default 1/64,1/4,1,4,64; quick 1/64,1,64)', list((x) => x > 0, 'numbers > 0 (fractions like 1/64 allowed)'))
      .option('--iso-lambda <x>', 'default λ of the Iso-Energy loss, the authors\' masked top-1 cosine (default 0.03)', positive)
      .option('--group-lambda <x>', 'default λ of the group-sparse loss (default 0.05)', positive);
  cmd
    // training
    .option('--m <n>', 'shared SAE width, even; each modality SAE gets m/2 (default 8192; quick 4096)', positiveInt)
    .option('--k <n>', 'Top-K active latents, at most m/2 (default 16)', positiveInt)
    .option('--batch-size <n>', 'batch size (default 256)', positiveInt)
    .option('--epochs <n>', 'epochs (default 10; quick 25)', positiveInt)
    .option('--lr <x>', 'constant learning rate, in (0, 1) (default 5e-4)', inRange(0, 1, 'open'))
    .addOption(new Option('--fvu-reduction <r>', 'how a shared SAE combines the two FVUs of a paired batch (default sum, the authors\' synthetic path)').choices(['sum', 'mean']))
    .addOption(new Option('--alignment <a>', 'post-hoc alignment on the signed correlation (the paper) or its absolute value (the authors\' synthetic code) (default signed)').choices(['signed', 'absolute']))
    // metrics (both variants are always computed and the claims are checked under both; this picks the plotted one)
    .addOption(new Option('--reconstruction <v>', "reconstruction error of the main plots and tables: mse (paper, default) or fvu (authors' code)").choices(['mse', 'fvu']))
    .addOption(new Option('--recovery <v>', "feature recovery error of the main plots: full (the SAE's own Top-K encode/decode, paper, default) or top1 (the authors' plotted variant)").choices(['full', 'top1']))
    // data
    .option('--d <n>', 'embedding width (default 256)', positiveInt)
    .option('--n-shared <n>', 'shared concepts (default 1024; quick 512)', positiveInt)
    .option('--n-image <n>', 'image-only concepts (default 512; quick 256)', nonNegativeInt)
    .option('--n-text <n>', 'text-only concepts (default 512; quick 256)', nonNegativeInt)
    .option('--sparsity <s>', 'probability that a concept is inactive in a row, in [0, 1) (default 0.99; quick 0.98)', inRange(0, 1, 'right-open'))
    .option('--noise <σ>', 'observation noise std, in [0, 10] (default 0.05)', inRange(0, 10, 'closed'))
    .option('--n-train <n>', 'training pairs (default 50000; quick 20000)', positiveInt)
    .option('--n-eval <n>', 'evaluation pairs (default 10000; quick 5000)', positiveInt)
    .option('--max-interference <δ>', 'bound on the interference of distinct concepts, in (0, 1) (default 0.3)', inRange(0, 1, 'open'))
    .option('--bound-across-blocks', "bound |cos| between any two distinct concepts, across blocks and modalities (the paper's statement; default: positive dots within each block, the authors' code)")
    .addOption(new Option('--magnitudes <m>', "a shared concept's two magnitudes: independent (the authors' code, default) or identical (the paper)").choices(['independent', 'identical']))
    .option('--no-l2-normalize', 'keep the raw rows (default: L2-normalized, as the authors\' code)')
    .option('--threads <n>', 'native threads', positiveInt)
    .option('--quiet', 'no per-model lines')
    .addHelpText(
      'after',
      `\nBoth metric variants are computed from the same models; report.html states, claim by claim, whether it holds under the paper's formulas and under the authors' plotted variant.\n\nExamples:\n  $ cmsae synth ${kind} --quick --out out/${kind}\n  $ cmsae synth ${kind} --out out/${kind}-full      # the paper's settings (about half an hour on 2 idle cores)\n  $ cmsae synth ${kind} --quick --recovery top1 --alignment absolute --out out/${kind}-code\n`,
    )
    .action(async (f: SynthFlags) => {
      const o = sweepOptions(f);
      const { settings } = resolveSweep(kind, o); // every value checked before anything is trained
      const dir = path.resolve(f.out);
      checkReportDirectory(dir, kind, settings);
      if (f.threads) setThreads(f.threads);
      o.onRecord = (r, done, total) => {
        if (!f.quiet) process.stderr.write(progressLine(r, done, total));
      };
      const report = alpha ? await runAlphaSweep(o) : await runLambdaSweep(o);
      const files = await writeReport(dir, report);
      process.stdout.write(`${kind}: ${report.records.length} models in ${(report.seconds / 60).toFixed(1)} min -> ${dir} (${files.join(', ')})\n`);
    });
}

export function registerSynth(program: Command): void {
  const synth = program.command('synth').description("the paper's synthetic benchmark (Section 7.1)");
  register(synth, 'alpha-sweep');
  register(synth, 'lambda-sweep');
}
