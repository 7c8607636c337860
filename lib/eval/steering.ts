/**
 * Cross-modal concept steering (paper Figure 7; reference-implementation §11.3). For each concept: the text
 * latent with the largest mean activation difference between captions with the concept and an equal number
 * of random captions without it; the image latent with the same index (the aligned frame: meaningful for a
 * shared SAE or an aligned pair, the intended failure for unaligned separate SAEs) is added with strength
 * alpha (in decoder-row-norm units) to the dense codes of source images without the concept, decoded without
 * re-applying Top-K, L2-normalized, and used to rank every evaluation image and caption by cosine. Success:
 * images / captions with the concept rank high (AP, reciprocal rank, NDCG@10, P@K, R@K, median rank).
 *
 * Dead slots: the image latent of a concept can be one that never fires (an aligned pair matches its leftover
 * alive text latents with dead image latents; a shared SAE's text-only latent never fires on images). Each
 * concept records whether its image and text latents are alive: they fire on at least one evaluation image /
 * caption (the reference's image_slot_alive) and, where the model knows it (an aligned pair's alignment
 * statistics), on the training pairs. `deadSlots: 'flag'` (default: every method is scored on the same
 * concepts, as the reference) keeps them and lists them; 'skip' leaves them out with the reason.
 */
import { rng32 } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { Matrix, SparseCodes } from '../types.js';
import { rankingMetricsAsync, type RankingMetrics } from './kernels.js';
import { fireCounts, rowCosine, takeRows, type EvalModel } from './model.js';
import { selectCodes } from './retrieval.js';

export const STEERING_ALPHAS = [0, 0.1, 0.25, 0.5, 1, 2];
export const STEERING_KS = [1, 5, 10, 50, 100];

export interface SteeringOptions {
  alphas?: number[];
  /** Source images per concept (default 100). */
  sources?: number;
  /** Concepts with fewer off-concept images are skipped (default 50, as the reference). */
  minOffImages?: number;
  ks?: number[];
  seed?: number;
  /** Concepts whose image or text latent is dead: 'flag' (default; kept and listed) or 'skip'. */
  deadSlots?: 'flag' | 'skip';
}

/** Metrics averaged over the source images of one concept, one side ('img': ranking images, 'txt': captions). */
export interface SideMetrics {
  map: number;
  mrr: number;
  ndcg10: number;
  medianRank: number;
  precisionAt: Record<string, number>;
  recallAt: Record<string, number>;
}

export interface ConceptSteering {
  concept: string;
  alpha: number;
  latentText: number;
  latentImage: number;
  meanDiff: number;
  nPositive: number;
  nNegative: number;
  nSources: number;
  nOnImages: number;
  /** The image latent fires on some evaluation image (and on the training pairs, where that is known). */
  imageSlotAlive: boolean;
  /** The text latent fires on some evaluation caption (and on the training pairs, where that is known). */
  textSlotAlive: boolean;
  /** Evaluation images / captions on which the concept's image / text latent fires. */
  imageSlotFires: number;
  textSlotFires: number;
  /** The latent was alive on the training pairs (null: the model does not record it). */
  imageSlotAliveTrain: boolean | null;
  textSlotAliveTrain: boolean | null;
  /** Mean cosine between the steered and the source embedding. */
  preserve: number;
  img: SideMetrics;
  txt: SideMetrics;
}

export interface SteeringResult {
  alphas: number[];
  concepts: {
    evaluated: number;
    skipped: { concept: string; reason: string }[];
    /** Evaluated concepts steered through a dead image latent / read from a dead text latent (deadSlots 'flag'). */
    deadImageSlot: string[];
    deadTextSlot: string[];
  };
  deadSlots: 'flag' | 'skip';
  /** Per alpha: means over concepts (NaN values dropped). */
  perAlpha: { alpha: number; preserve: number; img: SideMetrics; txt: SideMetrics }[];
  perConcept: ConceptSteering[];
  seconds: number;
}

function nanMean(xs: ArrayLike<number>): number {
  let s = 0, n = 0;
  for (let i = 0; i < xs.length; i++) if (!Number.isNaN(xs[i])) (s += xs[i]), n++;
  return n ? s / n : NaN;
}

