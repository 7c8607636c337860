/**
 * Metadata of an evaluation set: which image each caption describes (retrieval ground truth) and which
 * concepts each image and caption carries (steering). Read from our JSON format or from COCO annotation
 * files (instances: image concepts; captions: caption -> image and caption text), and checked against the
 * embedding files' row counts.
 *
 * Our format (every field optional):
 *   { "concepts": ["dog", ...],                 names; label entries may be names or indices into this list
 *     "imageOfText": [0, 0, 1, ...],            caption row -> image row (default: row r pairs with row r)
 *     "image": [["dog", "car"], ...],           concepts per image row
 *     "text": [["dog"], ...],                   concepts per caption row
 *     "captions": ["a dog on a car", ...] }     caption strings: concepts matched as whole words when "text" is absent
 */
import { promises as fs } from 'node:fs';

import { z } from 'zod';

import { SaeError } from '../errors.js';

export interface EvalLabels {
  concepts: string[];
  /** Caption row -> image row, or null when rows pair one to one. */
  imageOfText: Int32Array | null;
  /** Concept indices per image row / per caption row (null when not given). */
  image: Int32Array[] | null;
  text: Int32Array[] | null;
  captions: string[] | null;
}

const labelEntry = z.union([z.string(), z.number().int().min(0)]);
const ourFormat = z
  .object({
    concepts: z.array(z.string().min(1)).optional(),
    imageOfText: z.array(z.number().int().min(0)).optional(),
    image: z.array(z.array(labelEntry)).optional(),
    text: z.array(z.array(labelEntry)).optional(),
    captions: z.array(z.string()).optional(),
  })
  .strict();

const cocoInstances = z.object({
  images: z.array(z.object({ id: z.number() }).passthrough()),
  annotations: z.array(z.object({ image_id: z.number(), category_id: z.number() }).passthrough()),
  categories: z.array(z.object({ id: z.number(), name: z.string() }).passthrough()),
});
const cocoCaptions = z.object({
  images: z.array(z.object({ id: z.number() }).passthrough()),
  annotations: z.array(z.object({ image_id: z.number(), caption: z.string() }).passthrough()),
});

function fail(file: string, what: string): never {
  throw new SaeError('ERR_FORMAT', `${file}: ${what}`);
}

