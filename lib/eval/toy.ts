/**
 * A toy VLM-like dataset, so that `cmsae fit` and every evaluation run end to end without a vision-language
 * model. Built on the synthetic generator's dictionaries (bounded interference across all blocks): named
 * "object" concepts shared by both modalities, whose image direction phi_c and text direction psi_c meet at
 * cos = alpha (cross-modal feature heterogeneity), image-only and text-only attribute concepts, and one
 * modality-offset direction per modality (CLIP's modality gap).
 *
 * A scene holds 1-3 objects with magnitudes 0.5 + Exp(1) and rare attributes. Its image embedding is
 * sum a_c phi_c + attributes + gap * g_I + noise; each caption mentions every object with probability 0.85
 * (at least one), with magnitude a_c * U(0.7, 1.3), plus text attributes + gap * g_T + noise. Concept labels,
 * caption strings ("a photo of a dog and a car"), class prompts (one per template: psi_c + template offset) and
 * an external embedding space (every concept a random direction in d_ext dimensions: a stand-in for the
 * external encoder of the monosemanticity score) come with it.
 */
import { constants as bufferConstants } from 'node:buffer';
import os from 'node:os';
import path from 'node:path';

import { rng32 } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { checkReplaceable, writeDirectoryAtomic } from '../io/atomic.js';
import { ensureDirectory } from '../io/files.js';
import { npyBytes } from '../io/embeddings.js';
import { native } from '../native/load.js';
import type { Matrix } from '../types.js';

export const TOY_OBJECTS = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
];

export interface ToyOptions {
  d?: number;
  objects?: number;
  imageAttributes?: number;
  textAttributes?: number;
  /** cos(phi_c, psi_c) of every object concept. Default 0.5. */
  alpha?: number;
  /** Norm of the per-modality offset. Default 0.3. */
  gap?: number;
  noise?: number;
  trainPairs?: number;
  evalImages?: number;
  captionsPerImage?: number;
  templates?: number;
  zeroShotImages?: number;
  externalDim?: number;
  seed?: number;
}

export const TOY_DEFAULTS: Required<ToyOptions> = {
  d: 128,
  objects: 40,
  imageAttributes: 24,
  textAttributes: 24,
  alpha: 0.5,
  gap: 0.3,
  noise: 0.03,
  trainPairs: 20_000,
  evalImages: 1000,
  captionsPerImage: 3,
  templates: 4,
  zeroShotImages: 1000,
  externalDim: 64,
  seed: 7,
};

export interface ToyDataset {
  options: Required<ToyOptions>;
  concepts: string[];
  train: { image: Matrix; text: Matrix };
  eval: { image: Matrix; text: Matrix; imageOfText: Int32Array; imageConcepts: number[][]; textConcepts: number[][]; captions: string[]; externalImage: Matrix; externalText: Matrix };
  zeroShot: { prompts: Matrix; templates: number; images: Matrix; labels: Int32Array };
  /** Ground truth: [objects, d] image and text directions. */
  phi: Matrix;
  psi: Matrix;
}

/** The dataset manifest `cmsae fit --dataset` reads (paths relative to the manifest). */
export interface DatasetManifest {
  train: { image: string; text: string };
  eval?: { image: string; text: string; labels?: string[] };
  zeroShot?: { prompts: string; templates: number; images: string; labels: string };
  monosemanticity?: { image?: string; text?: string; labels?: string[]; externalImage: string; externalText: string };
}

function gaussian(next: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(next(), 1e-12), v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** The largest array (in bytes) this Node can allocate: every .npy file is one. */
const MAX_ARRAY_BYTES = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32);

/**
 * Refuses, before allocating anything, a toy dataset that cannot be built: a file larger than the largest
 * array Node can allocate (ERR_RANGE), or more than half the machine's memory in all (ERR_NOMEM; each matrix
 * is held twice while its .npy bytes are written). Both name how many training pairs would fit.
 */
