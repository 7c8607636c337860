/**
 * A built concept index (ConceptIndex): the statistics of every aligned latent index, its labels, the corpus it was
 * built from (captions, image references and labels) and the corpus codes, saved as one directory of kind
 * 'concept-index': index.json (sealed: meta, labels, checksums of the other files), index.safetensors (the arrays),
 * corpus.json and codes.safetensors. Loading verifies every checksum and shape.
 */
import path from 'node:path';

import { SaeError } from '../errors.js';
import { recoverDirectory, writeDirectoryAtomic } from '../io/atomic.js';
import { taggedSha256 } from '../io/digest.js';
import { readRegularFile } from '../io/files.js';
import { sealJson, unsealJson } from '../io/json-seal.js';
import { parseSafetensors, serializeSafetensors, type Tensor } from '../io/safetensors.js';
import type { SparseCodes } from '../types.js';
import { describe } from '../validate.js';
import type { ConceptStats } from './stats.js';
import type { Concept, ConceptIndexMeta, ConceptSummary, LabelWord, Partner, TopItem } from './types.js';

export const CONCEPT_INDEX_FORMAT_VERSION = 1;
export const CONCEPT_INDEX_FILES = ['index.json', 'index.safetensors', 'corpus.json', 'codes.safetensors'] as const;

/** Everything an index holds; what buildConceptIndex computes and load() reads back. */
export interface ConceptIndexData {
  meta: ConceptIndexMeta;
  stats: ConceptStats;
  /** Matched correlation on the pair's training data, per aligned index [m]. */
  correlation: Float32Array;
  /** 1 - cos of the image and text decoder rows [m]. */
  decoderDistance: Float64Array;
  words: LabelWord[][];
  labels: string[];
  captions: string[];
  imageRefs: string[] | null;
  imageLabels: string[][] | null;
  imageOfText: Int32Array | null;
  codes: { image: SparseCodes; text: SparseCodes };
}

export class ConceptIndex {
  readonly meta: ConceptIndexMeta;
  readonly m: number;
  readonly #d: ConceptIndexData;

  constructor(data: ConceptIndexData) {
    this.#d = data;
    this.meta = data.meta;
    this.m = data.meta.m;
  }