/** Resolves names/indices to concept indices, registering new names when `grow` is set. */
function resolveSets(file: string, field: string, rows: (string | number)[][], concepts: string[], grow: boolean): Int32Array[] {
  const index = new Map(concepts.map((c, i) => [c, i]));
  return rows.map((row, r) =>
    Int32Array.from(
      new Set(
        row.map((e) => {
          if (typeof e === 'number') {
            if (e >= concepts.length) fail(file, `${field}[${r}] names concept ${e}, but "concepts" lists ${concepts.length}`);
            return e;
          }
          let i = index.get(e);
          if (i === undefined) {
            if (!grow) fail(file, `${field}[${r}] names concept "${e}", which "concepts" does not list`);
            i = concepts.length;
            concepts.push(e);
            index.set(e, i);
          }
          return i;
        }),
      ),
    ),
  );
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new SaeError('ERR_IO', `cannot read label file ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SaeError('ERR_FORMAT', `${file} is not JSON (${(e as Error).message})`);
  }
}

/** Parses one or more label files (ours, COCO instances, COCO captions) into one EvalLabels. */
export async function loadEvalLabels(files: string[]): Promise<EvalLabels> {
  const out: EvalLabels = { concepts: [], imageOfText: null, image: null, text: null, captions: null };
  for (const file of files) {
    const j = (await readJson(file)) as Record<string, unknown>;
    if (j && typeof j === 'object' && 'categories' in j) {
      const r = cocoInstances.safeParse(j);
      if (!r.success) fail(file, `not a COCO instances file: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
      const names = [...r.data.categories].sort((a, b) => a.id - b.id);
      const byCat = new Map<number, string>(names.map((c) => [c.id, c.name]));
      const rowOf = new Map(r.data.images.map((im, i) => [im.id, i]));
      const sets: string[][] = r.data.images.map(() => []);
      for (const a of r.data.annotations) {
        const row = rowOf.get(a.image_id);
        const name = byCat.get(a.category_id);
        if (row === undefined) fail(file, `an annotation refers to image_id ${a.image_id}, which "images" does not list`);
        if (name === undefined) fail(file, `an annotation refers to category_id ${a.category_id}, which "categories" does not list`);
        sets[row].push(name);
      }
      for (const c of names) if (!out.concepts.includes(c.name)) out.concepts.push(c.name);
      out.image = resolveSets(file, 'images', sets, out.concepts, false);
    } else if (j && typeof j === 'object' && Array.isArray((j as { annotations?: unknown }).annotations) && 'images' in j) {
      const r = cocoCaptions.safeParse(j);
      if (!r.success) fail(file, `not a COCO captions file: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
      const rowOf = new Map(r.data.images.map((im, i) => [im.id, i]));
      out.imageOfText = Int32Array.from(r.data.annotations, (a) => {
        const row = rowOf.get(a.image_id);
        if (row === undefined) fail(file, `a caption refers to image_id ${a.image_id}, which "images" does not list`);
        return row;
      });
      out.captions = r.data.annotations.map((a) => a.caption);
    } else {
      const r = ourFormat.safeParse(j);
      if (!r.success) fail(file, `${r.error.issues[0].path.join('.') || '(file)'}: ${r.error.issues[0].message} (see docs/evaluation.md for the label format)`);
      const d = r.data;
      if (d.concepts) for (const c of d.concepts) if (!out.concepts.includes(c)) out.concepts.push(c);
      const grow = !d.concepts;
      if (d.image) out.image = resolveSets(file, 'image', d.image, out.concepts, grow);
      if (d.text) out.text = resolveSets(file, 'text', d.text, out.concepts, grow);
      if (d.imageOfText) out.imageOfText = Int32Array.from(d.imageOfText);
      if (d.captions) out.captions = d.captions;
    }
  }
  return out;
}

/** Checks the labels against the evaluation files' row counts; throws ERR_SHAPE naming the mismatch. */
export function checkLabels(l: EvalLabels, imageRows: number, textRows: number, where = 'labels'): void {
  if (l.imageOfText) {
    if (l.imageOfText.length !== textRows) throw new SaeError('ERR_SHAPE', `${where}: imageOfText has ${l.imageOfText.length} entries but the text file has ${textRows} rows (one entry per caption row)`);
    for (let t = 0; t < l.imageOfText.length; t++)
      if (l.imageOfText[t] >= imageRows) throw new SaeError('ERR_SHAPE', `${where}: caption ${t} points at image row ${l.imageOfText[t]}, but the image file has ${imageRows} rows`);
  } else if (imageRows !== textRows)
    throw new SaeError('ERR_SHAPE', `the image file has ${imageRows} rows and the text file ${textRows}, and no imageOfText mapping says which image each caption describes`);
  if (l.image && l.image.length !== imageRows) throw new SaeError('ERR_SHAPE', `${where}: concept labels for ${l.image.length} images, but the image file has ${imageRows} rows`);
  if (l.text && l.text.length !== textRows) throw new SaeError('ERR_SHAPE', `${where}: concept labels for ${l.text.length} captions, but the text file has ${textRows} rows`);
  if (l.captions && l.captions.length !== textRows) throw new SaeError('ERR_SHAPE', `${where}: ${l.captions.length} captions, but the text file has ${textRows} rows`);
}

/** Caption row -> image row (identity when rows pair one to one). */
export function imageOfText(l: EvalLabels, textRows: number): Int32Array {
  return l.imageOfText ?? Int32Array.from({ length: textRows }, (_, i) => i);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Concepts per caption: the "text" labels when given, else whole-word matches of each concept name in the
 * lower-cased caption (the reference's `\b<concept>\b`: plurals such as "dogs" do not match "dog").
 */
export function textConcepts(l: EvalLabels): Int32Array[] | null {
  if (l.text) return l.text;
  if (!l.captions || l.concepts.length === 0) return null;
  const res = l.concepts.map((c) => new RegExp(`\\b${escapeRegex(c.toLowerCase())}\\b`));
  return l.captions.map((cap) => {
    const low = cap.toLowerCase();
    const hits: number[] = [];
    res.forEach((re, i) => {
      if (re.test(low)) hits.push(i);
    });
    return Int32Array.from(hits);
  });
}

/** Concepts per image: the "image" labels when given, else the union over the image's captions (the reference's rule). */
export function imageConcepts(l: EvalLabels, imageRows: number): Int32Array[] | null {
  if (l.image) return l.image;
  const t = textConcepts(l);
  if (!t) return null;
  const map = imageOfText(l, t.length);
  const sets: Set<number>[] = Array.from({ length: imageRows }, () => new Set());
  t.forEach((s, row) => s.forEach((c) => sets[map[row]].add(c)));
  return sets.map((s) => Int32Array.from([...s].sort((a, b) => a - b)));
}
