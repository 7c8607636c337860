/** `cmsae train`: train one of the five methods on paired embedding files, with a progress bar and Ctrl-C = checkpoint + exit. */
import { Command } from 'commander';

import { SingleBar } from 'cli-progress';

import { SaeError } from '../../errors.js';
import { nonNegative, nonNegativeInt, positive, positiveInt, rowsDim } from '../parse.js';
import { setThreads } from '../../info.js';
import { METHODS, parseConfig } from '../../train/config.js';
import { Trainer, type TrainProgress, type ValidationRecord } from '../../train/trainer.js';
import { readConfigFile, setPath } from '../config-file.js';
import { interruptOnSigint } from '../interrupt.js';


interface TrainFlags {
  config?: string;
  image?: string;
  text?: string;
  imageTensor?: string;
  textTensor?: string;
  shape?: number[];
  valImage?: string;
  valText?: string;
  valFraction?: number;
  normalization?: string;
  method?: string;
  m?: number;
  k?: number;
  latentsPerModality?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  schedule?: string;
  warmupRatio?: number;
  seed?: number;
  lambda?: number;
  iso?: string;
  fvuReduction?: string;
  checkpointEvery?: number;
  device?: string;
  precision?: string;
  out: string;
  resume?: boolean;
  force?: boolean;
  quiet?: boolean;
  threads?: number;
}

/** The flags that do not change the run's configuration (allowed with --resume). */
const RUN_FLAGS = new Set<keyof TrainFlags>(['out', 'resume', 'quiet', 'threads']);

/** Config file, then flags on top. */
function buildConfig(f: TrainFlags): Record<string, unknown> {
  const cfg: Record<string, unknown> = f.config ? readConfigFile(f.config) : {};
  const set = (keys: string, v: unknown) => v !== undefined && setPath(cfg, keys.split('.'), v);
  const spec = (p: string | undefined, tensor: string | undefined) => (p === undefined ? undefined : { path: p, ...(tensor ? { tensor } : {}), ...(f.shape ? { shape: f.shape } : {}) });
  set('method', f.method);
  set('data.image', spec(f.image, f.imageTensor));
  // One safetensors file with two tensors: --image f --image-tensor a --text-tensor b (no --text).
  set('data.text', spec(f.text ?? (f.textTensor ? f.image : undefined), f.textTensor));
  set('data.valImage', spec(f.valImage, f.imageTensor));
  set('data.valText', spec(f.valText, f.textTensor));
  set('data.valFraction', f.valFraction);
  set('data.normalization', f.normalization);
  set('sae.m', f.m);
  set('sae.k', f.k);
  set('sae.latentsPerModality', f.latentsPerModality);
  set('train.epochs', f.epochs);
  set('train.batchSize', f.batchSize);
  set('train.lr', f.lr);
  set('train.schedule', f.schedule);
  set('train.warmupRatio', f.warmupRatio);
  set('train.seed', f.seed);
  set('train.pairLossWeight', f.lambda);
  set('train.isoVariant', f.iso);
  set('train.fvuReduction', f.fvuReduction);
  set('train.checkpointEvery', f.checkpointEvery);
  set('train.device', f.device);
  set('train.precision', f.precision);
  return cfg;
}

