/**
 * An aligned pair of modality-specific SAEs (the paper's post-hoc method): the image SAE as trained, the
 * text SAE with its latents permuted so that text latent i is the one matched to image latent i, the
 * permutation, the alignment statistics and the input normalization. Both modalities encode into one
 * latent index space.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import type { Modality, Normalizer as NormalizerType } from '../data/paired.js';
import { Normalizer } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { writeDirectoryAtomic } from '../io/atomic.js';
import { checkpointFiles } from '../io/checkpoint.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { TopKSAE, type SaeWeights } from '../sae/topk-sae.js';
import type { Matrix, SparseCodes } from '../types.js';
import type { CorrelationResult } from './correlation.js';
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
    if (image.m !== text.m) throw new SaeError('ERR_SHAPE', `post-hoc alignment needs SAEs of equal width (image m = ${image.m}, text m = ${text.m})`);
    const perm = alignLatents(r, { signed: opts.signed ?? true });
    const m = image.m;
    const matched = new Float32Array(m);
    for (let i = 0; i < m; i++) matched[i] = r.correlation.data[i * m + perm[i]];
    const permuted = TopKSAE.fromWeights(permuteLatents(text.getWeights(), perm), { ...text.options, d: undefined, m: undefined });
    const img = TopKSAE.fromWeights(image.getWeights(), { ...image.options, d: undefined, m: undefined });
    return new AlignedPair(img, permuted, perm, { n: r.n, aliveImage: Uint8Array.from(r.aliveA), aliveText: Uint8Array.from(r.aliveB), matchedCorrelation: matched }, opts.normalizer ?? new Normalizer('none'));
  }

  /** Codes of one modality in the shared latent index space (x normalized by the pair's normalizer first). */
  encode(side: Modality, x: Matrix, opts: { normalized?: boolean } = {}): SparseCodes {
    const sae = side === 'image' ? this.image : this.text;
    if (opts.normalized) return sae.encode(x);
    const data = Float32Array.from(x.data);
    this.normalizer.apply(side, data, x.rows, x.cols);
    return sae.encode({ rows: x.rows, cols: x.cols, data });
  }

  /** Writes image/, text/ (SAE checkpoints, text permuted), alignment.safetensors and alignment.json atomically. */
  async save(dir: string): Promise<void> {
    const files: Record<string, Uint8Array | string> = {};
    for (const [name, f] of Object.entries(checkpointFiles(this.image, { includeTrainingState: false }))) files[`image/${name}`] = f;
    for (const [name, f] of Object.entries(checkpointFiles(this.text, { includeTrainingState: false }))) files[`text/${name}`] = f;
    const m = this.perm.length;
    files['alignment.safetensors'] = serializeSafetensors({
      perm: { dtype: 'I32', shape: [m], data: this.perm },
      alive_image: { dtype: 'I32', shape: [m], data: Int32Array.from(this.stats.aliveImage) },
      alive_text: { dtype: 'I32', shape: [m], data: Int32Array.from(this.stats.aliveText) },
      matched_correlation: { dtype: 'F32', shape: [m], data: this.stats.matchedCorrelation },
    });
    files['alignment.json'] = JSON.stringify({ format_version: 1, n: this.stats.n, normalization: this.normalizer.toJSON() }, null, 2) + '\n';
    await writeDirectoryAtomic(dir, files);
  }

  static async load(dir: string): Promise<AlignedPair> {
    let meta: { format_version: number; n: number; normalization: Parameters<typeof Normalizer.fromJSON>[0] };
    const metaFile = path.join(dir, 'alignment.json');
    try {
      meta = JSON.parse(await fs.readFile(metaFile, 'utf8'));
    } catch (e) {
      throw new SaeError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ERR_IO' : 'ERR_FORMAT', `${metaFile} is missing or not JSON: is ${dir} an aligned pair?`);
    }
    if (meta.format_version !== 1) throw new SaeError('ERR_FORMAT', `${metaFile}: unsupported format_version ${meta.format_version}`);
    const tFile = path.join(dir, 'alignment.safetensors');
    const t = parseSafetensors(await fs.readFile(tFile).catch(() => {
      throw new SaeError('ERR_IO', `${tFile} is missing`);
    }), tFile);
    const get = (name: string) => {
      const x = t.tensors.get(name);
      if (!x) throw new SaeError('ERR_FORMAT', `${tFile} has no tensor '${name}'`);
      return x.data;
    };
    const image = await TopKSAE.load(path.join(dir, 'image'));
    let text: TopKSAE;
    try {
      text = await TopKSAE.load(path.join(dir, 'text'));
    } catch (e) {
      image.dispose();
      throw e;
    }
    const perm = Int32Array.from(get('perm'));
    if (perm.length !== image.m || text.m !== image.m) {
      image.dispose();
      text.dispose();
      throw new SaeError('ERR_FORMAT', `${dir}: permutation and SAE widths disagree`);
    }
    const stats: AlignmentStats = {
      n: meta.n,
      aliveImage: Uint8Array.from(get('alive_image')),
      aliveText: Uint8Array.from(get('alive_text')),
      matchedCorrelation: Float32Array.from(get('matched_correlation')),
    };
    return new AlignedPair(image, text, perm, stats, Normalizer.fromJSON(meta.normalization));
  }

  dispose(): void {
    this.image.dispose();
    this.text.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
