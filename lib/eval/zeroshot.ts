/**
 * Zero-shot classification in latent space (paper Table 1; reference-implementation §11.2). Class
 * prototypes: each template embedding normalized as trained, averaged per class, L2-normalized, encoded
 * with the text SAE (aligned index space). Images are encoded with the image SAE. Latents whose firing rate
 * over images exceeds `maxFireRate` are dropped from both sides; prediction = argmax_c cos(z_img, z_proto_c)
 * (ties: the lowest class index). The firing rates come from `fireRateImages` (e.g. the training images)
 * when given, else from the evaluated images themselves (the reference's choice).
 */
import { SaeError } from '../errors.js';
import type { Matrix, SparseCodes } from '../types.js';
import { fireCounts, type EvalModel } from './model.js';

export interface ZeroShotOptions {
  /** Latents firing on more than this fraction of images are ignored (1 keeps all). Default 0.5. */
  maxFireRate?: number;
  /** Images whose firing rates decide the filter (default: the evaluated images). */
  fireRateImages?: Matrix;
}

export interface ZeroShotResult {
  accuracy: number;
  classes: number;
  templates: number;
  images: number;
  keptLatents: number;
  keptFraction: number;
  fireRateSource: 'given' | 'evaluated-images';
  /** Per-class accuracy (NaN for classes without images). */
  perClass: number[];
  seconds: number;
}

export function checkMaxFireRate(v: number | undefined): number {
  const x = v ?? 0.5;
  if (!(typeof x === 'number' && x > 0 && x <= 1)) throw new SaeError('ERR_ARG', `maxFireRate must be in (0, 1], got ${x}`);
  return x;
}

/** Firing rate of each latent over coded rows. */
export function fireRates(c: SparseCodes, m: number): Float64Array {
  const f = fireCounts(c, m);
  for (let j = 0; j < m; j++) f[j] /= Math.max(1, c.rows);
  return f;
}

/**
 * Predicted class per image: argmax over prototypes of the cosine of codes restricted to kept latents.
 * Stays in TypeScript: the work is images x k x (prototype postings per latent, about C k / m), a small share of
 * the evaluation. Measured (bench/eval-loops.ts, 2 cores, AVX-512): 50,000 images x 1,000 classes, k = 32,
 * m = 8192, every latent kept: 0.20-0.24 s, against 3.7-4.5 s to encode the images and prototypes (4-6 % of
 * the evaluation; both grow linearly with the images).
 */
export function predictClasses(img: SparseCodes, proto: SparseCodes, keep: Uint8Array): Int32Array {
  const m = keep.length;
  // Prototypes, restricted and normalized, as posting lists per latent.
  const C = proto.rows;
  const pnorm = new Float64Array(C);
  for (let c = 0; c < C; c++)
    for (let s = 0; s < proto.k; s++) {
      const j = proto.indices[c * proto.k + s], v = proto.values[c * proto.k + s];
      if (v !== 0 && keep[j]) pnorm[c] += v * v;
    }
  const post: { c: number; v: number }[][] = Array.from({ length: m }, () => []);
  for (let c = 0; c < C; c++) {
    const inv = 1 / Math.max(Math.sqrt(pnorm[c]), 1e-12);
    for (let s = 0; s < proto.k; s++) {
      const j = proto.indices[c * proto.k + s], v = proto.values[c * proto.k + s];
      if (v !== 0 && keep[j]) post[j].push({ c, v: v * inv });
    }
  }
  const out = new Int32Array(img.rows);
  const score = new Float64Array(C);
  for (let r = 0; r < img.rows; r++) {
    score.fill(0);
    for (let s = 0; s < img.k; s++) {
      const j = img.indices[r * img.k + s], v = img.values[r * img.k + s];
      if (v === 0 || !keep[j]) continue;
      for (const p of post[j]) score[p.c] += v * p.v;
    }
    // The image's own norm does not change the argmax.
    let best = 0;
    for (let c = 1; c < C; c++) if (score[c] > score[best]) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * prompts: classes x templates rows, class-major (rows c*T .. c*T+T-1 are class c's templates);
 * labels: the class of each image.
 */
export async function evaluateZeroShot(model: EvalModel, prompts: Matrix, templates: number, images: Matrix, labels: Int32Array, opts: ZeroShotOptions = {}): Promise<ZeroShotResult> {
  const t0 = performance.now();
  const T = templates;
  if (!Number.isInteger(T) || T < 1) throw new SaeError('ERR_ARG', `templates must be an integer >= 1, got ${T}`);
  if (prompts.rows % T !== 0) throw new SaeError('ERR_SHAPE', `the prompt file has ${prompts.rows} rows, not a multiple of ${T} templates per class`);
  const C = prompts.rows / T;
  if (images.rows === 0) throw new SaeError('ERR_SHAPE', 'zero-shot classification needs at least one labeled image');
  if (labels.length !== images.rows) throw new SaeError('ERR_SHAPE', `${labels.length} labels for ${images.rows} images: give one class per image row`);
  for (let i = 0; i < labels.length; i++)
    if (!(labels[i] >= 0 && labels[i] < C)) throw new SaeError('ERR_RANGE', `image ${i} has class ${labels[i]}, but the prompts define classes 0..${C - 1}`);
  const maxFire = checkMaxFireRate(opts.maxFireRate);
  const p = model.prepare('text', prompts);
  const d = p.cols;
  const protoIn = new Float32Array(C * d);
  for (let c = 0; c < C; c++) {
    for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) protoIn[c * d + j] += p.data[(c * T + t) * d + j] / T;
    if (model.normalizer.kind !== 'none') {
      let s = 0;
      for (let j = 0; j < d; j++) s += protoIn[c * d + j] ** 2;
      const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
      for (let j = 0; j < d; j++) protoIn[c * d + j] *= inv;
    }
  }
  const proto = await model.encode('text', { rows: C, cols: d, data: protoIn });
  const img = await model.encode('image', model.prepare('image', images));
  const rateCodes = opts.fireRateImages ? await model.encode('image', model.prepare('image', opts.fireRateImages)) : img;
  const rates = fireRates(rateCodes, model.m);
  const keep = new Uint8Array(model.m);
  let kept = 0;
  for (let j = 0; j < model.m; j++) if (rates[j] <= maxFire) (keep[j] = 1), kept++;
  const pred = predictClasses(img, proto, keep);
  let right = 0;
  const hit = new Float64Array(C), tot = new Float64Array(C);
  for (let i = 0; i < pred.length; i++) {
    tot[labels[i]]++;
    if (pred[i] === labels[i]) right++, hit[labels[i]]++;
  }
  return {
    accuracy: right / Math.max(1, pred.length),
    classes: C,
    templates: T,
    images: images.rows,
    keptLatents: kept,
    keptFraction: kept / model.m,
    fireRateSource: opts.fireRateImages ? 'given' : 'evaluated-images',
    perClass: Array.from(hit, (h, c) => (tot[c] ? h / tot[c] : NaN)),
    seconds: (performance.now() - t0) / 1000,
  };
}
