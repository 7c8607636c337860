/**
 * Building a concept index: encode the corpus with the aligned pair (both sides in the shared index space), compute
 * the corpus statistics (conceptStats: native kernel), the decoder distances and the labels; and conceptIndexFor,
 * which reuses a saved index whose inputs (the pair's alignment.json checksum, the corpus files, the options) are
 * unchanged, the fit cache's keying habit.
 */
import path from 'node:path';

import { AlignedPair } from '../align/aligned-pair.js';
import type { EmbeddingSpec } from '../io/embeddings.js';
import { pairFingerprint } from './fingerprint.js';
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { taggedSha256 } from '../io/digest.js';
import { readRegularFile, statOrNull } from '../io/files.js';
import { fileKey, hash } from '../fit/cache.js';
import type { Matrix, SparseCodes } from '../types.js';
import { describe } from '../validate.js';
import { CONCEPT_INDEX_FORMAT_VERSION, ConceptIndex } from './concept-index.js';
import { corpusFiles, loadConceptCorpus, resolveSpec, type CorpusSpec } from './corpus.js';
import { CaptionVocabulary } from './label.js';
import { conceptStats } from './stats.js';
import type { ConceptCorpus, ConceptIndexMeta } from './types.js';

export interface ConceptIndexOptions {
  /** Top-activating images and captions kept per concept (default 12). */
  topN?: number;
  /** Partners kept per concept and side (default 5). */
  partners?: number;
  /** Where image references resolve (recorded for the service; not read here). */
  imageRoot?: string;
}

export const CONCEPT_DEFAULTS = { topN: 12, partners: 5 } as const;
const ENCODE_BATCH = 16384;

function checkOptions(opts: ConceptIndexOptions): { topN: number; partners: number; imageRoot: string | null } {
  if (typeof opts !== 'object' || opts === null) throw new SaeError('ERR_ARG', `concept index options must be an object, got ${describe(opts)}`);
  for (const k of Object.keys(opts)) if (!['topN', 'partners', 'imageRoot'].includes(k)) throw new SaeError('ERR_ARG', `unknown concept index option '${k}' (known: topN, partners, imageRoot)`);
  const topN = opts.topN ?? CONCEPT_DEFAULTS.topN, partners = opts.partners ?? CONCEPT_DEFAULTS.partners;
  const shown = (v: unknown) => (typeof v === 'number' ? String(v) : describe(v));
  if (!(Number.isInteger(topN) && topN >= 1 && topN <= 10_000)) throw new SaeError('ERR_ARG', `topN (--top-n) must be an integer in [1, 10000], got ${shown(topN)}`);
  if (!(Number.isInteger(partners) && partners >= 1 && partners <= 1000)) throw new SaeError('ERR_ARG', `partners (--partners) must be an integer in [1, 1000], got ${shown(partners)}`);
  if (opts.imageRoot !== undefined && (typeof opts.imageRoot !== 'string' || opts.imageRoot === '')) throw new SaeError('ERR_ARG', `imageRoot must be a directory path, got ${describe(opts.imageRoot)}`);
  return { topN, partners, imageRoot: opts.imageRoot ? path.resolve(opts.imageRoot) : null };
}

/** The corpus's codes of one side, encoded in batches (normalized by the pair's normalizer). */
export async function encodeCorpus(pair: AlignedPair, side: Modality, x: Matrix): Promise<SparseCodes> {
  const sae = side === 'image' ? pair.image : pair.text;
  const k = sae.k, d = x.cols;
  const out: SparseCodes = { rows: x.rows, k, indices: new Int32Array(x.rows * k), values: new Float32Array(x.rows * k) };
  for (let r0 = 0; r0 < x.rows; r0 += ENCODE_BATCH) {
    const rows = Math.min(ENCODE_BATCH, x.rows - r0);
    const data = x.data.slice(r0 * d, (r0 + rows) * d);
    pair.normalizer.apply(side, data, rows, d);
    const c = await sae.encodeAsync({ rows, cols: d, data });
    out.indices.set(c.indices, r0 * k);
    out.values.set(c.values, r0 * k);
  }
  return out;
}

