/** `cmsae fit`: train every method, align, evaluate all on the same footing, report (Table 1 or Tables 2/4, Figures 2, 7, 8). */
import { Command } from 'commander';

import { SaeError } from '../../errors.js';
import { int, num, numbers, positiveInt, strings } from '../parse.js';
import { EVALUATIONS, fit, type Evaluation, type FitEvent } from '../../fit/fit.js';
import { tablesMarkdown } from '../../fit/report.js';
import type { Activation } from '../../fit/settings.js';
import { readManifest, type FitInputs } from '../../eval/inputs.js';
import { setThreads } from '../../info.js';
import { METHODS, type Method } from '../../train/config.js';
import { readConfigFile, setPath } from '../config-file.js';
import { interruptOnSigint } from '../interrupt.js';

interface FitFlags {
  out: string;
  dataset?: string;
  image?: string;
  text?: string;
  evalImage?: string;
  evalText?: string;
  evalLabels?: string[];
  zsPrompts?: string;
  zsTemplates?: number;
  zsImages?: string;
  zsLabels?: string;
  msImage?: string;
  msText?: string;
  externalImage?: string;
  externalText?: string;
  methods?: string[];
  seeds?: number[];
  evaluations?: string[];
  config?: string;
  m?: number;
  k?: number[];
  activation?: string[];
  heterogeneityProtocol?: string;
  heterogeneityK?: number;
  heterogeneityEpochs?: number;
  steeringDeadSlots?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  normalization?: string;
  device?: string;
  steeringAlphas?: number[];
  steeringSources?: number;
  maxFireRate?: number;
  zsFireRates?: string;
  force?: boolean;
  threads?: number;
  quiet?: boolean;
}

async function buildInputs(f: FitFlags): Promise<FitInputs> {
  const base: Partial<FitInputs> = f.dataset ? await readManifest(f.dataset) : {};
  const train = { image: f.image ?? base.train?.image, text: f.text ?? base.train?.text };
  if (!train.image || !train.text) throw new SaeError('ERR_ARG', 'fit needs training embeddings: --image and --text, or --dataset dataset.json');
  const inputs: FitInputs = { train: { image: train.image, text: train.text } };
  const ei = f.evalImage ?? base.eval?.image, et = f.evalText ?? base.eval?.text;
  if (ei || et) {
    if (!ei || !et) throw new SaeError('ERR_ARG', 'give both --eval-image and --eval-text');
    inputs.eval = { image: ei, text: et, labels: f.evalLabels ?? base.eval?.labels };
  }
  const zp = f.zsPrompts ?? base.zeroShot?.prompts, zi = f.zsImages ?? base.zeroShot?.images, zl = f.zsLabels ?? base.zeroShot?.labels;
  if (zp || zi || zl) {
    if (!zp || !zi || !zl) throw new SaeError('ERR_ARG', 'zero-shot needs --zs-prompts, --zs-images and --zs-labels');
    inputs.zeroShot = { prompts: zp, images: zi, labels: zl, templates: f.zsTemplates ?? base.zeroShot?.templates };
  }
  const xi = f.externalImage ?? base.monosemanticity?.externalImage, xt = f.externalText ?? base.monosemanticity?.externalText;
  if (xi || xt) {
    if (!xi || !xt) throw new SaeError('ERR_ARG', 'monosemanticity needs both --external-image and --external-text');
    inputs.monosemanticity = { image: f.msImage ?? base.monosemanticity?.image, text: f.msText ?? base.monosemanticity?.text, externalImage: xi, externalText: xt };
  }
  return inputs;
}

function buildConfig(f: FitFlags): Record<string, unknown> {
  const cfg: Record<string, unknown> = f.config ? readConfigFile(f.config) : {};
  for (const k of ['method', 'data.image', 'data.text'])
    if (k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], cfg) !== undefined)
      throw new SaeError('ERR_ARG', `--config sets ${k}; fit chooses methods with --methods and data with --image/--text/--dataset`);
  const set = (keys: string, v: unknown) => v !== undefined && setPath(cfg, keys.split('.'), v);
  set('sae.m', f.m);
  set('train.epochs', f.epochs);
  set('train.batchSize', f.batchSize);
  set('train.lr', f.lr);
  set('data.normalization', f.normalization);
  set('train.device', f.device);
  return cfg;
}

