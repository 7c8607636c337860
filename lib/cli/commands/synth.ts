/** `cmsae synth alpha-sweep | lambda-sweep`: the paper's synthetic experiments (Figures 5 and 6) with a report. */
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';

import { setThreads } from '../../info.js';
import { writeReport, METRIC_LABELS } from '../../synth/report.js';
import { runAlphaSweep, runLambdaSweep, type SweepRunOptions } from '../../synth/run.js';
import type { RunRecord } from '../../synth/sweep.js';

const list = (v: string) => {
  const xs = v.split(',').map((t) => (t.includes('/') ? Number(t.split('/')[0]) / Number(t.split('/')[1]) : Number(t)));
  if (!xs.every(Number.isFinite)) throw new InvalidArgumentError('expected comma-separated numbers (fractions like 1/64 allowed)');
  return xs;
};
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

interface SynthFlags {
  quick?: boolean;
  out?: string;
  alphas?: number[];
  seeds?: number[];
  multipliers?: number[];
  m?: number;
  epochs?: number;
  nTrain?: number;
  threads?: number;
  quiet?: boolean;
}

function register(parent: Command, kind: 'alpha-sweep' | 'lambda-sweep'): void {
  parent
    .command(kind)
    .description(kind === 'alpha-sweep' ? 'Figure 5: shared vs modality-specific vs post-hoc SAEs over α = cos(φ, ψ)' : 'Figure 6: Iso-Energy and group-sparse over λ at α = 0.5, against the shared, separate and post-hoc references')
    .option('--quick', 'a few minutes on 2 cores: half the concepts and latents, 1950 steps, one seed (see the report)')
    .option('--out <dir>', 'output directory (results.json, plots, report.html)', `synth-${kind}`)
    .option('--alphas <list>', kind === 'alpha-sweep' ? 'α values (default 0,0.2,…,1; quick 0,0.5,0.9,1)' : 'α of the sweep (default 0.5)', list)
    .option('--seeds <list>', 'seeds (default 1,2,3; quick 1)', list)
    .option('--multipliers <list>', 'λ multipliers of the defaults 0.03 / 0.05 (default 1/64,1/4,1,4,64; quick 1/64,1,64)', list)
    .option('--m <n>', 'shared SAE width (modality SAEs get m/2)', int)
    .option('--epochs <n>', 'epochs', int)
    .option('--n-train <n>', 'training pairs', int)
    .option('--threads <n>', 'native threads', int)
    .option('--quiet', 'no per-model lines')
    .addHelpText('after', `\nExamples:\n  $ cmsae synth ${kind} --quick --out out/${kind}\n  $ cmsae synth ${kind} --out out/${kind}-full      # the paper's settings (about an hour on 2 cores)\n`)
    .action(async (f: SynthFlags) => {
      if (f.threads) setThreads(f.threads);
      const o: SweepRunOptions = {
        quick: f.quick,
        alphas: f.alphas,
        seeds: f.seeds,
        multipliers: f.multipliers,
        settings: { ...(f.m ? { m: f.m } : {}), ...(f.epochs ? { epochs: f.epochs } : {}), ...(f.nTrain ? { data: { nTrain: f.nTrain } } : {}) },
        onRecord: (r: RunRecord, done: number, total: number) => {
          if (f.quiet) return;
          const lam = r.multiplier !== undefined ? ` λ×${r.multiplier}` : '';
          process.stderr.write(`[${done}/${total}] α=${r.alpha} seed ${r.seed} ${r.method}${lam}: ${(['collapseRate', 'reconstructionError', 'featureRecoveryError', 'featureAlignmentError'] as const).map((k) => `${METRIC_LABELS[k].toLowerCase()} ${r.metrics[k].toFixed(3)}`).join(', ')} (${r.trainSeconds.toFixed(0)} s)\n`);
        },
      };
      const report = kind === 'alpha-sweep' ? await runAlphaSweep(o) : await runLambdaSweep(o);
      const dir = path.resolve(f.out ?? `synth-${kind}`);
      const files = await writeReport(dir, report);
      process.stdout.write(`${kind}: ${report.records.length} models in ${(report.seconds / 60).toFixed(1)} min -> ${dir} (${files.join(', ')})\n`);
    });
}

export function registerSynth(program: Command): void {
  const synth = program.command('synth').description("the paper's synthetic benchmark (Section 7.1)");
  register(synth, 'alpha-sweep');
  register(synth, 'lambda-sweep');
}