/** 1 - cos(W_dec_image[i], W_dec_text[i]) per aligned index (O(m d), once per index; NaN for a zero row). */
function decoderDistances(pair: AlignedPair): Float64Array {
  const a = pair.image.getWeights().W_dec, b = pair.text.getWeights().W_dec;
  const m = a.rows, d = a.cols;
  const out = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let c = 0; c < d; c++) {
      const x = a.data[i * d + c], y = b.data[i * d + c];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[i] = aa > 0 && bb > 0 ? 1 - ab / Math.sqrt(aa * bb) : NaN;
  }
  return out;
}

function checkCorpus(c: ConceptCorpus, d: number): void {
  if (typeof c !== 'object' || c === null) throw new SaeError('ERR_ARG', `buildConceptIndex needs a ConceptCorpus (loadConceptCorpus), got ${describe(c)}`);
  for (const side of ['image', 'text'] as const) {
    const x = c[side];
    if (typeof x !== 'object' || x === null || !(x.data instanceof Float32Array)) throw new SaeError('ERR_ARG', `corpus.${side} must be a Matrix`);
    if (x.cols !== d) throw new SaeError('ERR_SHAPE', `corpus.${side} is ${x.cols}-d, the pair's SAEs take ${d}-d embeddings`);
    if (x.rows < 1 || x.data.length !== x.rows * x.cols) throw new SaeError('ERR_SHAPE', `corpus.${side} must hold rows * cols values and at least one row`);
  }
  if (!Array.isArray(c.captions) || c.captions.length !== c.text.rows || !c.captions.every((s) => typeof s === 'string'))
    throw new SaeError('ERR_SHAPE', `the corpus needs one caption (a string) per text row: ${c.text.rows} text rows, ${Array.isArray(c.captions) ? c.captions.length : 'no'} captions`);
  if (c.imageOfText !== null && !(c.imageOfText instanceof Int32Array)) throw new SaeError('ERR_DTYPE', 'corpus.imageOfText must be an Int32Array or null');
  if (c.imageRefs !== null && !(Array.isArray(c.imageRefs) && c.imageRefs.length === c.image.rows)) throw new SaeError('ERR_SHAPE', `corpus.imageRefs must be null or one string per image row (${c.image.rows})`);
  if (c.imageLabels !== null && !(Array.isArray(c.imageLabels) && c.imageLabels.length === c.image.rows)) throw new SaeError('ERR_SHAPE', `corpus.imageLabels must be null or one list per image row (${c.image.rows})`);
}

/** Builds the concept index of `pair` on `corpus` (encodes the corpus, then indexes its codes). */
export async function buildConceptIndex(pair: AlignedPair, corpus: ConceptCorpus, opts: ConceptIndexOptions = {}, key = ''): Promise<ConceptIndex> {
  if (!(pair instanceof AlignedPair)) throw new SaeError('ERR_ARG', `buildConceptIndex needs an AlignedPair, got ${describe(pair)}`);
  const { topN, partners, imageRoot } = checkOptions(opts);
  const d = pair.image.d, m = pair.image.m;
  checkCorpus(corpus, d);
  const t0 = performance.now();
  const image = await encodeCorpus(pair, 'image', corpus.image);
  const text = await encodeCorpus(pair, 'text', corpus.text);
  const t1 = performance.now();
  const stats = await conceptStats({ image, text, imageOfText: corpus.imageOfText }, { m, topN, partners });
  const vocab = new CaptionVocabulary(corpus.captions);
  const topRows = (i: number) => stats.topTextRows.subarray(i * topN, (i + 1) * topN);
  const words = Array.from({ length: m }, (_, i) => vocab.distinctive(topRows(i)));
  const labels = words.map((w, i) => vocab.label(topRows(i), w));
  const decoderDistance = decoderDistances(pair);
  const t2 = performance.now();
  const meta: ConceptIndexMeta = {
    formatVersion: CONCEPT_INDEX_FORMAT_VERSION,
    key,
    m,
    d,
    topN,
    partners,
    corpus: { images: corpus.image.rows, texts: corpus.text.rows, hasImageRefs: corpus.imageRefs !== null },
    pair: pairFingerprint(pair),
    imageRoot,
    seconds: { encode: (t1 - t0) / 1000, index: (t2 - t1) / 1000 },
  };
  return new ConceptIndex({
    meta,
    stats,
    correlation: Float32Array.from(pair.stats.matchedCorrelation),
    decoderDistance,
    words,
    labels,
    captions: corpus.captions.slice(),
    imageRefs: corpus.imageRefs?.slice() ?? null,
    imageLabels: corpus.imageLabels?.map((l) => l.slice()) ?? null,
    imageOfText: corpus.imageOfText ? Int32Array.from(corpus.imageOfText) : null,
    codes: { image, text },
  });
}

