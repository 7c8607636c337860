/**
 * Synthetic paired embeddings with ground-truth concepts (paper App. D.2). Defaults follow the authors'
 * code (reference-implementation §6) where the paper is silent or differs, each as an option:
 * bounded interference within each dictionary block only (option: check it across blocks too), shared
 * concepts with one support but independent magnitudes per modality (option: identical, as the paper), rows
 * L2-normalized. One difference from the code: psi_i is built at cos(phi_i, psi_i) = alpha exactly (the
 * code optimizes to alpha +- 0.01).
 */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import type { Matrix } from '../types.js';

export interface SynthOptions {
  d?: number;
  nShared?: number;
  nImage?: number;
  nText?: number;
  /** Probability that a concept is inactive in a row (the paper's s). Default 0.99. */
  sparsity?: number;
  /** Observation noise std. Default 0.05. */
  noise?: number;
  /** cos(phi_i, psi_i) of every shared concept. */
  alpha: number;
  nTrain?: number;
  nEval?: number;
  /** Bound on positive pairwise interference within each dictionary block. Default 0.30. */
  maxInterference?: number;
  /**
   * Bound |cos| between the atoms of any two distinct concepts, within and across blocks and modalities (the
   * paper's statement; the authors' code bounds positive dots within each block only). Default false.
   */
  boundAcrossBlocks?: boolean;
  /** 'independent' (default, the code) or 'identical' (the paper) magnitudes of a shared concept. */
  sharedMagnitudes?: 'independent' | 'identical';
  l2Normalize?: boolean;
  seed?: number;
}

export interface SynthData {
  options: Required<SynthOptions>;
  train: { image: Matrix; text: Matrix };
  eval: { image: Matrix; text: Matrix };
  /** Ground truth, one unit atom per row: [nImage, d], [nShared, d], [nShared, d], [nText, d]. */
  phiImage: Matrix;
  phiShared: Matrix;
  psiShared: Matrix;
  psiText: Matrix;
  /** Realized cos(phi_i, psi_i): mean and population std. */
  alphaActual: { mean: number; std: number };
  /** Largest positive interference within each block, and across all image atoms / all text atoms / image x text (distinct concepts). */
  interference: { phiImage: number; phiShared: number; psiText: number; crossImage: number; crossText: number; crossModal: number };
}

export const SYNTH_DEFAULTS = {
  d: 256,
  nShared: 1024,
  nImage: 512,
  nText: 512,
  sparsity: 0.99,
  noise: 0.05,
  nTrain: 50_000,
  nEval: 10_000,
  maxInterference: 0.3,
  boundAcrossBlocks: false,
  sharedMagnitudes: 'independent' as const,
  l2Normalize: true,
  seed: 1,
};

function maxCross(a: Float32Array, na: number, b: Float32Array, nb: number, d: number, skipDiagonal: boolean): number {
  let mx = -Infinity;
  for (let i = 0; i < na; i++)
    for (let j = 0; j < nb; j++) {
      if (skipDiagonal && i === j) continue;
      let s = 0;
      for (let c = 0; c < d; c++) s += a[i * d + c] * b[j * d + c];
      if (s > mx) mx = s;
    }
  return mx;
}

/** Largest number of floats in one generated matrix (4 GiB). */
const MAX_ELEMENTS = 2 ** 30;

