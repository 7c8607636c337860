/** Evaluation inputs from files: the dataset manifest, zero-shot labels, and every set loaded and checked up front. */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { SaeError } from '../errors.js';
import type { EmbeddingSpec } from '../io/embeddings.js';
import type { Matrix } from '../types.js';
import { checkLabels, imageConcepts, imageOfText, loadEvalLabels, textConcepts, type EvalLabels } from './labels.js';
import { readMatrix } from './model.js';

const spec = z.union([z.string().min(1), z.object({ path: z.string().min(1), tensor: z.string().optional(), shape: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional() }).strict()]);

export const manifestSchema = z
  .object({
    description: z.string().optional(),
    options: z.unknown().optional(),
    train: z.object({ image: spec, text: spec }).strict(),
    eval: z.object({ image: spec, text: spec, labels: z.array(z.string()).optional() }).strict().optional(),
    zeroShot: z.object({ prompts: spec, templates: z.number().int().positive().optional(), images: spec, labels: z.string() }).strict().optional(),
    monosemanticity: z.object({ image: spec.optional(), text: spec.optional(), externalImage: spec, externalText: spec }).strict().optional(),
  })
  .strict();

export type FitInputs = z.output<typeof manifestSchema>;
type Spec = z.output<typeof spec>;

/** Reads a dataset manifest (dataset.json); relative paths are resolved against its folder. */
export async function readManifest(file: string): Promise<FitInputs> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new SaeError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ERR_IO' : 'ERR_FORMAT', `cannot read dataset manifest ${file}: ${(e as Error).message}`);
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) throw new SaeError('ERR_FORMAT', `${file}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (see docs/evaluation.md)`);
  const base = path.dirname(path.resolve(file));
  function abs(s: Spec): Spec;
  function abs(s: Spec | undefined): Spec | undefined;
  function abs(s: Spec | undefined): Spec | undefined {
    if (s === undefined) return s;
    if (typeof s === 'string') return path.resolve(base, s);
    return { ...s, path: path.resolve(base, s.path) };
  }
  const m = r.data;
  return {
    ...m,
    train: { image: abs(m.train.image), text: abs(m.train.text) },
    eval: m.eval && { image: abs(m.eval.image), text: abs(m.eval.text), labels: m.eval.labels?.map((l) => path.resolve(base, l)) },
    zeroShot: m.zeroShot && { ...m.zeroShot, prompts: abs(m.zeroShot.prompts), images: abs(m.zeroShot.images), labels: path.resolve(base, m.zeroShot.labels) },
    monosemanticity: m.monosemanticity && {
      image: abs(m.monosemanticity.image),
      text: abs(m.monosemanticity.text),
      externalImage: abs(m.monosemanticity.externalImage),
      externalText: abs(m.monosemanticity.externalText),
    },
  };
}

export function specPath(s: Spec | EmbeddingSpec): string {
  return typeof s === 'string' ? s : s.path;
}

/** Zero-shot labels: a JSON array of class indices, or { classes?, templates?, labels }. */
export async function loadZeroShotLabels(file: string): Promise<{ labels: Int32Array; classes: string[] | null; templates: number | null }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new SaeError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ERR_IO' : 'ERR_FORMAT', `cannot read zero-shot labels ${file}: ${(e as Error).message}`);
  }
  const obj = z.union([z.array(z.number().int().min(0)), z.object({ classes: z.array(z.string()).optional(), templates: z.number().int().positive().optional(), labels: z.array(z.number().int().min(0)) }).strict()]);
  const r = obj.safeParse(raw);
  if (!r.success) throw new SaeError('ERR_FORMAT', `${file}: expected an array of class indices or {classes, templates, labels} (${r.error.issues[0].message})`);
  const v = r.data;
  if (Array.isArray(v)) return { labels: Int32Array.from(v), classes: null, templates: null };
  return { labels: Int32Array.from(v.labels), classes: v.classes ?? null, templates: v.templates ?? null };
}

/**
 * Checks a zero-shot set (templates per class agreeing between options and labels file, prompt rows a multiple
 * of it, the class count, one label per image, labels in range) and returns the templates per class.
 */
