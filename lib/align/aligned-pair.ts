/**
 * An aligned pair of modality-specific SAEs (the paper's post-hoc method): the image SAE as trained, the
 * text SAE with its latents permuted so that text latent i is the one matched to image latent i, the
 * permutation, the alignment statistics and the input normalization. Both modalities encode into one
 * latent index space.
 */
import path from 'node:path';

import type { Modality, Normalizer as NormalizerType } from '../data/paired.js';
import { Normalizer, checkModality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { recoverDirectory, writeDirectoryAtomic } from '../io/atomic.js';
import { taggedSha256 } from '../io/digest.js';
import { sealJson, unsealJson } from '../io/json-seal.js';
import { readRegularFile } from '../io/files.js';
import { checkpointFiles } from '../io/checkpoint.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { TopKSAE, type SaeWeights } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import { checkMatrix, describe } from '../validate.js';
import type { CorrelationResult } from './correlation.js';
import type { CodesAlignment } from './codes.js';
import { alignLatents } from './assignment.js';

export interface AlignmentStats {
  /** Pairs the correlation was computed on. */
  n: number;
  aliveImage: Uint8Array;
  aliveText: Uint8Array;
  /** Correlation of each image latent with its matched text latent (0 where either is dead). */
  matchedCorrelation: Float32Array;
}

/** New latent i = old latent perm[i]: encoder columns, encoder bias and decoder rows move together. */
export function permuteLatents(w: SaeWeights, perm: Int32Array): SaeWeights {
  if (typeof w !== 'object' || w === null || typeof w.W_enc !== 'object' || w.W_enc === null) throw new SaeError('ERR_ARG', `permuteLatents needs SAE weights { W_enc, b_enc, W_dec, b_dec }, got ${describe(w)}`);
  if (!(perm instanceof Int32Array)) throw new SaeError('ERR_DTYPE', `permuteLatents needs the permutation as an Int32Array, got ${describe(perm)}`);
  const { rows: d, cols: m } = w.W_enc;
  if (perm.length !== m) throw new SaeError('ERR_SHAPE', `permutation has ${perm.length} entries, the SAE has ${m} latents`);
  const seen = new Uint8Array(m);
  for (const j of perm) {
    if (!(j >= 0 && j < m) || seen[j]) throw new SaeError('ERR_ARG', 'not a permutation: every latent must appear exactly once');
    seen[j] = 1;
  }
  const out: SaeWeights = {
    W_enc: { rows: d, cols: m, data: new Float32Array(d * m) },
    b_enc: new Float32Array(m),
    W_dec: { rows: m, cols: d, data: new Float32Array(m * d) },
    b_dec: Float32Array.from(w.b_dec),
  };
  for (let r = 0; r < d; r++) for (let i = 0; i < m; i++) out.W_enc.data[r * m + i] = w.W_enc.data[r * m + perm[i]];
  for (let i = 0; i < m; i++) {
    out.b_enc[i] = w.b_enc[perm[i]];
    out.W_dec.data.set(w.W_dec.data.subarray(perm[i] * d, (perm[i] + 1) * d), i * d);
  }
  return out;
}

export class AlignedPair implements Disposable {
  readonly image: TopKSAE;
  readonly text: TopKSAE;
  readonly perm: Int32Array;
  readonly stats: AlignmentStats;
  readonly normalizer: NormalizerType;

  private constructor(image: TopKSAE, text: TopKSAE, perm: Int32Array, stats: AlignmentStats, normalizer: NormalizerType) {
    this.image = image;
    this.text = text;
    this.perm = perm;
    this.stats = stats;
    this.normalizer = normalizer;
  }

  /**
   * Aligns two trained SAEs from their correlation result (CorrelationAccumulator over paired training codes).
   * The text SAE is copied with permuted latents; the originals are left untouched.
   */
  static fromCorrelation(image: TopKSAE, text: TopKSAE, r: CorrelationResult, opts: { signed?: boolean; normalizer?: NormalizerType } = {}): AlignedPair {
    if (!(image instanceof TopKSAE) || !(text instanceof TopKSAE)) throw new SaeError('ERR_ARG', 'fromCorrelation needs the image and the text TopKSAE');
    if (typeof opts !== 'object' || opts === null) throw new SaeError('ERR_ARG', `fromCorrelation options must be an object, got ${describe(opts)}`);
    if (opts.normalizer !== undefined && !(opts.normalizer instanceof Normalizer)) throw new SaeError('ERR_ARG', 'option normalizer must be a Normalizer');
    if (image.m !== text.m) throw new SaeError('ERR_SHAPE', `post-hoc alignment needs SAEs of equal width (image m = ${image.m}, text m = ${text.m})`);
    const perm = alignLatents(r, { signed: opts.signed ?? true });
    const m = image.m;
    const matched = new Float32Array(m);
    for (let i = 0; i < m; i++) matched[i] = r.correlation.data[i * m + perm[i]];
    const permuted = TopKSAE.fromWeights(permuteLatents(text.getWeights(), perm), { ...text.options, d: undefined, m: undefined });
    const img = TopKSAE.fromWeights(image.getWeights(), { ...image.options, d: undefined, m: undefined });
    return new AlignedPair(img, permuted, perm, { n: r.n, aliveImage: Uint8Array.from(r.aliveA), aliveText: Uint8Array.from(r.aliveB), matchedCorrelation: matched }, opts.normalizer ?? new Normalizer('none'));
  }

  /**
   * Aligns two trained SAEs from a code store's alignment (CoactivationCodes.align: any width whose codes fit).
   * The text SAE is copied with permuted latents; the originals are left untouched.
   */
  static fromCodesAlignment(image: TopKSAE, text: TopKSAE, r: CodesAlignment, opts: { normalizer?: NormalizerType } = {}): AlignedPair {
    if (!(image instanceof TopKSAE) || !(text instanceof TopKSAE)) throw new SaeError('ERR_ARG', 'fromCodesAlignment needs the image and the text TopKSAE');
    if (opts.normalizer !== undefined && !(opts.normalizer instanceof Normalizer)) throw new SaeError('ERR_ARG', 'option normalizer must be a Normalizer');
    if (image.m !== text.m || !r?.perm || r.perm.length !== image.m)
      throw new SaeError('ERR_SHAPE', `post-hoc alignment needs SAEs of equal width and an alignment of that width (image m = ${image.m}, text m = ${text.m})`);
    const permuted = TopKSAE.fromWeights(permuteLatents(text.getWeights(), r.perm), { ...text.options, d: undefined, m: undefined });
    const img = TopKSAE.fromWeights(image.getWeights(), { ...image.options, d: undefined, m: undefined });
    const stats = { n: r.n, aliveImage: Uint8Array.from(r.aliveA), aliveText: Uint8Array.from(r.aliveB), matchedCorrelation: Float32Array.from(r.matchedCorrelation) };
    return new AlignedPair(img, permuted, Int32Array.from(r.perm), stats, opts.normalizer ?? new Normalizer('none'));
  }

  /** Codes of one modality in the shared latent index space (x normalized by the pair's normalizer first). */
  encode(side: Modality, x: Matrix, opts: { normalized?: boolean } = {}): SparseCodes {
    const sae = checkModality(side, 'side') === 'image' ? this.image : this.text;
    if (opts.normalized) return sae.encode(x);
    checkMatrix(x, 'x', sae.d);
    const data = Float32Array.from(x.data);
    this.normalizer.apply(side, data, x.rows, x.cols);
    return sae.encode({ rows: x.rows, cols: x.cols, data });
  }

  /**
   * Writes image/, text/ (SAE checkpoints, text permuted), alignment.safetensors and alignment.json atomically.
   * alignment.json (format 2) records the SHA-256 of every other file, which load() verifies.
   */
  async save(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'AlignedPair.save needs a directory path');
    const files: Record<string, Uint8Array | string> = {};
    // Each side records its normalization too, so a side copied out of the pair still encodes like it.
    for (const side of ['image', 'text'] as const)
      for (const [name, f] of Object.entries(checkpointFiles(this[side], { includeTrainingState: false, normalization: this.normalizer.record(side) }))) files[`${side}/${name}`] = f;
    const m = this.perm.length;
    files[TENSORS_FILE] = serializeSafetensors({
      perm: { dtype: 'I32', shape: [m], data: this.perm },
      alive_image: { dtype: 'I32', shape: [m], data: Int32Array.from(this.stats.aliveImage) },
      alive_text: { dtype: 'I32', shape: [m], data: Int32Array.from(this.stats.aliveText) },
      matched_correlation: { dtype: 'F32', shape: [m], data: this.stats.matchedCorrelation },
    });
    const checksums: Record<string, string> = {};
    for (const [name, f] of Object.entries(files)) checksums[name] = taggedSha256(f);
    const meta = { format_version: PAIR_FORMAT_VERSION, n: this.stats.n, normalization: this.normalizer.toJSON(), checksums };
    files[META_FILE] = sealJson(meta); // alignment.json checksums itself too
    await writeDirectoryAtomic(dir, files);
  }

  /**
   * Loads a pair written by save(), validated: alignment.json (format 1, or 2 with checksums that must match),
   * a permutation that is a bijection, alive masks of 0/1, matched correlations in [-1, 1] (0 where a side is
   * dead), SAE widths that agree. Anything else is ERR_FORMAT naming the file; a missing file is ERR_IO.
   */
  static async load(dir: string): Promise<AlignedPair> {
    if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', `AlignedPair.load needs the directory of a saved pair, got ${describe(dir)}`);
    await recoverDirectory(dir); // a save interrupted between its two renames
    const metaFile = path.join(dir, META_FILE);
    const meta = parsePairMeta(await readPairFile(metaFile, dir), metaFile);
    const tFile = path.join(dir, TENSORS_FILE);
    const tBytes = await readPairFile(tFile, dir);
    if (meta.checksums) {
      for (const [name, want] of Object.entries(meta.checksums)) {
        const bytes = name === TENSORS_FILE ? tBytes : await readPairFile(path.join(dir, name), dir);
        if (taggedSha256(bytes) !== want)
          throw new SaeError('ERR_FORMAT', `${path.join(dir, name)} does not match the checksum in ${metaFile}: the pair is corrupt or was edited; save it again`);
      }
    }
    const arrays = pairArrays(parseSafetensors(tBytes, tFile), tFile);
    const image = await TopKSAE.load(path.join(dir, 'image'));
    let text: TopKSAE;
    try {
      text = await TopKSAE.load(path.join(dir, 'text'));
    } catch (e) {
      image.dispose();
      throw e;
    }
    const m = arrays.perm.length;
    if (image.m !== m || text.m !== m) {
      image.dispose();
      text.dispose();
      throw new SaeError('ERR_FORMAT', `${dir}: the permutation has ${m} entries but the SAEs have ${image.m} (image) and ${text.m} (text) latents`);
    }
    const stats: AlignmentStats = { n: meta.n, aliveImage: arrays.aliveImage, aliveText: arrays.aliveText, matchedCorrelation: arrays.matched };
    return new AlignedPair(image, text, arrays.perm, stats, meta.normalizer);
  }

  dispose(): void {
    this.image.dispose();
    this.text.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const META_FILE = 'alignment.json';
const TENSORS_FILE = 'alignment.safetensors';
/** 2: alignment.json records the SHA-256 of every other file of the pair. 1 (no checksums) is still read. */
const PAIR_FORMAT_VERSION = 2;
const CHECKSUMMED = ['image/cfg.json', 'image/sae_weights.safetensors', 'text/cfg.json', 'text/sae_weights.safetensors', TENSORS_FILE];


async function readPairFile(file: string, dir: string): Promise<Buffer> {
  try {
    return await readRegularFile(file, 'aligned-pair file');
  } catch (e) {
    if (e instanceof SaeError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
      throw new SaeError('ERR_IO', `${file} is missing: is ${dir} an aligned pair (written by AlignedPair.save or cmsae align)?`, { cause: e });
    throw e;
  }
}

function parsePairMeta(bytes: Buffer, file: string): { n: number; normalizer: NormalizerType; checksums?: Record<string, string> } {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file} ${why}`);
  };
  // Format 2 checksums alignment.json itself (the normalization it holds decides the codes); format 1 has none.
  const j = unsealJson(bytes.toString('utf8'), file, { required: (body) => body.format_version === PAIR_FORMAT_VERSION });
  if (j.format_version !== 1 && j.format_version !== PAIR_FORMAT_VERSION)
    bad(`has format_version ${JSON.stringify(j.format_version)}; this version reads 1 and ${PAIR_FORMAT_VERSION} (a newer crossmodal-sae wrote it?)`);
  if (typeof j.n !== 'number' || !Number.isSafeInteger(j.n) || j.n < 0) bad(`has n = ${JSON.stringify(j.n)}; expected the number of pairs (an integer >= 0)`);
  let normalizer: NormalizerType;
  try {
    normalizer = Normalizer.fromJSON(j.normalization as Parameters<typeof Normalizer.fromJSON>[0]);
  } catch (e) {
    return bad(`has an invalid normalization: ${(e as Error).message}`);
  }
  if (j.format_version === 1) return { n: j.n as number, normalizer };
  const c = j.checksums as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return bad('has no checksums object (format 2)');
  const keys = Object.keys(c).sort();
  if (keys.join() !== [...CHECKSUMMED].sort().join()) bad(`lists checksums for ${keys.join(', ') || 'nothing'}; expected ${CHECKSUMMED.join(', ')}`);
  for (const k of keys) if (typeof c[k] !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(c[k] as string)) bad(`has a malformed checksum for ${k}`);
  return { n: j.n as number, normalizer, checksums: c as Record<string, string> };
}

/** The permutation and alignment statistics of alignment.safetensors, each checked for dtype, shape and range. */
function pairArrays(t: ReturnType<typeof parseSafetensors>, file: string): { perm: Int32Array; aliveImage: Uint8Array; aliveText: Uint8Array; matched: Float32Array } {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
  };
  const get = (name: string, dtype: string) => {
    const x = t.tensors.get(name) ?? bad(`has no tensor '${name}'`);
    if (x.dtype !== dtype || x.shape.length !== 1) bad(`tensor '${name}' must be a 1-D ${dtype} tensor, got ${x.dtype} ${JSON.stringify(x.shape)}`);
    return x.data;
  };
  const perm = Int32Array.from(get('perm', 'I32'));
  const m = perm.length;
  if (m === 0) bad('the permutation is empty');
  const seen = new Uint8Array(m);
  for (let i = 0; i < m; i++) {
    const j = perm[i];
    if (!(j >= 0 && j < m) || seen[j]) bad(`perm is not a bijection of 0..${m - 1} (entry ${i} = ${j})`);
    seen[j] = 1;
  }
  const mask = (name: string) => {
    const a = get(name, 'I32');
    if (a.length !== m) bad(`tensor '${name}' has ${a.length} entries, the permutation ${m}`);
    if (!a.every((v) => v === 0 || v === 1)) bad(`tensor '${name}' must hold only 0 and 1`);
    return Uint8Array.from(a);
  };
  const aliveImage = mask('alive_image');
  const aliveText = mask('alive_text');
  const matched = Float32Array.from(get('matched_correlation', 'F32'));
  if (matched.length !== m) bad(`tensor 'matched_correlation' has ${matched.length} entries, the permutation ${m}`);
  for (let i = 0; i < m; i++) {
    const c = matched[i];
    if (!(Math.abs(c) <= 1 + 1e-4)) bad(`matched_correlation[${i}] = ${c} is not a correlation in [-1, 1]`);
    if (c !== 0 && !(aliveImage[i] && aliveText[perm[i]])) bad(`matched_correlation[${i}] = ${c} but a latent of that pair is dead`);
  }
  return { perm, aliveImage, aliveText, matched };
}