function checkToySize(o: Required<ToyOptions>): void {
  const { d, externalDim: D } = o;
  const nT = o.evalImages * o.captionsPerImage;
  const others = (o.evalImages + nT) * (d + D) + o.objects * o.templates * d + o.zeroShotImages * d + (o.objects * 2 + o.imageAttributes + o.textAttributes + 2) * (d + D);
  const pairsByArray = Math.floor((MAX_ARRAY_BYTES - 4096) / (4 * d));
  const arrays: [string, number, string][] = [
    ['train_image.npy', o.trainPairs * d, `at most ${pairsByArray} train pairs fit at d = ${d}`],
    ['eval_text.npy', nT * d, `at most ${Math.floor((MAX_ARRAY_BYTES - 4096) / (4 * d * o.captionsPerImage))} eval images fit at ${o.captionsPerImage} captions each`],
    ['zeroshot_images.npy', o.zeroShotImages * d, `at most ${pairsByArray} zero-shot images fit`],
  ];
  for (const [file, values, fits] of arrays)
    if (4 * values + 4096 > MAX_ARRAY_BYTES)
      throw new SaeError('ERR_RANGE', `toy dataset: ${file} would hold ${values} float32 values (${((4 * values) / 2 ** 30).toFixed(1)} GiB), more than the largest array Node can allocate (${(MAX_ARRAY_BYTES / 2 ** 30).toFixed(1)} GiB): ${fits}`);
  const budget = os.totalmem() / 2;
  const bytes = 2 * 4 * (2 * o.trainPairs * d + others) + 200 * nT;
  if (bytes > budget) {
    const fit = Math.max(0, Math.floor((budget - 2 * 4 * others - 200 * nT) / (2 * 4 * 2 * d)));
    throw new SaeError('ERR_NOMEM', `toy dataset: about ${(bytes / 2 ** 30).toFixed(1)} GiB to build and write, more than half of this machine's ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB: at most ${fit} train pairs fit with the other options as given`);
  }
}