const fmt = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : '-');

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train SAEs on paired image/text embeddings (methods: ' + METHODS.join(', ') + ')')
    .requiredOption('--out <dir>', 'run directory (config, checkpoints, metrics.jsonl, final models)')
    .option('--config <file>', 'JSON or YAML training configuration; flags override it')
    .option('--image <file>', 'image embeddings (.npy, .safetensors, or raw float32 with --shape)')
    .option('--text <file>', 'text embeddings, row r paired with image row r')
    .option('--image-tensor <name>', 'safetensors tensor of the image embeddings')
    .option('--text-tensor <name>', 'safetensors tensor of the text embeddings (may live in the --image file)')
    .option('--shape <rows,dim>', 'shape of raw float32 files', rowsDim)
    .option('--val-image <file>', 'separate validation image embeddings')
    .option('--val-text <file>', 'separate validation text embeddings')
    .option('--val-fraction <f>', 'validation share of the rows when no validation files are given (default 0.05)', nonNegative)
    .option('--normalization <kind>', "'l2' (default), 'none' or 'center+l2'")
    .option('--method <name>', METHODS.join(' | '))
    .option('--m <n>', 'latents (shared SAE; the separate methods split them per modality)', positiveInt)
    .option('--k <n>', 'active latents per row', positiveInt)
    .option('--latents-per-modality <half|full>', "separate methods: m/2 per SAE ('half', default) or m each")
    .option('--epochs <n>', 'epochs (default 10)', positiveInt)
    .option('--batch-size <n>', 'rows per batch (default 1024)', positiveInt)
    .option('--lr <x>', 'peak learning rate (default 5e-4)', positive)
    .option('--schedule <name>', "'warmup-cosine' (default), 'constant' or 'warmup-constant'")
    .option('--warmup-ratio <x>', 'warmup share of the steps (default 0.05)', nonNegative)
    .option('--seed <n>', 'seed of the init, the split and the shuffles (default 0)', nonNegativeInt)
    .option('--lambda <x>', 'weight of the shared+iso / shared+group loss', nonNegative)
    .option('--iso <variant>', "shared+iso: 'iso' (authors' masked top-1 cosine, default) or 'iso-inner' (paper)")
    .option('--fvu-reduction <sum|mean>', "combine the image and text FVUs by 'mean' (default) or 'sum'")
    .option('--checkpoint-every <steps>', 'checkpoint every N steps (default: at the end and on Ctrl-C)', nonNegativeInt)
    .option('--device <auto|cpu|cuda>', "where to train (default 'auto': CUDA when a device exists; env CMSAE_DEVICE)")
    .option('--precision <tf32|bf16|fp32>', "encoder GEMM precision on CUDA (default 'tf32')")
    .option('--resume', 'continue the run in --out from its checkpoint (its saved configuration is used)')
    .option('--force', 'start a new run even where --out holds another run (its config, metrics, checkpoint and final models are replaced)')
    .option('--threads <n>', 'native threads (default: all cores)', positiveInt)
    .option('--quiet', 'no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  $ cmsae train --image img.npy --text txt.npy --method posthoc --m 8192 --k 32 --epochs 10 --out runs/x
  $ cmsae train --config run.yaml --out runs/y --lr 1e-3
  $ cmsae train --resume --out runs/x          # after Ctrl-C or a crash
  $ cmsae train --config run.yaml --out runs/x --force   # replace the run in runs/x
`,
    )
    .action(async (f: TrainFlags) => {
      if (f.threads !== undefined) setThreads(f.threads);
      if (f.resume && f.force) throw new SaeError('ERR_ARG', '--resume continues the run in --out and --force replaces it: give one of them');
      let trainer: Trainer;
      if (f.resume) {
        const given = (Object.keys(f) as (keyof TrainFlags)[]).filter((k) => f[k] !== undefined && !RUN_FLAGS.has(k)).map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()));
        if (given.length)
          throw new SaeError('ERR_ARG', `--resume continues with the run's saved configuration, so ${given.join(', ')} would be ignored: give --resume with --out (and --threads, --quiet) only, or edit ${f.out}/config.json`);
        trainer = new Trainer(await Trainer.loadConfig(f.out), { out: f.out, resume: true });
      } else {
        const raw = buildConfig(f);
        if (!raw.method || !(raw.data as Record<string, unknown> | undefined)?.image)
          throw new SaeError('ERR_ARG', 'train needs --method, --image and --text (or a --config file that sets them)');
        trainer = new Trainer(parseConfig(raw), { out: f.out, force: f.force === true });
      }
      const interrupt = interruptOnSigint();
      const bar = f.quiet || !process.stderr.isTTY ? null : new SingleBar({
        format: '{bar} {percentage}% | step {value}/{total} | loss {loss} fvu {fvu} L0 {l0} dead {dead}% lr {lr} | {rate} rows/s | ETA {eta_formatted}',
        barsize: 24,
        etaBuffer: 200,
      });
      let lastLine = 0;
      trainer.on('progress', (p: TrainProgress) => {
        const payload = { loss: fmt(p.loss), fvu: fmt(p.fvu), l0: fmt(p.l0, 1), dead: fmt(100 * p.deadFraction, 1), lr: p.lr.toExponential(2), rate: Math.round(p.samplesPerSec) };
        if (bar) {
          if (p.step === 1 || lastLine === 0) bar.start(p.totalSteps, p.step - 1, payload);
          lastLine = 1;
          bar.update(p.step, payload);
        } else if (!f.quiet && (p.step % 200 === 0 || p.step === p.totalSteps)) {
          process.stderr.write(`step ${p.step}/${p.totalSteps} loss ${payload.loss} fvu ${payload.fvu} L0 ${payload.l0} dead ${payload.dead}% lr ${payload.lr} ${payload.rate} rows/s\n`);
        }
      });
      trainer.on('validation', (v: ValidationRecord) => {
        if (!f.quiet) process.stderr.write(`${bar ? '\n' : ''}epoch ${v.epoch + 1}: validation FVU image ${fmt(v.fvuImage)} text ${fmt(v.fvuText)} (${v.rows} rows)\n`);
      });
      try {
        const r = await trainer.run({ signal: interrupt.signal });
        bar?.stop();
        process.stdout.write(`trained ${r.steps} steps; models: ${Object.entries(r.models).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
      } catch (e) {
        bar?.stop();
        if (e instanceof SaeError && e.code === 'ERR_ABORTED') throw new SaeError('ERR_ABORTED', `${e.message}: cmsae train --resume --out ${f.out}`);
        throw e;
      } finally {
        interrupt.release();
      }
    });
}