/** The key of an index: the pair's alignment.json (which checksums every pair file), the corpus files, the options. */
export async function conceptIndexKey(pairDir: string, corpus: CorpusSpec, opts: ConceptIndexOptions): Promise<string> {
  const o = checkOptions(opts);
  const alignment = taggedSha256(await readRegularFile(path.join(pairDir, 'alignment.json'), 'aligned-pair file').catch((e: unknown) => {
    throw e instanceof SaeError ? new SaeError('ERR_IO', `${pairDir} is not an aligned pair (no readable alignment.json): give <run>/final/pair or a pair directory`, { cause: e }) : e;
  }));
  const spec = resolveSpec(corpus);
  const files = corpusFiles(spec).map((f) => fileKey(f));
  // Paths absolute, so that the same files spelled another way (relative, with ./ or ..) give the same key.
  const abs = (e: EmbeddingSpec | string | undefined) => (e === undefined ? null : typeof e === 'string' ? path.resolve(e) : { ...e, path: path.resolve(e.path) });
  const roles = { image: abs(spec.image), text: abs(spec.text), captions: abs(spec.captions), imageOfText: abs(spec.imageOfText), imageRefs: abs(spec.imageRefs), labels: (spec.labels ?? []).map((f) => path.resolve(f)) };
  return `v${CONCEPT_INDEX_FORMAT_VERSION}:${hash({ alignment, files, roles, topN: o.topN, partners: o.partners, imageRoot: o.imageRoot })}`;
}

/**
 * Builds or reuses the concept index of the pair at `pairDir` on a corpus: `opts.out`, else <pairDir>/../concepts.
 * An index there built from the same inputs is loaded instead of rebuilt (reused: true).
 */
export async function conceptIndexFor(pairDir: string, corpus: CorpusSpec, opts: ConceptIndexOptions & { out?: string; onProgress?: (stage: string) => void } = {}): Promise<{ index: ConceptIndex; reused: boolean; dir: string }> {
  if (typeof pairDir !== 'string' || pairDir === '') throw new SaeError('ERR_ARG', `conceptIndexFor needs the pair's directory, got ${describe(pairDir)}`);
  const { out, onProgress, ...indexOpts } = opts;
  const dir = out ?? path.join(path.dirname(path.resolve(pairDir)), 'concepts');
  const key = await conceptIndexKey(pairDir, corpus, indexOpts);
  if (statOrNull(path.join(dir, 'index.json'))) {
    try {
      const old = await ConceptIndex.load(dir);
      if (old.meta.key === key) return { index: old, reused: true, dir };
    } catch {
      // unreadable or stale: rebuilt below (the save replaces it only when it is a concept index)
    }
  }
  onProgress?.('loading the pair and the corpus');
  using pair = await AlignedPair.load(pairDir);
  const c = await loadConceptCorpus(corpus);
  onProgress?.('encoding and indexing');
  const index = await buildConceptIndex(pair, c, indexOpts, key);
  await index.save(dir);
  return { index, reused: false, dir };
}