export function generateToy(o: ToyOptions = {}): ToyDataset {
  const opt = { ...TOY_DEFAULTS, ...o };
  const { d, objects: nO, imageAttributes: nIA, textAttributes: nTA } = opt;
  for (const [k, v] of Object.entries(opt)) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SaeError('ERR_ARG', `toy option ${k} must be a finite number >= 0, got ${String(v)}`);
  for (const k of ['d', 'objects', 'imageAttributes', 'textAttributes', 'trainPairs', 'evalImages', 'captionsPerImage', 'templates', 'zeroShotImages', 'externalDim', 'seed'] as const)
    if (!Number.isInteger(opt[k]) || (opt[k] < 1 && k !== 'imageAttributes' && k !== 'textAttributes' && k !== 'seed'))
      throw new SaeError('ERR_ARG', `toy option ${k} must be an integer${k === 'imageAttributes' || k === 'textAttributes' || k === 'seed' ? ' >= 0' : ' >= 1'}, got ${opt[k]}`);
  if (!(nO >= 2 && nO <= TOY_OBJECTS.length * 10)) throw new SaeError('ERR_ARG', `objects must be in [2, ${TOY_OBJECTS.length * 10}]`);
  if (opt.alpha > 1) throw new SaeError('ERR_ARG', `alpha must be in [0, 1], got ${opt.alpha}`);
  if (opt.captionsPerImage < 1 || opt.templates < 1 || opt.trainPairs < 1 || opt.evalImages < 2) throw new SaeError('ERR_ARG', 'captionsPerImage, templates and trainPairs must be >= 1 and evalImages >= 2');
  checkToySize(opt);
  const names = Array.from({ length: nO }, (_, i) => (i < TOY_OBJECTS.length ? TOY_OBJECTS[i] : `object ${i}`));
  // One more atom per modality-only block: the modality offset.
  const dict = native().synthPairedDictionary(d, nIA + 1, nO, nTA + 1, opt.alpha, 0.3, opt.seed * 16 + 1, 2000);
  const phi = dict.phiShared, psi = dict.psiShared, imgA = dict.phiImage, txtA = dict.psiText;
  const next = rng32(opt.seed * 16 + 2);
  const gauss = gaussian(next);
  const expo = () => -Math.log(Math.max(1 - next(), 1e-12));
  const nConcepts = nO + nIA + nTA;
  const D = opt.externalDim;
  const ext = new Float32Array(nConcepts * D);
  for (let i = 0; i < ext.length; i++) ext[i] = gauss();
  for (let c = 0; c < nConcepts; c++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += ext[c * D + j] ** 2;
    for (let j = 0; j < D; j++) ext[c * D + j] /= Math.sqrt(s);
  }
  const addAtom = (out: Float32Array, o: number, atoms: Float32Array, a: number, w: number) => {
    for (let j = 0; j < d; j++) out[o + j] += w * atoms[a * d + j];
  };
  const addExt = (out: Float32Array, o: number, concept: number, w: number) => {
    for (let j = 0; j < D; j++) out[o + j] += w * ext[concept * D + j];
  };
  const noise = (out: Float32Array, o: number, n: number, s: number) => {
    for (let j = 0; j < n; j++) out[o + j] += s * gauss();
  };
  type Scene = { objects: number[]; mags: number[] };
  const scene = (): Scene => {
    const count = 1 + (next() < 0.5 ? 1 : 0) + (next() < 0.2 ? 1 : 0);
    const objects: number[] = [];
    while (objects.length < count) {
      const c = Math.floor(next() * nO);
      if (!objects.includes(c)) objects.push(c);
    }
    return { objects, mags: objects.map(() => 0.5 + expo()) };
  };
  const attrs = (n: number, out: Float32Array, o: number, atoms: Float32Array, extOut: Float32Array | null, eo: number, conceptBase: number) => {
    for (let a = 0; a < n; a++)
      if (next() < 0.04) {
        const w = 0.7 * expo();
        addAtom(out, o, atoms, a, w);
        if (extOut) addExt(extOut, eo, conceptBase + a, w);
      }
  };
  const image = (s: Scene, out: Float32Array, o: number, extOut: Float32Array | null, eo: number) => {
    s.objects.forEach((c, i) => {
      addAtom(out, o, phi, c, s.mags[i]);
      if (extOut) addExt(extOut, eo, c, s.mags[i]);
    });
    attrs(nIA, out, o, imgA, extOut, eo, nO);
    addAtom(out, o, imgA, nIA, opt.gap);
    noise(out, o, d, opt.noise);
    if (extOut) noise(extOut, eo, D, 0.05);
  };
  const caption = (s: Scene, out: Float32Array, o: number, extOut: Float32Array | null, eo: number): number[] => {
    let said = s.objects.map((_, i) => i).filter(() => next() < 0.85);
    if (said.length === 0) said = [s.mags.indexOf(Math.max(...s.mags))];
    for (const i of said) {
      const w = s.mags[i] * (0.7 + 0.6 * next());
      addAtom(out, o, psi, s.objects[i], w);
      if (extOut) addExt(extOut, eo, s.objects[i], w);
    }
    attrs(nTA, out, o, txtA, extOut, eo, nO + nIA);
    addAtom(out, o, txtA, nTA, opt.gap);
    noise(out, o, d, opt.noise);
    if (extOut) noise(extOut, eo, D, 0.05);
    return said.map((i) => s.objects[i]);
  };
  const mat = (rows: number, cols = d): Matrix => ({ rows, cols, data: new Float32Array(rows * cols) });

  const trI = mat(opt.trainPairs), trT = mat(opt.trainPairs);
  for (let r = 0; r < opt.trainPairs; r++) {
    const s = scene();
    image(s, trI.data, r * d, null, 0);
    caption(s, trT.data, r * d, null, 0);
  }
  const nI = opt.evalImages, nT = nI * opt.captionsPerImage;
  const evI = mat(nI), evT = mat(nT), exI = mat(nI, D), exT = mat(nT, D);
  const imageOfText = new Int32Array(nT);
  const imageConcepts: number[][] = [], textConcepts: number[][] = [], captions: string[] = [];
  const phrase = (cs: number[]) => {
    const ns = cs.map((c) => `a ${names[c]}`);
    return `a photo of ${ns.length > 1 ? ns.slice(0, -1).join(', ') + ' and ' + ns[ns.length - 1] : ns[0]}`;
  };
  for (let i = 0; i < nI; i++) {
    const s = scene();
    image(s, evI.data, i * d, exI.data, i * D);
    imageConcepts.push([...s.objects].sort((a, b) => a - b));
    for (let c = 0; c < opt.captionsPerImage; c++) {
      const t = i * opt.captionsPerImage + c;
      const said = caption(s, evT.data, t * d, exT.data, t * D);
      imageOfText[t] = i;
      textConcepts.push([...said].sort((a, b) => a - b));
      captions.push(phrase(said));
    }
  }
  // Class prompts: psi_c + a template offset (shared by all classes) + the text offset + noise.
  const T = opt.templates;
  const tmpl = new Float32Array(T * d);
  for (let i = 0; i < tmpl.length; i++) tmpl[i] = gauss() * (0.25 / Math.sqrt(d));
  const prompts = mat(nO * T);
  for (let c = 0; c < nO; c++)
    for (let t = 0; t < T; t++) {
      const o = (c * T + t) * d;
      addAtom(prompts.data, o, psi, c, 1);
      for (let j = 0; j < d; j++) prompts.data[o + j] += tmpl[t * d + j];
      addAtom(prompts.data, o, txtA, nTA, opt.gap);
      noise(prompts.data, o, d, opt.noise);
    }
  // Zero-shot images: one labeled object (magnitude 1 + 0.5 Exp(1)) among up to two weaker distractors
  // (0.5-1.0, each with probability 0.6): clutter that makes the task non-trivial.
  const zs = mat(opt.zeroShotImages);
  const labels = new Int32Array(opt.zeroShotImages);
  for (let i = 0; i < zs.rows; i++) {
    const c = Math.floor(next() * nO);
    const s: Scene = { objects: [c], mags: [1 + 0.5 * expo()] };
    for (let t = 0; t < 2; t++)
      if (next() < 0.6) {
        const e = Math.floor(next() * nO);
        if (s.objects.includes(e)) continue;
        s.objects.push(e);
        s.mags.push(0.5 + 0.5 * next());
      }
    image(s, zs.data, i * d, null, 0);
    labels[i] = c;
  }
  return {
    options: opt,
    concepts: names,
    train: { image: trI, text: trT },
    eval: { image: evI, text: evT, imageOfText, imageConcepts, textConcepts, captions, externalImage: exI, externalText: exT },
    zeroShot: { prompts, templates: T, images: zs, labels },
    phi: { rows: nO, cols: d, data: phi },
    psi: { rows: nO, cols: d, data: psi },
  };
}