/** The options with their defaults, every value checked (typed ERR_ARG naming the option). */
export function generatorOptions(o: SynthOptions): Required<SynthOptions> {
  if (typeof o !== 'object' || o === null) throw new SaeError('ERR_ARG', 'synthetic options must be an object');
  const opt = { ...SYNTH_DEFAULTS, ...o } as Required<SynthOptions>;
  const bad = (name: string, what: string) => new SaeError('ERR_ARG', `${name} must be ${what}, got ${String((opt as unknown as Record<string, unknown>)[name])}`);
  const int = (name: keyof SynthOptions, lo: number, hi: number) => {
    const v = opt[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(name, `an integer in [${lo}, ${hi}]`);
  };
  int('d', 2, 1 << 16);
  int('nShared', 1, 1 << 20);
  int('nImage', 0, 1 << 20);
  int('nText', 0, 1 << 20);
  int('nTrain', 1, MAX_ELEMENTS);
  int('nEval', 1, MAX_ELEMENTS);
  int('seed', 0, 2 ** 28 - 1);
  if (!(typeof opt.alpha === 'number' && opt.alpha >= 0 && opt.alpha <= 1)) throw bad('alpha', 'a number in [0, 1]');
  if (!(typeof opt.sparsity === 'number' && opt.sparsity >= 0 && opt.sparsity < 1)) throw bad('sparsity', 'a number in [0, 1)');
  if (!(typeof opt.noise === 'number' && opt.noise >= 0 && opt.noise <= 10)) throw bad('noise', 'a number in [0, 10]');
  if (!(typeof opt.maxInterference === 'number' && opt.maxInterference > 0 && opt.maxInterference < 1)) throw bad('maxInterference', 'a number in (0, 1)');
  if (typeof opt.boundAcrossBlocks !== 'boolean') throw bad('boundAcrossBlocks', 'true or false');
  if (typeof opt.l2Normalize !== 'boolean') throw bad('l2Normalize', 'true or false');
  if (opt.sharedMagnitudes !== 'independent' && opt.sharedMagnitudes !== 'identical') throw bad('sharedMagnitudes', "'independent' or 'identical'");
  for (const name of ['nTrain', 'nEval', 'nShared', 'nImage', 'nText'] as const)
    if (opt[name] * opt.d > MAX_ELEMENTS) throw new SaeError('ERR_ARG', `${name} x d = ${opt[name]} x ${opt.d} is more than ${MAX_ELEMENTS} floats; use fewer rows`);
  return opt;
}

export function generateSynthetic(o: SynthOptions): SynthData {
  const opt = generatorOptions(o);
  const { d, nShared, nImage, nText, seed } = opt;
  const n = native();
  let fi: { atoms: Float32Array; maxDot: number }, fs: { atoms: Float32Array; maxDot: number }, pt: { atoms: Float32Array; maxDot: number };
  let psiS: Float32Array;
  if (opt.boundAcrossBlocks) {
    const r = n.synthPairedDictionary(d, nImage, nShared, nText, opt.alpha, opt.maxInterference, seed * 8, 2000);
    fi = { atoms: r.phiImage, maxDot: r.maxAbs };
    fs = { atoms: r.phiShared, maxDot: r.maxAbs };
    pt = { atoms: r.psiText, maxDot: r.maxAbs };
    psiS = r.psiShared;
  } else {
    const dict = (count: number, block: number) => n.synthDictionary(d, count, opt.maxInterference, seed * 8 + block, 2000);
    fi = dict(nImage, 0);
    fs = dict(nShared, 1);
    pt = dict(nText, 2);
    psiS = n.synthPartner(fs.atoms, nShared, d, opt.alpha, seed * 8 + 3);
  }
  const sample = (N: number, split: number) =>
    n.synthSample(fi.atoms, nImage, fs.atoms, nShared, psiS, pt.atoms, nText, d, N, 1 - opt.sparsity, opt.noise, opt.sharedMagnitudes === 'identical', opt.l2Normalize, seed * 8 + 4 + split);
  const tr = sample(opt.nTrain, 0), ev = sample(opt.nEval, 1);
  let s = 0, s2 = 0;
  for (let i = 0; i < nShared; i++) {
    let c = 0;
    for (let k = 0; k < d; k++) c += fs.atoms[i * d + k] * psiS[i * d + k];
    s += c;
    s2 += c * c;
  }
  const mean = s / nShared;
  const m = (rows: number, data: Float32Array): Matrix => ({ rows, cols: d, data });
  return {
    options: opt,
    train: { image: m(opt.nTrain, tr.x), text: m(opt.nTrain, tr.y) },
    eval: { image: m(opt.nEval, ev.x), text: m(opt.nEval, ev.y) },
    phiImage: m(nImage, fi.atoms),
    phiShared: m(nShared, fs.atoms),
    psiShared: m(nShared, psiS),
    psiText: m(nText, pt.atoms),
    alphaActual: { mean, std: Math.sqrt(Math.max(0, s2 / nShared - mean * mean)) },
    interference: { phiImage: fi.maxDot, phiShared: fs.maxDot, psiText: pt.maxDot, crossImage: NaN, crossText: NaN, crossModal: NaN },
  };
}

/** Measures the interference that the generator does not bound (across blocks; O(n^2 d), for reports and tests). */
export function crossInterference(s: SynthData): SynthData['interference'] {
  const d = s.options.d;
  const img = new Float32Array([...s.phiImage.data, ...s.phiShared.data]);
  const txt = new Float32Array([...s.psiShared.data, ...s.psiText.data]);
  const ni = s.phiImage.rows + s.phiShared.rows, nt = s.psiShared.rows + s.psiText.rows;
  // image x text of distinct concepts: shared concept i is row nImage+i on the image side and row i on the text side
  let crossModal = -Infinity;
  for (let i = 0; i < ni; i++)
    for (let j = 0; j < nt; j++) {
      if (i >= s.phiImage.rows && j === i - s.phiImage.rows) continue;
      let v = 0;
      for (let c = 0; c < d; c++) v += img[i * d + c] * txt[j * d + c];
      if (v > crossModal) crossModal = v;
    }
  return { ...s.interference, crossImage: maxCross(img, ni, img, ni, d, true), crossText: maxCross(txt, nt, txt, nt, d, true), crossModal };
}