export function checkZeroShot(prompts: Matrix, images: Matrix, l: { labels: Int32Array; classes: string[] | null; templates: number | null }, templatesOpt: number | undefined, promptsFile: string, labelsFile: string): number {
  if (templatesOpt !== undefined && !(Number.isInteger(templatesOpt) && templatesOpt >= 1)) throw new SaeError('ERR_ARG', `templates must be an integer >= 1, got ${templatesOpt}`);
  if (l.templates !== null && templatesOpt !== undefined && l.templates !== templatesOpt)
    throw new SaeError('ERR_ARG', `${labelsFile} says ${l.templates} templates per class, the options say ${templatesOpt}`);
  const templates = templatesOpt ?? l.templates ?? 1;
  if (prompts.rows % templates !== 0) throw new SaeError('ERR_SHAPE', `${promptsFile} has ${prompts.rows} rows, not a multiple of ${templates} templates per class`);
  const C = prompts.rows / templates;
  if (l.classes && l.classes.length !== C) throw new SaeError('ERR_SHAPE', `${labelsFile} names ${l.classes.length} classes but the prompts hold ${C} (${prompts.rows} rows / ${templates} templates)`);
  if (l.labels.length !== images.rows) throw new SaeError('ERR_SHAPE', `${labelsFile} has ${l.labels.length} labels for ${images.rows} images`);
  for (let i = 0; i < l.labels.length; i++) if (l.labels[i] >= C) throw new SaeError('ERR_RANGE', `${labelsFile}: image ${i} has class ${l.labels[i]}, but there are ${C} classes`);
  return templates;
}

export interface LoadedEval {
  retrieval: { image: Matrix; text: Matrix; labels: EvalLabels; imageOfText: Int32Array; imageConcepts: Int32Array[] | null; textConcepts: Int32Array[] | null } | null;
  zeroShot: { prompts: Matrix; templates: number; images: Matrix; labels: Int32Array; classes: string[] | null } | null;
  monosemanticity: { image: Matrix; text: Matrix; externalImage: Matrix; externalText: Matrix } | null;
}

/** Loads every evaluation set and checks shapes and labels before any training starts. */
export async function loadEvalInputs(inputs: FitInputs, dims: { image: number; text: number }): Promise<LoadedEval> {
  const dimCheck = (m: Matrix, want: number, what: string, file: Spec) => {
    if (m.cols !== want) throw new SaeError('ERR_SHAPE', `${specPath(file)} (${what}) has ${m.cols} columns, but the training embeddings have ${want}: use embeddings from the same model`);
  };
  const out: LoadedEval = { retrieval: null, zeroShot: null, monosemanticity: null };
  if (inputs.eval) {
    const image = readMatrix(inputs.eval.image), text = readMatrix(inputs.eval.text);
    dimCheck(image, dims.image, 'evaluation images', inputs.eval.image);
    dimCheck(text, dims.text, 'evaluation captions', inputs.eval.text);
    const labels = await loadEvalLabels(inputs.eval.labels ?? []);
    checkLabels(labels, image.rows, text.rows, (inputs.eval.labels ?? []).join(', ') || 'evaluation set');
    out.retrieval = { image, text, labels, imageOfText: imageOfText(labels, text.rows), imageConcepts: imageConcepts(labels, image.rows), textConcepts: textConcepts(labels) };
  }
  if (inputs.zeroShot) {
    const z0 = inputs.zeroShot;
    const prompts = readMatrix(z0.prompts), images = readMatrix(z0.images);
    dimCheck(prompts, dims.text, 'class prompts', z0.prompts);
    dimCheck(images, dims.image, 'zero-shot images', z0.images);
    const l = await loadZeroShotLabels(z0.labels);
    const templates = checkZeroShot(prompts, images, l, z0.templates, specPath(z0.prompts), z0.labels);
    out.zeroShot = { prompts, templates, images, labels: l.labels, classes: l.classes };
  }
  if (inputs.monosemanticity) {
    const ms = inputs.monosemanticity;
    const image = ms.image ? readMatrix(ms.image) : out.retrieval?.image;
    const text = ms.text ? readMatrix(ms.text) : out.retrieval?.text;
    if (!image || !text) throw new SaeError('ERR_ARG', 'monosemanticity needs its own image/text files or an evaluation set to score');
    if (ms.image) dimCheck(image, dims.image, 'monosemanticity images', ms.image);
    if (ms.text) dimCheck(text, dims.text, 'monosemanticity captions', ms.text);
    const externalImage = readMatrix(ms.externalImage), externalText = readMatrix(ms.externalText);
    if (externalImage.rows !== image.rows) throw new SaeError('ERR_SHAPE', `${specPath(ms.externalImage)} has ${externalImage.rows} rows for ${image.rows} images: it must embed the same images in the same order`);
    if (externalText.rows !== text.rows) throw new SaeError('ERR_SHAPE', `${specPath(ms.externalText)} has ${externalText.rows} rows for ${text.rows} captions: it must embed the same captions in the same order`);
    out.monosemanticity = { image, text, externalImage, externalText };
  }
  return out;
}
