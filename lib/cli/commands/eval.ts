/** `cmsae eval <evaluation>`: one evaluation of one trained model, printed as JSON (or written with --out). */
import { Command } from 'commander';
import path from 'node:path';

import { Normalizer, type Normalization } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { num, numbers, positiveInt as int, strings } from '../parse.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { toJson } from '../../fit/cache.js';
import { heterogeneityOfRun } from '../../eval/heterogeneity.js';
import { checkLabels, imageConcepts, imageOfText, loadEvalLabels, textConcepts } from '../../eval/labels.js';
import { checkZeroShot, loadZeroShotLabels } from '../../eval/inputs.js';
import { loadEvalModel, readMatrix, type EvalModel } from '../../eval/model.js';
import { evaluateMonosemanticity } from '../../eval/monosemanticity.js';
import { evaluateReconstruction } from '../../eval/reconstruction.js';
import { evaluateRetrieval } from '../../eval/retrieval.js';
import { evaluateSteering, steeringCsv } from '../../eval/steering.js';
import { evaluateZeroShot } from '../../eval/zeroshot.js';
import { readRunConfig } from '../../run/layout.js';

interface Common {
  model: string;
  view?: string;
  normalization?: string;
  out?: string;
}

async function withModel<T>(f: Common, body: (m: EvalModel) => Promise<T>): Promise<T> {
  if (f.view !== undefined && f.view !== 'separate') throw new SaeError('ERR_ARG', `--view must be 'separate', got '${f.view}'`);
  const model = await loadEvalModel(f.model, { view: f.view as 'separate' | undefined, normalization: f.normalization ? new Normalizer(f.normalization as Normalization) : undefined });
  try {
    return await body(model);
  } finally {
    model.dispose();
  }
}

async function emit(f: { out?: string }, v: unknown, extra?: Record<string, string>): Promise<void> {
  const text = toJson(v) + '\n';
  if (!f.out) {
    process.stdout.write(text);
    return;
  }
  await writeFileAtomic(f.out, text);
  for (const [suffix, body] of Object.entries(extra ?? {})) await writeFileAtomic(f.out.replace(/\.json$/i, '') + suffix, body);
  process.stdout.write(`wrote ${f.out}\n`);
}

function common(c: Command): Command {
  return c
    .requiredOption('--model <dir>', 'a training run (config.json + final/), an aligned pair or an SAE checkpoint')
    .option('--view <separate>', "evaluate a posthoc run's SAEs without the permutation")
    .option('--normalization <kind>', 'override the run\'s input normalization (default: the run\'s, or what the checkpoint\'s cfg.json records, else l2)')
    .option('--out <file.json>', 'write the result here instead of printing it');
}

