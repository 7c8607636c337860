/**
 * Numerical check of Propositions 1 and 2 (n = 1): the paper's simplified SAE (one tied weight matrix W with
 * unit-norm columns, Top-1 activation, no biases), inputs phi z and psi z with z ~ Exp(1) (E[z] = 1,
 * E[z^2] = 2), rho = phi . psi. With top-1 codes the expected objective has a closed form in the two
 * selected columns (a = max(0, max_j w_j.phi), b likewise for psi):
 *   rec = E[z^2] (2 - a^2 - b^2)
 *   group-sparse (Prop. 1): + lambda E[z] (same column ? sqrt(a^2 + b^2) : a + b)
 *   Iso-Energy inner product (Prop. 2): - lambda E[z^2] (same column ? a b : 0)
 * The minimizer is searched by projected gradient descent from many random starts (best of N), and its
 * configuration classified as two columns [phi psi], one column (phi+psi)/|phi+psi|, or dead. Bisection on
 * lambda then locates where the configuration switches; the closed forms are lambda*(rho) and lambda**(rho).
 */
import { rng32 as rng } from '../data/paired.js';

export type TheoryLoss = 'group' | 'iso';
export type Configuration = 'two' | 'one' | 'dead' | 'other';

const EZ = 1, EZ2 = 2;

export function lambdaStar(loss: TheoryLoss, rho: number): number {
  return loss === 'group' ? ((1 - rho) * EZ2) / ((2 - Math.sqrt(1 + rho)) * EZ) : (2 * (1 - rho)) / (1 + rho);
}

export function lambdaStarStar(rho: number): number {
  return (Math.sqrt(1 + rho) * EZ2) / EZ;
}

interface Problem {
  d: number;
  m: number;
  phi: number[];
  psi: number[];
  loss: TheoryLoss;
  lambda: number;
}

function top1(W: number[], p: Problem, x: number[]): { j: number; v: number } {
  let j = -1, v = 0;
  for (let c = 0; c < p.m; c++) {
    let s = 0;
    for (let i = 0; i < p.d; i++) s += W[c * p.d + i] * x[i];
    if (s > v) [v, j] = [s, c];
  }
  return { j, v };
}

/** The exact expected objective of W (columns stored as rows of length d). */
export function objective(W: number[], p: Problem): number {
  const A = top1(W, p, p.phi), B = top1(W, p, p.psi);
  const a = A.v, b = B.v;
  const rec = EZ2 * (2 - a * a - b * b);
  if (p.loss === 'group') return rec + p.lambda * EZ * (A.j >= 0 && A.j === B.j ? Math.sqrt(a * a + b * b) : a + b);
  return rec - p.lambda * EZ2 * (A.j >= 0 && A.j === B.j ? a * b : 0);
}

function normalizeColumns(W: number[], p: Problem): void {
  for (let c = 0; c < p.m; c++) {
    let s = 0;
    for (let i = 0; i < p.d; i++) s += W[c * p.d + i] ** 2;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let i = 0; i < p.d; i++) W[c * p.d + i] *= inv;
  }
}

/** Projected gradient descent (central-difference gradients) from one random start. */
function descend(p: Problem, r: () => number, steps: number): { W: number[]; f: number } {
  const n = p.m * p.d;
  const W = Array.from({ length: n }, () => 2 * r() - 1);
  normalizeColumns(W, p);
  let lr = 0.05;
  let f = objective(W, p);
  const g = new Array<number>(n);
  for (let s = 0; s < steps; s++) {
    for (let q = 0; q < n; q++) {
      const w = W[q];
      W[q] = w + 1e-6;
      const up = objective(W, p);
      W[q] = w - 1e-6;
      const dn = objective(W, p);
      W[q] = w;
      g[q] = (up - dn) / 2e-6;
    }
    const trial = W.map((w, q) => w - lr * g[q]);
    normalizeColumns(trial, p);
    const ft = objective(trial, p);
    if (ft <= f) {
      for (let q = 0; q < n; q++) W[q] = trial[q];
      f = ft;
      lr = Math.min(0.5, lr * 1.2);
    } else lr *= 0.5;
    if (lr < 1e-7) break;
  }
  return { W, f };
}