function summarize(r: RankingMetrics, ks: number[]): SideMetrics {
  return {
    map: nanMean(r.ap),
    mrr: nanMean(r.rr),
    ndcg10: nanMean(r.ndcg10),
    medianRank: nanMean(r.medianRank),
    precisionAt: Object.fromEntries(ks.map((k) => [String(k), nanMean(r.precisionAt[k])])),
    recallAt: Object.fromEntries(ks.map((k) => [String(k), nanMean(r.recallAt[k])])),
  };
}

function meanSide(xs: SideMetrics[], ks: number[]): SideMetrics {
  return {
    map: nanMean(xs.map((x) => x.map)),
    mrr: nanMean(xs.map((x) => x.mrr)),
    ndcg10: nanMean(xs.map((x) => x.ndcg10)),
    medianRank: nanMean(xs.map((x) => x.medianRank)),
    precisionAt: Object.fromEntries(ks.map((k) => [String(k), nanMean(xs.map((x) => x.precisionAt[String(k)]))])),
    recallAt: Object.fromEntries(ks.map((k) => [String(k), nanMean(xs.map((x) => x.recallAt[String(k)]))])),
  };
}

/** FNV-1a of a string (the per-concept source-image seed; the reference uses md5). */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** `count` distinct elements of `pool` (order kept from the draw), seeded. */
function choose(pool: number[], count: number, next: () => number): number[] {
  const a = pool.slice();
  const n = Math.min(count, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(next() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

/** The text latent with the largest mean(z[pos]) - mean(z[neg]) (ties: the lowest index). */
export function conceptLatent(codes: SparseCodes, pos: number[], neg: number[], m: number): { latent: number; diff: number } {
  const diff = new Float64Array(m);
  const add = (rows: number[], w: number) => {
    for (const r of rows)
      for (let s = 0; s < codes.k; s++) diff[codes.indices[r * codes.k + s]] += (w * codes.values[r * codes.k + s]) / rows.length;
  };
  add(pos, 1);
  if (neg.length) add(neg, -1);
  let best = 0;
  for (let j = 1; j < m; j++) if (diff[j] > diff[best]) best = j;
  return { latent: best, diff: diff[best] };
}

/** Validated steering options with defaults (duplicate strengths dropped, order kept). */
export function steeringOptions(o: SteeringOptions = {}): Required<SteeringOptions> {
  const alphas = [...new Set(o.alphas ?? STEERING_ALPHAS)];
  if (alphas.length === 0 || alphas.some((a) => typeof a !== 'number' || !Number.isFinite(a))) throw new SaeError('ERR_ARG', 'steering needs at least one finite strength (alphas)');
  const ks = [...new Set(o.ks ?? STEERING_KS)];
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) throw new SaeError('ERR_ARG', 'steering ks must be integers >= 1');
  const r = { alphas, ks, sources: o.sources ?? 100, minOffImages: o.minOffImages ?? 50, seed: o.seed ?? 0, deadSlots: o.deadSlots ?? 'flag' };
  if (r.deadSlots !== 'flag' && r.deadSlots !== 'skip') throw new SaeError('ERR_ARG', `steering deadSlots must be 'flag' or 'skip', got '${String(r.deadSlots)}'`);
  if (!Number.isInteger(r.sources) || r.sources < 1) throw new SaeError('ERR_ARG', `steering sources must be an integer >= 1, got ${r.sources}`);
  if (!Number.isInteger(r.minOffImages) || r.minOffImages < 0) throw new SaeError('ERR_ARG', `steering minOffImages must be an integer >= 0, got ${r.minOffImages}`);
  if (!Number.isInteger(r.seed) || r.seed < 0) throw new SaeError('ERR_ARG', `steering seed must be an integer >= 0, got ${r.seed}`);
  return r;
}

export async function evaluateSteering(
  model: EvalModel,
  images: Matrix,
  texts: Matrix,
  concepts: string[],
  imageConcepts: Int32Array[],
  textConcepts: Int32Array[],
  opts: SteeringOptions = {},
): Promise<SteeringResult> {
  const t0 = performance.now();
  const { alphas, ks, sources: nSources, minOffImages: minOff, seed, deadSlots } = steeringOptions(opts);
  if (imageConcepts.length !== images.rows) throw new SaeError('ERR_SHAPE', `concept labels for ${imageConcepts.length} images, but there are ${images.rows} image rows`);
  if (textConcepts.length !== texts.rows) throw new SaeError('ERR_SHAPE', `concept labels for ${textConcepts.length} captions, but there are ${texts.rows} caption rows`);
  const pImg = model.prepare('image', images);
  const pTxt = model.prepare('text', texts);
  const zTxt = await model.encode('text', pTxt);
  const zImg = await model.encode('image', pImg);
  const W = model.image.getWeights().W_dec;
  const d = pImg.cols, k = zImg.k;
  const fireImg = fireCounts(zImg, model.m), fireTxt = fireCounts(zTxt, model.m);
  const negRng = rng32(seed);
  const perConcept: ConceptSteering[] = [];
  const skipped: { concept: string; reason: string }[] = [];
  const deadImageSlot: string[] = [], deadTextSlot: string[] = [];
  const has = (sets: Int32Array[], c: number) => sets.map((s) => s.includes(c));
  for (let c = 0; c < concepts.length; c++) {
    const name = concepts[c];
    const capHas = has(textConcepts, c);
    const pos: number[] = [], negPool: number[] = [];
    capHas.forEach((h, i) => (h ? pos : negPool).push(i));
    if (pos.length < 1) {
      skipped.push({ concept: name, reason: 'no caption mentions it' });
      continue;
    }
    const neg = choose(negPool, Math.min(negPool.length, pos.length), negRng);
    const { latent, diff } = conceptLatent(zTxt, pos, neg, model.m);
    const imgHas = has(imageConcepts, c);
    const on: number[] = [], off: number[] = [];
    imgHas.forEach((h, i) => (h ? on : off).push(i));
    if (on.length === 0 || off.length < minOff) {
      skipped.push({ concept: name, reason: on.length === 0 ? 'no image carries it' : `only ${off.length} images lack it (< ${minOff})` });
      continue;
    }
    const slot = slotLiveness(latent, fireImg, fireTxt, model.trainAlive);
    if (deadSlots === 'skip' && !(slot.imageSlotAlive && slot.textSlotAlive)) {
      skipped.push({ concept: name, reason: deadReason(latent, slot) });
      continue;
    }
    if (!slot.imageSlotAlive) deadImageSlot.push(name);
    if (!slot.textSlotAlive) deadTextSlot.push(name);
    const sources = choose(off, nSources, rng32((seed + hashString(name)) >>> 0)).sort((a, b) => a - b);
    const base = selectCodes(zImg, sources);
    const baseX = takeRows(pImg, sources);
    let wn = 0;
    for (let j = 0; j < d; j++) wn += W.data[latent * d + j] ** 2;
    const unit = 1 / Math.max(Math.sqrt(wn), 1e-12);
    const relTxt = Uint8Array.from(capHas, Number);
    const relImg = Uint8Array.from(imgHas, Number);
    for (const alpha of alphas) {
      // Source codes plus one slot (latent, alpha / ||w_latent||); decode sums the slots (no Top-K again).
      const steer: SparseCodes = { rows: base.rows, k: k + 1, indices: new Int32Array(base.rows * (k + 1)), values: new Float32Array(base.rows * (k + 1)) };
      for (let r = 0; r < base.rows; r++) {
        steer.indices.set(base.indices.subarray(r * k, (r + 1) * k), r * (k + 1));
        steer.values.set(base.values.subarray(r * k, (r + 1) * k), r * (k + 1));
        steer.indices[r * (k + 1) + k] = latent;
        steer.values[r * (k + 1) + k] = alpha * unit;
      }
      const q = model.image.decode(steer);
      let preserve = 0;
      for (let r = 0; r < q.rows; r++) preserve += rowCosine(q.data, r, baseX.data, r, d);
      const [mi, mt] = await Promise.all([rankingMetricsAsync(q, pImg, relImg, ks), rankingMetricsAsync(q, pTxt, relTxt, ks)]);
      perConcept.push({
        concept: name,
        alpha,
        latentText: latent,
        latentImage: latent,
        meanDiff: diff,
        nPositive: pos.length,
        nNegative: neg.length,
        nSources: sources.length,
        nOnImages: on.length,
        ...slot,
        preserve: preserve / q.rows,
        img: summarize(mi, ks),
        txt: summarize(mt, ks),
      });
    }
  }
  const perAlpha = alphas.map((alpha) => {
    const rows = perConcept.filter((r) => r.alpha === alpha);
    return { alpha, preserve: nanMean(rows.map((r) => r.preserve)), img: meanSide(rows.map((r) => r.img), ks), txt: meanSide(rows.map((r) => r.txt), ks) };
  });
  return { alphas, concepts: { evaluated: perConcept.length / Math.max(1, alphas.length), skipped, deadImageSlot, deadTextSlot }, deadSlots, perAlpha, perConcept, seconds: (performance.now() - t0) / 1000 };
}

type SlotLiveness = Pick<ConceptSteering, 'imageSlotAlive' | 'textSlotAlive' | 'imageSlotFires' | 'textSlotFires' | 'imageSlotAliveTrain' | 'textSlotAliveTrain'>;

function slotLiveness(latent: number, fireImg: Float64Array, fireTxt: Float64Array, train: EvalModel['trainAlive']): SlotLiveness {
  const imageSlotAliveTrain = train ? train.image[latent] !== 0 : null;
  const textSlotAliveTrain = train ? train.text[latent] !== 0 : null;
  return {
    imageSlotAlive: fireImg[latent] > 0 && imageSlotAliveTrain !== false,
    textSlotAlive: fireTxt[latent] > 0 && textSlotAliveTrain !== false,
    imageSlotFires: fireImg[latent],
    textSlotFires: fireTxt[latent],
    imageSlotAliveTrain,
    textSlotAliveTrain,
  };
}

function deadReason(latent: number, s: SlotLiveness): string {
  const side = (what: string, fires: number, train: boolean | null, n: string) =>
    `the ${what} latent ${latent} is dead (fires on ${fires} evaluation ${n}${train === false ? '; dead on the training pairs' : ''})`;
  const parts: string[] = [];
  if (!s.imageSlotAlive) parts.push(side('image', s.imageSlotFires, s.imageSlotAliveTrain, 'images'));
  if (!s.textSlotAlive) parts.push(side('text', s.textSlotFires, s.textSlotAliveTrain, 'captions'));
  return parts.join('; ');
}

/** One CSV line per (concept, alpha). */
export function steeringCsv(r: SteeringResult): string {
  const ks = Object.keys(r.perConcept[0]?.img.precisionAt ?? {});
  const side = (p: string) => ['map', 'mrr', 'ndcg10', 'median_rank', ...ks.map((k) => `p@${k}`), ...ks.map((k) => `r@${k}`)].map((x) => `${x}_${p}`);
  const head = ['concept', 'alpha', 'latent_text', 'latent_image', 'image_slot_alive', 'text_slot_alive', 'image_slot_fires', 'text_slot_fires', 'mean_diff', 'n_pos', 'n_neg', 'n_sources', 'n_on_images', 'preserve', ...side('img'), ...side('txt')];
  const vals = (m: SideMetrics) => [m.map, m.mrr, m.ndcg10, m.medianRank, ...ks.map((k) => m.precisionAt[k]), ...ks.map((k) => m.recallAt[k])];
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = r.perConcept.map((c) => [q(c.concept), c.alpha, c.latentText, c.latentImage, Number(c.imageSlotAlive), Number(c.textSlotAlive), c.imageSlotFires, c.textSlotFires, c.meanDiff, c.nPositive, c.nNegative, c.nSources, c.nOnImages, c.preserve, ...vals(c.img), ...vals(c.txt)].join(','));
  return [head.join(','), ...lines].join('\n') + '\n';
}
