/**
 * Reading a corpus to index (ConceptCorpus): image and text embeddings, one caption per text row (.txt lines, .jsonl
 * with a "caption" or "text" field, COCO captions JSON, or our eval_labels.json), which image each caption describes,
 * optional image references (a .txt of paths/URLs, one per image row, or a JSON array) and labels. A toy dataset
 * directory (cmsae toy) works as is: its eval split.
 */
import path from 'node:path';

import { SaeError } from '../errors.js';
import type { EmbeddingSpec } from '../io/embeddings.js';
import { readTextFile } from '../io/files.js';
import { checkLabels, imageConcepts, loadEvalLabels, type EvalLabels } from '../eval/labels.js';
import { readMatrix } from '../eval/model.js';
import { describe } from '../validate.js';
import type { ConceptCorpus } from './types.js';

export interface CorpusSpec {
  /** A toy dataset directory (cmsae toy): eval_image.npy, eval_text.npy, eval_labels.json. Excludes the fields below. */
  toy?: string;
  image?: EmbeddingSpec | string;
  text?: EmbeddingSpec | string;
  /** Captions, one per text row. COCO captions JSON and eval_labels.json also give the image of each caption. */
  captions?: string;
  /** Text row -> image row: a JSON array, eval_labels.json or COCO captions JSON (default: from the captions, else row r with row r). */
  imageOfText?: string;
  /** Per image row a path (relative to an image root) or an http(s) URL: .txt lines or a JSON array of strings. */
  imageRefs?: string;
  /** Label files (eval_labels.json, COCO instances): the labels of each image row. */
  labels?: string[];
}

const SPEC_KEYS = ['toy', 'image', 'text', 'captions', 'imageOfText', 'imageRefs', 'labels'];

/** The files a corpus spec reads (for the index's key), resolved. */
export function corpusFiles(spec: CorpusSpec): string[] {
  const s = resolveSpec(spec);
  const p = (e: EmbeddingSpec | string | undefined) => (e === undefined ? [] : [typeof e === 'string' ? e : e.path]);
  return [...p(s.image), ...p(s.text), ...[s.captions, s.imageOfText, s.imageRefs].filter((f): f is string => !!f), ...(s.labels ?? [])].map((f) => path.resolve(f));
}

/** The spec with a toy directory expanded into its files; ERR_ARG on a malformed spec. */
export function resolveSpec(spec: CorpusSpec): CorpusSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new SaeError('ERR_ARG', `a corpus spec must be an object { toy } or { image, text, captions, ... }, got ${describe(spec)}`);
  for (const k of Object.keys(spec)) if (!SPEC_KEYS.includes(k)) throw new SaeError('ERR_ARG', `unknown corpus option '${k}' (known: ${SPEC_KEYS.join(', ')})`);
  for (const k of ['toy', 'captions', 'imageOfText', 'imageRefs'] as const)
    if (spec[k] !== undefined && (typeof spec[k] !== 'string' || spec[k] === '')) throw new SaeError('ERR_ARG', `corpus option ${k} must be a file path, got ${describe(spec[k])}`);
  if (spec.labels !== undefined && !(Array.isArray(spec.labels) && spec.labels.every((f) => typeof f === 'string' && f !== '')))
    throw new SaeError('ERR_ARG', `corpus option labels must be an array of file paths, got ${describe(spec.labels)}`);
  if (spec.toy !== undefined) {
    const others = Object.keys(spec).filter((k) => k !== 'toy' && spec[k as keyof CorpusSpec] !== undefined);
    if (others.length) throw new SaeError('ERR_ARG', `a toy corpus takes no other files (got ${others.join(', ')}): give either toy or image/text/captions`);
    const f = (n: string) => path.join(spec.toy!, n);
    return { image: f('eval_image.npy'), text: f('eval_text.npy'), captions: f('eval_labels.json'), labels: [f('eval_labels.json')] };
  }
  for (const k of ['image', 'text', 'captions'] as const) if (spec[k] === undefined) throw new SaeError('ERR_ARG', `a corpus needs ${k} (or toy: a cmsae toy directory)`);
  return spec;
}

const isJson = (f: string) => path.extname(f).toLowerCase() === '.json';

function lines(text: string): string[] {
  const ls = text.split(/\r?\n/);
  if (ls.length && ls[ls.length - 1] === '') ls.pop();
  return ls;
}