  #checkId(id: unknown): number {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.m) throw new SaeError('ERR_RANGE', `concept ${String(id)} does not exist: ids are integers in [0, ${this.m})`);
    return id;
  }

  #summary(i: number): ConceptSummary {
    const s = this.#d.stats;
    const images = this.meta.corpus.images, texts = this.meta.corpus.texts;
    return {
      id: i,
      label: this.#d.labels[i],
      alive: { image: s.fireImage[i] > 0, text: s.fireText[i] > 0 },
      fireRate: { image: s.fireImage[i] / images, text: s.fireText[i] / texts },
      correlation: this.#d.correlation[i],
      corpusCorrelation: s.matched[i],
      decoderDistance: this.#d.decoderDistance[i],
      labelZ: this.#d.words[i][0]?.z ?? null,
    };
  }

  /** Everything about aligned index `id`; ERR_RANGE for an unknown id. */
  concept(id: number): Concept {
    const i = this.#checkId(id);
    const s = this.#d.stats, N = s.topN, P = s.partners;
    const top = (rows: Int32Array, values: Float32Array): TopItem[] => {
      const out: TopItem[] = [];
      for (let p = 0; p < N && rows[i * N + p] >= 0; p++) out.push({ row: rows[i * N + p], value: values[i * N + p] });
      return out;
    };
    const partners = (idx: Int32Array, corr: Float64Array): Partner[] => {
      const out: Partner[] = [];
      for (let p = 0; p < P && idx[i * P + p] >= 0; p++) out.push({ index: idx[i * P + p], correlation: corr[i * P + p] });
      return out;
    };
    return {
      ...this.#summary(i),
      words: this.#d.words[i].map((w) => ({ ...w })),
      topImages: top(s.topImageRows, s.topImageValues),
      topCaptions: top(s.topTextRows, s.topTextValues),
      imagePartners: partners(s.imagePartners, s.imagePartnerCorr),
      textPartners: partners(s.textPartners, s.textPartnerCorr),
    };
  }

  /** All m summaries, in id order. */
  summaries(): ConceptSummary[] {
    return Array.from({ length: this.m }, (_, i) => this.#summary(i));
  }

  /** The corpus captions (all, or those of `rows`); ERR_RANGE for a row outside the corpus. */
  captions(rows?: ArrayLike<number>): string[] {
    const c = this.#d.captions;
    if (rows === undefined) return c.slice();
    return Array.from(rows, (r) => {
      if (!(Number.isInteger(r) && r >= 0 && r < c.length)) throw new SaeError('ERR_RANGE', `caption row ${String(r)} is outside the corpus's ${c.length} captions`);
      return c[r];
    });
  }

  #checkImageRow(row: unknown): number {
    const n = this.meta.corpus.images;
    if (typeof row !== 'number' || !Number.isInteger(row) || row < 0 || row >= n) throw new SaeError('ERR_RANGE', `image row ${String(row)} is outside the corpus's ${n} images`);
    return row;
  }

  imageRef(row: number): string | null {
    const r = this.#checkImageRow(row);
    return this.#d.imageRefs?.[r] ?? null;
  }

  imageLabels(row: number): string[] | null {
    const r = this.#checkImageRow(row);
    const l = this.#d.imageLabels?.[r];
    return l ? l.slice() : null;
  }

  /** The texts describing image `row` (ascending). */
  textsOfImage(row: number): number[] {
    const r = this.#checkImageRow(row);
    const map = this.#d.imageOfText;
    if (!map) return [r];
    const out: number[] = [];
    for (let t = 0; t < map.length; t++) if (map[t] === r) out.push(t);
    return out;
  }

  /** The corpus codes of one side in the aligned index space (shared, do not modify). */
  codes(side: 'image' | 'text'): SparseCodes {
    if (side !== 'image' && side !== 'text') throw new SaeError('ERR_ARG', `side must be 'image' or 'text', got ${describe(side)}`);
    return this.#d.codes[side];
  }

  imageOfText(): Int32Array | null {
    return this.#d.imageOfText;
  }

  /** Writes the index directory atomically (it replaces only an earlier concept index). */
  async save(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'ConceptIndex.save needs a directory path');
    const d = this.#d, s = d.stats, m = this.m;
    const files: Record<string, Uint8Array | string> = {};
    files['index.safetensors'] = serializeSafetensors({
      fire_image: { dtype: 'I32', shape: [m], data: s.fireImage },
      fire_text: { dtype: 'I32', shape: [m], data: s.fireText },
      correlation: { dtype: 'F32', shape: [m], data: d.correlation },
      corpus_correlation: { dtype: 'F64', shape: [m], data: s.matched },
      decoder_distance: { dtype: 'F64', shape: [m], data: d.decoderDistance },
      top_image_rows: { dtype: 'I32', shape: [m, s.topN], data: s.topImageRows },
      top_image_values: { dtype: 'F32', shape: [m, s.topN], data: s.topImageValues },
      top_text_rows: { dtype: 'I32', shape: [m, s.topN], data: s.topTextRows },
      top_text_values: { dtype: 'F32', shape: [m, s.topN], data: s.topTextValues },
      image_partners: { dtype: 'I32', shape: [m, s.partners], data: s.imagePartners },
      image_partner_corr: { dtype: 'F64', shape: [m, s.partners], data: s.imagePartnerCorr },
      text_partners: { dtype: 'I32', shape: [m, s.partners], data: s.textPartners },
      text_partner_corr: { dtype: 'F64', shape: [m, s.partners], data: s.textPartnerCorr },
    });
    files['corpus.json'] = JSON.stringify({ captions: d.captions, imageRefs: d.imageRefs, imageLabels: d.imageLabels, imageOfText: d.imageOfText ? Array.from(d.imageOfText) : null }) + '\n';
    const codes: Record<string, Parameters<typeof serializeSafetensors>[0][string]> = {};
    for (const side of ['image', 'text'] as const) {
      const c = d.codes[side];
      codes[`${side}_indices`] = { dtype: 'I32', shape: [c.rows, c.k], data: c.indices };
      codes[`${side}_values`] = { dtype: 'F32', shape: [c.rows, c.k], data: c.values };
    }
    files['codes.safetensors'] = serializeSafetensors(codes);
    const checksums: Record<string, string> = {};
    for (const [name, f] of Object.entries(files)) checksums[name] = taggedSha256(f);
    files['index.json'] = sealJson({
      kind: 'concept-index',
      format_version: CONCEPT_INDEX_FORMAT_VERSION,
      meta: this.meta,
      pairs: s.pairs,
      labels: d.labels,
      words: d.words.map((ws) => ws.map((w) => [w.word, w.z])),
      checksums,
    });
    await writeDirectoryAtomic(dir, files);
  }

  /** Reads an index written by save(): ERR_IO when a file is missing, ERR_FORMAT (naming the file) for anything else wrong. */
  static async load(dir: string): Promise<ConceptIndex> {
    if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', `ConceptIndex.load needs the directory of a saved concept index, got ${describe(dir)}`);
    await recoverDirectory(dir);
    const read = async (name: string) => {
      const file = path.join(dir, name);
      try {
        return await readRegularFile(file, 'concept-index file');
      } catch (e) {
        if (e instanceof SaeError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
          throw new SaeError('ERR_IO', `${file} is missing: is ${dir} a concept index (written by cmsae concepts or ConceptIndex.save)?`, { cause: e });
        throw e;
      }
    };
    const metaFile = path.join(dir, 'index.json');
    const j = unsealJson((await read('index.json')).toString('utf8'), metaFile, { required: true });
    const bad = (file: string, why: string): never => {
      throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
    };
    if (j.kind !== 'concept-index') bad(metaFile, `is not a concept index (kind ${JSON.stringify(j.kind)})`);
    if (j.format_version !== CONCEPT_INDEX_FORMAT_VERSION)
      bad(metaFile, `has format_version ${JSON.stringify(j.format_version)}; this version reads ${CONCEPT_INDEX_FORMAT_VERSION} (rebuild the index with cmsae concepts)`);
    const sums = j.checksums as Record<string, unknown>;
    const expected = CONCEPT_INDEX_FILES.filter((f) => f !== 'index.json');
    if (typeof sums !== 'object' || sums === null || Object.keys(sums).sort().join() !== [...expected].sort().join()) bad(metaFile, `must list the checksums of ${expected.join(', ')}`);
    const bytes: Record<string, Buffer> = {};
    for (const name of expected) {
      bytes[name] = await read(name);
      if (taggedSha256(bytes[name]) !== sums[name]) bad(path.join(dir, name), `does not match the checksum in ${metaFile}: the index is corrupt or was edited; rebuild it`);
    }
    const meta = j.meta as ConceptIndexMeta;
    if (typeof meta !== 'object' || meta === null || !Number.isInteger(meta.m) || meta.m < 1 || !Number.isInteger(meta.topN) || !Number.isInteger(meta.partners) || typeof meta.corpus !== 'object' || meta.corpus === null || typeof meta.pair !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(meta.pair))
      bad(metaFile, 'has a malformed meta object');
    const m = meta.m, N = meta.topN, P = meta.partners;
    const tFile = path.join(dir, 'index.safetensors');
    const t = parseSafetensors(bytes['index.safetensors'], tFile);
    const get = <T extends Tensor['data']>(name: string, dtype: string, shape: number[], ctor: { new (a: ArrayLike<number>): T }): T => {
      const x = t.tensors.get(name) ?? bad(tFile, `has no tensor '${name}'`);
      if (x.dtype !== dtype || x.shape.join() !== shape.join()) bad(tFile, `tensor '${name}' must be ${dtype} ${JSON.stringify(shape)}, got ${x.dtype} ${JSON.stringify(x.shape)}`);
      return new ctor(x.data);
    };
    const stats: ConceptStats = {
      m, topN: N, partners: P, pairs: j.pairs as number,
      fireImage: get('fire_image', 'I32', [m], Int32Array),
      fireText: get('fire_text', 'I32', [m], Int32Array),
      matched: get('corpus_correlation', 'F64', [m], Float64Array),
      topImageRows: get('top_image_rows', 'I32', [m, N], Int32Array),
      topImageValues: get('top_image_values', 'F32', [m, N], Float32Array),
      topTextRows: get('top_text_rows', 'I32', [m, N], Int32Array),
      topTextValues: get('top_text_values', 'F32', [m, N], Float32Array),
      imagePartners: get('image_partners', 'I32', [m, P], Int32Array),
      imagePartnerCorr: get('image_partner_corr', 'F64', [m, P], Float64Array),
      textPartners: get('text_partners', 'I32', [m, P], Int32Array),
      textPartnerCorr: get('text_partner_corr', 'F64', [m, P], Float64Array),
    };
    const { images, texts } = meta.corpus;
    const inRange = (a: Int32Array, n: number, what: string) => {
      for (let p = 0; p < a.length; p++) if (!(a[p] >= -1 && a[p] < n)) bad(tFile, `${what}[${p}] = ${a[p]} is outside [-1, ${n})`);
    };
    inRange(stats.topImageRows, images, 'top_image_rows');
    inRange(stats.topTextRows, texts, 'top_text_rows');
    inRange(stats.imagePartners, m, 'image_partners');
    inRange(stats.textPartners, m, 'text_partners');
    const labels = j.labels as unknown, words = j.words as unknown;
    if (!Array.isArray(labels) || labels.length !== m || !labels.every((l) => typeof l === 'string')) bad(metaFile, `must hold ${m} labels (strings)`);
    if (!Array.isArray(words) || words.length !== m) bad(metaFile, `must hold ${m} word lists`);
    const parsedWords = (words as unknown[]).map((ws, i) => {
      if (!Array.isArray(ws) || !ws.every((w) => Array.isArray(w) && typeof w[0] === 'string' && typeof w[1] === 'number')) bad(metaFile, `words[${i}] must be a list of [word, z] pairs`);
      return (ws as [string, number][]).map(([word, z]) => ({ word, z }));
    });
    const cFile = path.join(dir, 'corpus.json');
    let corpus: Record<string, unknown>;
    try {
      corpus = JSON.parse(bytes['corpus.json'].toString('utf8')) as Record<string, unknown>;
    } catch {
      return bad(cFile, 'is not JSON');
    }
    const captions = corpus.captions;
    if (!Array.isArray(captions) || captions.length !== texts || !captions.every((c) => typeof c === 'string')) bad(cFile, `must hold ${texts} captions`);
    const refs = corpus.imageRefs;
    if (refs !== null && !(Array.isArray(refs) && refs.length === images && refs.every((r) => typeof r === 'string'))) bad(cFile, `imageRefs must be null or ${images} strings`);
    const il = corpus.imageLabels;
    if (il !== null && !(Array.isArray(il) && il.length === images && il.every((l) => Array.isArray(l) && l.every((w) => typeof w === 'string')))) bad(cFile, `imageLabels must be null or ${images} lists of strings`);
    const iot = corpus.imageOfText;
    if (iot !== null && !(Array.isArray(iot) && iot.length === texts && iot.every((r) => Number.isInteger(r) && r >= 0 && r < images))) bad(cFile, `imageOfText must be null or ${texts} image rows`);
    const kFile = path.join(dir, 'codes.safetensors');
    const k = parseSafetensors(bytes['codes.safetensors'], kFile);
    const side = (name: 'image' | 'text', rows: number): SparseCodes => {
      const ix = k.tensors.get(`${name}_indices`), v = k.tensors.get(`${name}_values`);
      if (!ix || !v || ix.dtype !== 'I32' || v.dtype !== 'F32' || ix.shape.length !== 2 || ix.shape.join() !== v.shape.join() || ix.shape[0] !== rows)
        return bad(kFile, `must hold ${name}_indices (I32) and ${name}_values (F32) of shape [${rows}, k]`);
      const indices = ix.data as Int32Array, values = v.data as Float32Array;
      for (let p = 0; p < indices.length; p++) if (values[p] !== 0 && !(indices[p] >= 0 && indices[p] < m)) bad(kFile, `${name}_indices holds latent ${indices[p]}, outside [0, ${m})`);
      return { rows, k: ix.shape[1], indices, values };
    };
    return new ConceptIndex({
      meta,
      stats,
      correlation: get('correlation', 'F32', [m], Float32Array),
      decoderDistance: get('decoder_distance', 'F64', [m], Float64Array),
      words: parsedWords,
      labels: labels as string[],
      captions: captions as string[],
      imageRefs: refs as string[] | null,
      imageLabels: il as string[][] | null,
      imageOfText: iot === null ? null : Int32Array.from(iot as number[]),
      codes: { image: side('image', images), text: side('text', texts) },
    });
  }
}