export function registerFit(program: Command): void {
  program
    .command('fit')
    .description('train every method, align, evaluate (reconstruction, retrieval, zero-shot, steering, monosemanticity, heterogeneity) and write results.json, plots and report.html')
    .requiredOption('--out <dir>', 'fit directory (training runs, evaluations, results, report); a rerun reuses what it holds')
    .option('--dataset <file>', 'dataset manifest (dataset.json; `cmsae toy` writes one; see docs/evaluation.md); flags override it')
    .option('--image <file>', 'training image embeddings')
    .option('--text <file>', 'training text embeddings (row r pairs with image row r)')
    .option('--eval-image <file>', 'held-out image embeddings (retrieval, steering, reconstruction)')
    .option('--eval-text <file>', 'held-out caption embeddings')
    .option('--eval-labels <files>', 'label files, comma-separated: ours (JSON), COCO instances and/or COCO captions', strings)
    .option('--zs-prompts <file>', 'class-prompt text embeddings, classes x templates rows (class-major)')
    .option('--zs-templates <n>', 'templates per class (default: from the labels file, else 1)', positiveInt)
    .option('--zs-images <file>', 'labeled image embeddings for zero-shot classification')
    .option('--zs-labels <file>', 'JSON: array of class indices, or {classes, templates, labels}')
    .option('--ms-image <file>', 'images scored for monosemanticity (default: --eval-image)')
    .option('--ms-text <file>', 'captions scored for monosemanticity (default: --eval-text)')
    .option('--external-image <file>', 'external-encoder embeddings of the monosemanticity images (same rows)')
    .option('--external-text <file>', 'external-encoder embeddings of the monosemanticity captions (same rows)')
    .option('--methods <list>', `comma-separated (default all: ${METHODS.join(',')})`, strings)
    .option('--seeds <list>', 'seeds (default 0); results are mean ± std over them', numbers)
    .option('--evaluations <list>', `comma-separated (default all: ${EVALUATIONS.join(',')})`, strings)
    .option('--config <file>', 'JSON/YAML training configuration shared by every method (sae, train, align, data.normalization)')
    .option('--m <n>', 'latents of the shared SAE (modality-specific SAEs get m/2 each)', int)
    .option('--k <list>', 'active latents per row; a list (16,32,64) trains and reports every K (the paper\'s Table 2)', numbers)
    .option('--activation <list>', "'topk' (default) and/or 'batchtopk'; both (topk,batchtopk) give the paper's Table 4", strings)
    .option('--epochs <n>', 'epochs', int)
    .option('--batch-size <n>', 'rows per batch', int)
    .option('--lr <x>', 'peak learning rate', num)
    .option('--normalization <kind>', "'l2' (default), 'none' or 'center+l2'; applied in training and every evaluation")
    .option('--device <auto|cpu|cuda>', "where to train (default 'auto': CUDA when a device exists; env CMSAE_DEVICE)")
    .option('--steering-alphas <list>', 'steering strengths (default 0,0.1,0.25,0.5,1,2)', numbers)
    .option('--steering-sources <n>', 'source images per concept (default 100)', positiveInt)
    .option('--steering-dead-slots <flag|skip>', "concepts whose image or text latent is dead: 'flag' (default; scored and counted) or 'skip'")
    .option('--heterogeneity-protocol <table1|d1>', "Figure 2 from the Table 1 posthoc run ('table1', default) or from its own App. D.1 run ('d1': K 8, 30 epochs)")
    .option('--heterogeneity-k <n>', "protocol d1: K of its run (default 8)", positiveInt)
    .option('--heterogeneity-epochs <n>', 'protocol d1: epochs of its run (default 30)', positiveInt)
    .option('--max-fire-rate <x>', 'zero-shot: ignore latents firing on more than this share of images (default 0.5; 1 keeps all)', num)
    .option('--zs-fire-rates <train|eval>', "zero-shot: firing rates from the training images (default) or the evaluated images (the reference's choice)")
    .option('--force', 'retrain runs in --out whose saved configuration differs (otherwise an error)')
    .option('--threads <n>', 'native threads', int)
    .option('--quiet', 'no progress lines')
    .addHelpText('after', `\nExamples:\n  $ cmsae toy --out data/toy && cmsae fit --dataset data/toy/dataset.json --m 512 --k 8 --epochs 30 --lr 2e-3 --batch-size 256 --out runs/toy\n  $ cmsae fit --image train_img.npy --text train_txt.npy --eval-image test_img.npy --eval-text test_txt.npy \\\n      --eval-labels captions_test.json --seeds 0,1,2 --out runs/clip\n  $ cmsae fit --dataset data/toy/dataset.json --m 512 --k 4,8,16 --activation topk,batchtopk --epochs 10 --out runs/toy-sweep   # Tables 2 and 4\n  $ cmsae fit ... --heterogeneity-protocol d1    # Figure 2 from App. D.1's own run (K 8, 30 epochs)\n`)
    .action(async (f: FitFlags) => {
      if (f.threads !== undefined) setThreads(f.threads);
      const methods = (f.methods ?? [...METHODS]) as Method[];
      for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new SaeError('ERR_ARG', `unknown method '${m}': choose from ${METHODS.join(', ')}`);
      if (f.zsFireRates && !['train', 'eval'].includes(f.zsFireRates)) throw new SaeError('ERR_ARG', `--zs-fire-rates must be 'train' or 'eval'`);
      const inputs = await buildInputs(f);
      const interrupt = interruptOnSigint();
      const say = (s: string) => !f.quiet && process.stderr.write(s + '\n');
      let lastStep = 0;
      const onEvent = (e: FitEvent) => {
        const where = (x: { method: string; seed: number; setting: string }) => `${x.method} seed ${x.seed}${x.setting ? ` [${x.setting}]` : ''}`;
        if (e.type === 'train') say(`train ${where(e)}: ${e.status}${e.seconds ? ` (${e.seconds.toFixed(1)} s)` : ''}`);
        else if (e.type === 'progress') {
          const p = e.progress;
          if (p.step === 1) lastStep = 0;
          if (p.step - lastStep >= 500 || p.step === p.totalSteps) {
            lastStep = p.step;
            say(`  step ${p.step}/${p.totalSteps} fvu ${p.fvu.toFixed(4)} L0 ${p.l0.toFixed(1)} ${Math.round(p.samplesPerSec)} rows/s`);
          }
        } else if (e.type === 'eval') say(`eval ${where(e)} ${e.evaluation}: ${e.status}${e.seconds !== undefined ? ` (${e.seconds.toFixed(2)} s)` : ''}${e.reason ? ` (${e.reason})` : ''}`);
      };
      try {
        const r = await fit({
          out: f.out,
          inputs,
          methods,
          seeds: f.seeds,
          config: buildConfig(f),
          sweep: { ...(f.k ? { k: f.k } : {}), ...(f.activation ? { activation: f.activation as Activation[] } : {}) },
          heterogeneity: {
            ...(f.heterogeneityProtocol !== undefined ? { protocol: f.heterogeneityProtocol as 'table1' | 'd1' } : {}),
            ...(f.heterogeneityK !== undefined ? { k: f.heterogeneityK } : {}),
            ...(f.heterogeneityEpochs !== undefined ? { epochs: f.heterogeneityEpochs } : {}),
          },
          evaluations: f.evaluations as Evaluation[] | undefined,
          steering: {
            ...(f.steeringAlphas ? { alphas: f.steeringAlphas } : {}),
            ...(f.steeringSources !== undefined ? { sources: f.steeringSources } : {}),
            ...(f.steeringDeadSlots !== undefined ? { deadSlots: f.steeringDeadSlots as 'flag' | 'skip' } : {}),
          },
          zeroShot: { ...(f.maxFireRate !== undefined ? { maxFireRate: f.maxFireRate } : {}), ...(f.zsFireRates ? { fireRates: f.zsFireRates as 'train' | 'eval' } : {}) },
          force: f.force,
          signal: interrupt.signal,
          onEvent,
        });
        process.stdout.write(tablesMarkdown(r.methods, r.settings));
        if (r.heterogeneity) process.stdout.write(`\nFigure 2 from ${r.heterogeneity.description}.\n`);
        process.stdout.write(`\nwrote ${r.files.map((x) => `${r.out}/${x}`).filter((x) => !x.endsWith('.png')).join(', ')} (${r.timings.totalSeconds.toFixed(1)} s)\n`);
      } catch (e) {
        if (e instanceof SaeError && e.code === 'ERR_ABORTED') throw new SaeError('ERR_ABORTED', `${e.message}: run the same cmsae fit command again to continue`);
        throw e;
      } finally {
        interrupt.release();
      }
    });
}