async function readCaptions(file: string): Promise<{ captions: string[]; imageOfText: Int32Array | null }> {
  if (isJson(file)) {
    const l = await loadEvalLabels([file]);
    if (!l.captions) throw new SaeError('ERR_FORMAT', `${file} holds no captions (expected COCO captions JSON or an eval_labels.json with "captions")`);
    return { captions: l.captions, imageOfText: l.imageOfText };
  }
  const text = await readTextFile(file, 'captions file');
  if (path.extname(file).toLowerCase() !== '.jsonl') return { captions: lines(text), imageOfText: null };
  const captions: string[] = [];
  const images: number[] = [];
  let firstWithout = -1; // the first line without an image row (all lines need one, or none)
  lines(text).forEach((line, i) => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new SaeError('ERR_FORMAT', `${file}:${i + 1} is not JSON`);
    }
    const o = v as Record<string, unknown>;
    const c = typeof o === 'object' && o !== null ? (o.caption ?? o.text) : undefined;
    if (typeof c !== 'string') throw new SaeError('ERR_FORMAT', `${file}:${i + 1} has no string "caption" or "text" field`);
    captions.push(c);
    if (o.image === undefined) {
      if (firstWithout < 0) firstWithout = i;
    } else if (Number.isSafeInteger(o.image) && (o.image as number) >= 0) images.push(o.image as number);
    else throw new SaeError('ERR_FORMAT', `${file}:${i + 1} has "image": ${JSON.stringify(o.image)}; expected the image row (an integer >= 0)`);
    if (images.length && firstWithout >= 0)
      throw new SaeError('ERR_FORMAT', `${file}:${firstWithout + 1} has no "image" field while other lines have one: give every line its image row, or none`);
  });
  return { captions, imageOfText: images.length > 0 ? Int32Array.from(images) : null };
}

async function readImageOfText(file: string): Promise<Int32Array> {
  const text = await readTextFile(file, 'image-of-text file');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SaeError('ERR_FORMAT', `${file} is not JSON (expected an array of image rows, one per caption)`);
  }
  if (Array.isArray(v)) {
    if (!v.every((x) => Number.isSafeInteger(x) && x >= 0)) throw new SaeError('ERR_FORMAT', `${file} must hold an array of image rows (integers >= 0)`);
    return Int32Array.from(v as number[]);
  }
  const l = await loadEvalLabels([file]);
  if (!l.imageOfText) throw new SaeError('ERR_FORMAT', `${file} says nothing about which image each caption describes (no imageOfText / COCO annotations)`);
  return l.imageOfText;
}

async function readImageRefs(file: string): Promise<string[]> {
  const text = await readTextFile(file, 'image-refs file');
  let refs: unknown;
  if (isJson(file)) {
    try {
      refs = JSON.parse(text);
    } catch {
      throw new SaeError('ERR_FORMAT', `${file} is not JSON (expected an array of image paths or URLs)`);
    }
    if (!Array.isArray(refs) || !refs.every((r) => typeof r === 'string')) throw new SaeError('ERR_FORMAT', `${file} must hold an array of strings (image paths or URLs)`);
  } else refs = lines(text);
  const out = refs as string[];
  out.forEach((r, i) => {
    const bad = (what: string): never => {
      throw new SaeError('ERR_FORMAT', `${file}: image ${i} is ${what}; give paths relative to the image root (no '..'), or http(s) URLs`);
    };
    if (r === '') bad('empty');
    if (/^https?:\/\//i.test(r)) return;
    if (/^[a-z][a-z0-9+.-]*:/i.test(r) && !/^[a-z]:[\\/]/i.test(r)) bad(`a URL with scheme ${r.slice(0, r.indexOf(':') + 1)} (only http and https)`);
    if (path.isAbsolute(r) || /^[a-z]:[\\/]/i.test(r)) bad(`the absolute path ${r}`);
    if (r.split(/[\\/]/).includes('..')) bad(`${r}, which climbs out of the image root`);
  });
  return out;
}

/** Reads and checks a corpus (row counts, image-of-text range, finite embeddings of one dimension). */
export async function loadConceptCorpus(spec: CorpusSpec): Promise<ConceptCorpus> {
  const s = resolveSpec(spec);
  const image = readMatrix(s.image!);
  const text = readMatrix(s.text!);
  if (image.cols !== text.cols) throw new SaeError('ERR_SHAPE', `image embeddings are ${image.cols}-d and text embeddings ${text.cols}-d; they must share one dimension`);
  const cap = await readCaptions(s.captions!);
  const imageOfText = s.imageOfText ? await readImageOfText(s.imageOfText) : cap.imageOfText;
  const labels: EvalLabels = { concepts: [], imageOfText, image: null, text: null, captions: cap.captions };
  checkLabels(labels, image.rows, text.rows, 'corpus');
  let imageLabels: string[][] | null = null;
  if (s.labels?.length) {
    const l = await loadEvalLabels(s.labels);
    const sets = imageConcepts({ ...l, imageOfText: l.imageOfText ?? imageOfText, captions: l.captions ?? cap.captions }, image.rows);
    if (sets) {
      if (sets.length !== image.rows) throw new SaeError('ERR_SHAPE', `corpus labels name ${sets.length} images, the image file has ${image.rows} rows`);
      imageLabels = sets.map((set) => Array.from(set, (c) => l.concepts[c]));
    }
  }
  const imageRefs = s.imageRefs ? await readImageRefs(s.imageRefs) : null;
  if (imageRefs && imageRefs.length !== image.rows) throw new SaeError('ERR_SHAPE', `${s.imageRefs} lists ${imageRefs.length} images, the image file has ${image.rows} rows`);
  return { image, text, imageOfText, captions: cap.captions, imageRefs, imageLabels };
}