export function registerEval(program: Command): void {
  const ev = program.command('eval').description('run one evaluation on one model (see docs/evaluation.md)');

  common(ev.command('reconstruction').description('MSE and FVU per modality on held-out rows'))
    .requiredOption('--image <file>', 'image embeddings')
    .requiredOption('--text <file>', 'text embeddings')
    .action(async (f: Common & { image: string; text: string }) => emit(f, await withModel(f, (m) => evaluateReconstruction(m, readMatrix(f.image), readMatrix(f.text)))));

  common(ev.command('retrieval').description('image->text and text->image Recall@1/5/10 on latent codes'))
    .requiredOption('--image <file>', 'image embeddings')
    .requiredOption('--text <file>', 'caption embeddings')
    .option('--labels <files>', 'label files giving imageOfText (ours or COCO captions); default: row r pairs with row r', strings)
    .action(async (f: Common & { image: string; text: string; labels?: string[] }) => {
      const image = readMatrix(f.image), text = readMatrix(f.text);
      const labels = await loadEvalLabels(f.labels ?? []);
      checkLabels(labels, image.rows, text.rows, (f.labels ?? []).join(', ') || 'retrieval');
      await emit(f, await withModel(f, (m) => evaluateRetrieval(m, image, text, imageOfText(labels, text.rows))));
    });

  common(ev.command('zeroshot').description('zero-shot classification with class-prompt prototypes in latent space'))
    .requiredOption('--prompts <file>', 'class-prompt embeddings, classes x templates rows (class-major)')
    .option('--templates <n>', 'templates per class (default: from the labels file, else 1)', int)
    .requiredOption('--images <file>', 'labeled image embeddings')
    .requiredOption('--labels <file>', 'JSON: class index per image, or {classes, templates, labels}')
    .option('--max-fire-rate <x>', 'ignore latents firing on more than this share of images (default 0.5)', num)
    .option('--fire-rate-images <file>', 'images whose firing rates decide the filter (e.g. training images; default the evaluated images)')
    .action(async (f: Common & { prompts: string; templates?: number; images: string; labels: string; maxFireRate?: number; fireRateImages?: string }) => {
      const l = await loadZeroShotLabels(f.labels);
      const prompts = readMatrix(f.prompts), images = readMatrix(f.images);
      const templates = checkZeroShot(prompts, images, l, f.templates, f.prompts, f.labels);
      await emit(f, await withModel(f, (m) => evaluateZeroShot(m, prompts, templates, images, l.labels, { maxFireRate: f.maxFireRate, fireRateImages: f.fireRateImages ? readMatrix(f.fireRateImages) : undefined })));
    });

  common(ev.command('steering').description('concept steering: mAP, MRR, NDCG@10, P@K, R@K of steered source images (writes a per-concept CSV with --out)'))
    .requiredOption('--image <file>', 'image embeddings')
    .requiredOption('--text <file>', 'caption embeddings')
    .requiredOption('--labels <files>', 'label files with concepts (ours, COCO instances, COCO captions)', strings)
    .option('--alphas <list>', 'steering strengths (default 0,0.1,0.25,0.5,1,2)', numbers)
    .option('--sources <n>', 'source images per concept (default 100)', int)
    .option('--dead-slots <flag|skip>', "concepts whose image or text latent is dead: 'flag' (default; scored and listed) or 'skip'")
    .action(async (f: Common & { image: string; text: string; labels: string[]; alphas?: number[]; sources?: number; deadSlots?: string }) => {
      const image = readMatrix(f.image), text = readMatrix(f.text);
      const labels = await loadEvalLabels(f.labels);
      checkLabels(labels, image.rows, text.rows, f.labels.join(', '));
      const ic = imageConcepts(labels, image.rows), tc = textConcepts(labels);
      if (!ic || !tc) throw new SaeError('ERR_ARG', `${f.labels.join(', ')}: steering needs concept labels per caption ("text" or "captions" with "concepts") and per image`);
      const r = await withModel(f, (m) => evaluateSteering(m, image, text, labels.concepts, ic, tc, { alphas: f.alphas, sources: f.sources, deadSlots: f.deadSlots as 'flag' | 'skip' | undefined }));
      await emit(f, { ...r, perConcept: f.out ? undefined : r.perConcept }, { '.csv': steeringCsv(r) });
    });

  common(ev.command('monosemanticity').description('MonoSemanticity score per latent and modality with an external embedding space'))
    .requiredOption('--image <file>', 'image embeddings scored')
    .requiredOption('--text <file>', 'caption embeddings scored')
    .requiredOption('--external-image <file>', 'external-encoder embeddings of the same images')
    .requiredOption('--external-text <file>', 'external-encoder embeddings of the same captions')
    .option('--min-fires <n>', 'latents firing fewer times are not scored (default 2)', int)
    .action(async (f: Common & { image: string; text: string; externalImage: string; externalText: string; minFires?: number }) => {
      const r = await withModel(f, (m) =>
        evaluateMonosemanticity(m, { image: readMatrix(f.image), text: readMatrix(f.text) }, { image: readMatrix(f.externalImage), text: readMatrix(f.externalText) }, { minFires: f.minFires }),
      );
      const csv = ['latent,fires_image,fires_text,ms_image,ms_text', ...Array.from(r.image.scores, (s, j) => `${j},${r.image.fires[j]},${r.text.fires[j]},${Number.isNaN(s) ? '' : s},${Number.isNaN(r.text.scores[j]) ? '' : r.text.scores[j]}`)].join('\n') + '\n';
      await emit(f, { ...r, image: { ...r.image, scores: undefined, fires: undefined }, text: { ...r.text, scores: undefined, fires: undefined } }, { '.csv': csv });
    });

  ev.command('heterogeneity')
    .description('Figure 2: decoder cosine distances of image x text latent pairs, grouped by co-activation correlation (a posthoc training run)')
    .requiredOption('--run <dir>', 'a posthoc training run directory')
    .option('--out <file.json>', 'write the result here instead of printing it')
    .action(async (f: { run: string; out?: string }) => {
      const cfg = await readRunConfig(f.run);
      if (cfg.method !== 'posthoc') throw new SaeError('ERR_ARG', `${f.run} is a '${cfg.method}' run; heterogeneity needs the modality-specific SAEs of a posthoc run`);
      await emit(f, await heterogeneityOfRun(path.resolve(f.run), cfg));
    });
}