/** Configuration of a W: which columns phi and psi select, and how well. */
export function classify(W: number[], p: Problem): Configuration {
  const A = top1(W, p, p.phi), B = top1(W, p, p.psi);
  if (A.v < 1e-3 && B.v < 1e-3) return 'dead';
  if (A.j !== B.j && A.v > 0.99 && B.v > 0.99) return 'two';
  if (A.j === B.j && A.j >= 0) return 'one';
  return 'other';
}

/** phi, psi in R^d with phi . psi = rho. */
function pairAt(rho: number, d: number): { phi: number[]; psi: number[] } {
  const phi = new Array<number>(d).fill(0), psi = new Array<number>(d).fill(0);
  phi[0] = 1;
  psi[0] = rho;
  psi[1] = Math.sqrt(1 - rho * rho);
  return { phi, psi };
}

/** Best of `restarts` descents at one lambda: the minimizer's configuration and objective. */
export function minimizerAt(loss: TheoryLoss, rho: number, lambda: number, opts: { d?: number; m?: number; restarts?: number; steps?: number; seed?: number } = {}): { config: Configuration; f: number } {
  const d = opts.d ?? 3, m = opts.m ?? 3;
  const p: Problem = { d, m, ...pairAt(rho, d), loss, lambda };
  const r = rng(opts.seed ?? 7);
  let best: { W: number[]; f: number } | null = null;
  for (let k = 0; k < (opts.restarts ?? 64); k++) {
    const run = descend(p, r, opts.steps ?? 150);
    if (!best || run.f < best.f) best = run;
  }
  return { config: classify(best!.W, p), f: best!.f };
}

/** The lambda in [lo, hi] where the minimizer's configuration changes from `from` (bisection to `tol`). */
export function switchPoint(loss: TheoryLoss, rho: number, from: Configuration, lo: number, hi: number, opts: { restarts?: number; tol?: number } = {}): number {
  const tol = opts.tol ?? 0.005;
  for (let it = 0; it < 40 && hi - lo > tol * lo; it++) {
    const mid = (lo + hi) / 2;
    if (minimizerAt(loss, rho, mid, { restarts: opts.restarts }).config === from) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface TheoryRow {
  loss: TheoryLoss;
  rho: number;
  kind: 'lambda*' | 'lambda**';
  predicted: number;
  measured: number;
  relativeError: number;
}

/** Switch points for rho in {0.2, 0.5, 0.8}: group-sparse lambda* and lambda**, Iso-Energy lambda*. */
export function theoryCheck(opts: { rhos?: number[]; restarts?: number } = {}): TheoryRow[] {
  const rows: TheoryRow[] = [];
  for (const rho of opts.rhos ?? [0.2, 0.5, 0.8]) {
    for (const loss of ['group', 'iso'] as const) {
      const ls = lambdaStar(loss, rho);
      const m1 = switchPoint(loss, rho, 'two', 0.5 * ls, loss === 'group' ? Math.min(1.5 * ls, 0.5 * (ls + lambdaStarStar(rho))) : 1.5 * ls, opts);
      rows.push({ loss, rho, kind: 'lambda*', predicted: ls, measured: m1, relativeError: Math.abs(m1 - ls) / ls });
      if (loss === 'group') {
        const lss = lambdaStarStar(rho);
        const m2 = switchPoint(loss, rho, 'one', Math.max(ls, 0.6 * lss) * 1.01, 1.5 * lss, opts);
        rows.push({ loss, rho, kind: 'lambda**', predicted: lss, measured: m2, relativeError: Math.abs(m2 - lss) / lss });
      }
    }
  }
  return rows;
}