/** The files of a toy dataset directory. */
export const TOY_FILE_NAMES = [
  'train_image.npy', 'train_text.npy', 'eval_image.npy', 'eval_text.npy', 'eval_image_external.npy', 'eval_text_external.npy', 'eval_labels.json',
  'zeroshot_prompts.npy', 'zeroshot_images.npy', 'zeroshot_labels.json', 'ground_truth.npy', 'dataset.json',
];

/** ERR_IO unless `dir` can take a toy dataset (absent, empty, or an earlier toy dataset): checked before generating one. */
export async function checkToyOutput(dir: string): Promise<void> {
  await checkReplaceable(dir, TOY_FILE_NAMES, 'toy-dataset');
}

/** Writes the dataset as .npy + JSON files and a dataset.json manifest (atomically, as one directory). */
export async function writeToy(dir: string, t: ToyDataset): Promise<string> {
  const files: Record<string, Uint8Array | string> = {
    'train_image.npy': npyBytes(t.train.image),
    'train_text.npy': npyBytes(t.train.text),
    'eval_image.npy': npyBytes(t.eval.image),
    'eval_text.npy': npyBytes(t.eval.text),
    'eval_image_external.npy': npyBytes(t.eval.externalImage),
    'eval_text_external.npy': npyBytes(t.eval.externalText),
    'eval_labels.json': JSON.stringify({ concepts: t.concepts, imageOfText: Array.from(t.eval.imageOfText), image: t.eval.imageConcepts, text: t.eval.textConcepts, captions: t.eval.captions }) + '\n',
    'zeroshot_prompts.npy': npyBytes(t.zeroShot.prompts),
    'zeroshot_images.npy': npyBytes(t.zeroShot.images),
    'zeroshot_labels.json': JSON.stringify({ classes: t.concepts, templates: t.zeroShot.templates, labels: Array.from(t.zeroShot.labels) }) + '\n',
    'ground_truth.npy': npyBytes({ rows: 2 * t.phi.rows, cols: t.phi.cols, data: Float32Array.from([...t.phi.data, ...t.psi.data]) }),
  };
  const manifest: DatasetManifest & { description: string; options: Required<ToyOptions> } = {
    description: 'toy VLM-like dataset generated by `cmsae toy` (lib/eval/toy.ts); ground_truth.npy holds the object directions phi (first half) and psi (second half)',
    options: t.options,
    train: { image: 'train_image.npy', text: 'train_text.npy' },
    eval: { image: 'eval_image.npy', text: 'eval_text.npy', labels: ['eval_labels.json'] },
    zeroShot: { prompts: 'zeroshot_prompts.npy', templates: t.zeroShot.templates, images: 'zeroshot_images.npy', labels: 'zeroshot_labels.json' },
    monosemanticity: { externalImage: 'eval_image_external.npy', externalText: 'eval_text_external.npy' },
  };
  files['dataset.json'] = JSON.stringify(manifest, null, 2) + '\n';
  await ensureDirectory(path.dirname(path.resolve(dir)), `parent directory of ${dir}`);
  await writeDirectoryAtomic(dir, files);
  return path.join(dir, 'dataset.json');
}
