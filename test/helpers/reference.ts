/**
 * Plain float64 reference of the Top-K SAE (dense matmul + full sort), its loss, gradients and AdamW.
 * Everything is written for clarity, not speed; tests compare the native kernels against it.
 */

export interface RefParams {
  d: number;
  m: number;
  W_enc: Float64Array; // [d, m] (SAELens orientation)
  b_enc: Float64Array; // [m]
  W_dec: Float64Array; // [m, d]
  b_dec: Float64Array; // [d]
}

export interface RefCodes {
  rows: number;
  k: number;
  indices: Int32Array;
  values: Float64Array;
}

export function cloneParams(p: RefParams): RefParams {
  return { d: p.d, m: p.m, W_enc: p.W_enc.slice(), b_enc: p.b_enc.slice(), W_dec: p.W_dec.slice(), b_dec: p.b_dec.slice() };
}

/** pre[b, j] = sum_i (x[b,i] - b_dec[i]) W_enc[i, j] + b_enc[j] */
export function preActivations(p: RefParams, x: ArrayLike<number>, rows: number): Float64Array {
  const { d, m } = p;
  const pre = new Float64Array(rows * m);
  for (let b = 0; b < rows; b++)
    for (let j = 0; j < m; j++) {
      let s = p.b_enc[j];
      for (let i = 0; i < d; i++) s += (x[b * d + i] - p.b_dec[i]) * p.W_enc[i * m + j];
      pre[b * m + j] = s;
    }
  return pre;
}

/** Per row: ReLU, then the k largest by (value desc, index asc); zeros fill with the smallest unused indices. */
export function refEncode(p: RefParams, x: ArrayLike<number>, rows: number, k: number): RefCodes {
  const { m } = p;
  const pre = preActivations(p, x, rows);
  const indices = new Int32Array(rows * k);
  const values = new Float64Array(rows * k);
  for (let b = 0; b < rows; b++) {
    const order = Array.from({ length: m }, (_, j) => j);
    const v = (j: number) => Math.max(0, pre[b * m + j]);
    order.sort((a, c) => v(c) - v(a) || a - c);
    for (let s = 0; s < k; s++) {
      indices[b * k + s] = order[s];
      values[b * k + s] = v(order[s]);
    }
  }
  return { rows, k, indices, values };
}

/** BatchTopK over R rows: the R*k largest positive ReLU values of the batch (ties: row, then index). */
export function refBatchEncode(p: RefParams, x: ArrayLike<number>, rows: number, k: number): { sets: Map<number, number>[] } {
  const { m } = p;
  const pre = preActivations(p, x, rows);
  const all: { v: number; b: number; j: number }[] = [];
  for (let b = 0; b < rows; b++) for (let j = 0; j < m; j++) if (pre[b * m + j] > 0) all.push({ v: pre[b * m + j], b, j });
  all.sort((a, c) => c.v - a.v || a.b - c.b || a.j - c.j);
  const sets = Array.from({ length: rows }, () => new Map<number, number>());
  for (const e of all.slice(0, rows * k)) sets[e.b].set(e.j, e.v);
  return { sets };
}

export function refDecode(p: RefParams, codes: { rows: number; k: number; indices: ArrayLike<number>; values: ArrayLike<number> }): Float64Array {
  const { d } = p;
  const out = new Float64Array(codes.rows * d);
  for (let b = 0; b < codes.rows; b++) {
    for (let i = 0; i < d; i++) out[b * d + i] = p.b_dec[i];
    for (let s = 0; s < codes.k; s++) {
      const j = codes.indices[b * codes.k + s];
      const v = codes.values[b * codes.k + s];
      for (let i = 0; i < d; i++) out[b * d + i] += v * p.W_dec[j * d + i];
    }
  }
  return out;
}

export interface LossOptions {
  k: number;
  loss: 'fvu' | 'mse';
  pairedReduction: 'sum' | 'mean';
  activation?: 'topk' | 'batchtopk';
  /** AuxK: latents treated as dead, the configured k_aux and coefficient. */
  aux?: { dead: Set<number>; kAux: number; coef: number };
  /** AuxK target e = x - x_hat computed with these parameters (held fixed: the model detaches it). */
  auxTargetFrom?: RefParams;
  /** Code-level pair loss (paired batches only): loss += weight * refPairLoss(kind, codes). */
  pairLoss?: { kind: 'iso' | 'iso-inner' | 'group'; weight: number };
}

/**
 * The pair losses written on dense codes, straight from the formulas (float64): rows [0, n) of the codes are
 * the image side, [n, 2n) the text side.
 *  iso: -(1/n) sum_b cos(mask*zx, mask*zy), mask 0 at argmax zx[b] and argmax zy[b] (ties: smaller index),
 *       cos = u.v / (max(|u|,1e-8) max(|v|,1e-8)); iso-inner: -(1/n) sum_b zx.zy;
 *  group: (1/n) sum_b sum_j sqrt(zx^2 + zy^2 + 1e-12).
 */
export function refPairLoss(kind: 'iso' | 'iso-inner' | 'group', codes: { k: number; indices: ArrayLike<number>; values: ArrayLike<number> }, n: number, m: number): number {
  const dense = (r: number) => {
    const z = new Float64Array(m);
    for (let s = 0; s < codes.k; s++) z[codes.indices[r * codes.k + s]] += codes.values[r * codes.k + s];
    return z;
  };
  let total = 0;
  for (let b = 0; b < n; b++) {
    const zx = dense(b), zy = dense(n + b);
    if (kind === 'group') {
      let s = 0;
      for (let j = 0; j < m; j++) s += Math.sqrt(zx[j] ** 2 + zy[j] ** 2 + 1e-12);
      total += s / n;
      continue;
    }
    if (kind === 'iso-inner') {
      let dot = 0;
      for (let j = 0; j < m; j++) dot += zx[j] * zy[j];
      total -= dot / n;
      continue;
    }
    const argmax = (z: Float64Array) => {
      let best = -1;
      for (let j = 0; j < m; j++) if (z[j] > 0 && (best < 0 || z[j] > z[best])) best = j;
      return best;
    };
    const ia = argmax(zx), ib = argmax(zy);
    let dot = 0, uu = 0, vv = 0;
    for (let j = 0; j < m; j++) {
      if (j === ia || j === ib) continue;
      dot += zx[j] * zy[j];
      uu += zx[j] ** 2;
      vv += zy[j] ** 2;
    }
    total -= dot / (Math.max(Math.sqrt(uu), 1e-8) * Math.max(Math.sqrt(vv), 1e-8)) / n;
  }
  return total;
}

function totalVariance(x: ArrayLike<number>, rows: number, d: number, r0: number): number {
  let tv = 0;
  for (let i = 0; i < d; i++) {
    let mean = 0;
    for (let b = r0; b < r0 + rows; b++) mean += x[b * d + i];
    mean /= rows;
    for (let b = r0; b < r0 + rows; b++) tv += (x[b * d + i] - mean) ** 2;
  }
  return tv;
}

/** Codes for the whole (possibly paired) batch X of R rows, as the native forward pass selects them. */
function selectCodes(p: RefParams, X: ArrayLike<number>, R: number, o: LossOptions): RefCodes {
  if (o.activation !== 'batchtopk') return refEncode(p, X, R, o.k);
  const { sets } = refBatchEncode(p, X, R, o.k);
  const kmax = Math.max(1, ...sets.map((s) => s.size));
  const indices = new Int32Array(R * kmax);
  const values = new Float64Array(R * kmax);
  sets.forEach((s, b) => {
    let t = 0;
    for (const [j, v] of s) {
      indices[b * kmax + t] = j;
      values[b * kmax + t] = v;
      t++;
    }
  });
  return { rows: R, k: kmax, indices, values };
}

/** The training loss of one (possibly paired) batch, recomputing the Top-K selection from the parameters. */
export function refLoss(p: RefParams, x: ArrayLike<number>, rows: number, o: LossOptions, y?: ArrayLike<number>): number {
  const { d } = p;
  const nSeg = y ? 2 : 1;
  const R = rows * nSeg;
  const X = new Float64Array(R * d);
  for (let i = 0; i < rows * d; i++) X[i] = x[i];
  if (y) for (let i = 0; i < rows * d; i++) X[rows * d + i] = y[i];
  const codes = selectCodes(p, X, R, o);
  const xhat = refDecode(p, codes);
  const tp = o.auxTargetFrom ?? p;
  const xhatTarget = o.auxTargetFrom ? refDecode(tp, selectCodes(tp, X, R, o)) : xhat;
  const w = y && o.pairedReduction === 'mean' ? 0.5 : 1;
  let loss = 0;
  let auxHat: Float64Array | null = null;
  let auxScale = 0;
  if (o.aux && o.aux.dead.size > 0) {
    const kAux = Math.min(o.aux.kAux, o.aux.dead.size);
    auxScale = Math.min(1, o.aux.dead.size / o.aux.kAux);
    const pre = preActivations(p, X, R);
    const m = p.m;
    const ai = new Int32Array(R * kAux);
    const av = new Float64Array(R * kAux);
    for (let b = 0; b < R; b++) {
      const dead = [...o.aux.dead].map((j) => ({ j, v: Math.max(0, pre[b * m + j]) }));
      dead.sort((a, c) => c.v - a.v || a.j - c.j);
      for (let s = 0; s < kAux; s++) {
        ai[b * kAux + s] = dead[s].j;
        av[b * kAux + s] = dead[s].v;
      }
    }
    auxHat = refDecode({ ...p, b_dec: new Float64Array(d) }, { rows: R, k: kAux, indices: ai, values: av });
  }
  if (y && o.pairLoss) loss += o.pairLoss.weight * refPairLoss(o.pairLoss.kind, codes, rows, p.m);
  for (let s = 0; s < nSeg; s++) {
    const r0 = s * rows;
    let sse = 0;
    for (let i = r0 * d; i < (r0 + rows) * d; i++) sse += (xhat[i] - X[i]) ** 2;
    const denom = o.loss === 'fvu' ? totalVariance(X, rows, d, r0) : rows * d;
    loss += (w * sse) / denom;
    if (auxHat) {
      // e = x - x_hat is a constant (detached) target.
      const e = new Float64Array(rows * d);
      for (let i = 0; i < rows * d; i++) e[i] = X[r0 * d + i] - xhatTarget[r0 * d + i];
      const evar = totalVariance(e, rows, d, 0);
      let aerr = 0;
      for (let i = 0; i < rows * d; i++) aerr += (auxHat[r0 * d + i] - e[i]) ** 2;
      if (evar > 0) loss += (w * o.aux!.coef * auxScale * aerr) / evar;
    }
  }
  return loss;
}

/**
 * Finite-difference gradient of refLoss (central differences, step h), for every parameter.
 * The AuxK target e = x - x_hat is held fixed (detached) as in the model.
 */
export function fdGradients(p: RefParams, f: (q: RefParams) => number, h = 1e-6): RefParams {
  const g: RefParams = { d: p.d, m: p.m, W_enc: new Float64Array(p.W_enc.length), b_enc: new Float64Array(p.b_enc.length), W_dec: new Float64Array(p.W_dec.length), b_dec: new Float64Array(p.b_dec.length) };
  for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) {
    const arr = p[key];
    for (let i = 0; i < arr.length; i++) {
      const orig = arr[i];
      arr[i] = orig + h;
      const fp = f(p);
      arr[i] = orig - h;
      const fm = f(p);
      arr[i] = orig;
      g[key][i] = (fp - fm) / (2 * h);
    }
  }
  return g;
}

/** Removes each decoder row's gradient component along the row: g_j -= (g_j . w_j) w_j. */
export function projectDecoderGrad(p: RefParams, g: RefParams): void {
  const { d, m } = p;
  for (let j = 0; j < m; j++) {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += g.W_dec[j * d + i] * p.W_dec[j * d + i];
    for (let i = 0; i < d; i++) g.W_dec[j * d + i] -= dot * p.W_dec[j * d + i];
  }
}

export interface RefAdamState {
  t: number;
  m: Record<'W_enc' | 'b_enc' | 'W_dec' | 'b_dec', Float64Array>;
  v: Record<'W_enc' | 'b_enc' | 'W_dec' | 'b_dec', Float64Array>;
}

export function newAdamState(p: RefParams): RefAdamState {
  const z = () => ({ W_enc: new Float64Array(p.W_enc.length), b_enc: new Float64Array(p.m), W_dec: new Float64Array(p.W_dec.length), b_dec: new Float64Array(p.d) });
  return { t: 0, m: z(), v: z() };
}

export interface RefOptimOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decay: Record<'W_enc' | 'b_enc' | 'W_dec' | 'b_dec', boolean>;
  maxGradNorm: number;
  normalizeDecoder: boolean;
  decoderEps: number;
}

/** torch-style clip_grad_norm_ + AdamW + decoder row renormalization, in place. */
export function refOptimizerStep(p: RefParams, g: RefParams, st: RefAdamState, o: RefOptimOptions): void {
  const keys = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
  let sq = 0;
  for (const key of keys) for (const v of g[key]) sq += v * v;
  const norm = Math.sqrt(sq);
  let scale = 1;
  if (o.maxGradNorm > 0) scale = Math.min(1, o.maxGradNorm / (norm + 1e-6));
  st.t += 1;
  const bc1 = 1 - o.beta1 ** st.t;
  const bc2 = 1 - o.beta2 ** st.t;
  for (const key of keys) {
    const P = p[key], G = g[key], M = st.m[key], V = st.v[key];
    for (let i = 0; i < P.length; i++) {
      const gi = G[i] * scale;
      if (o.decay[key]) P[i] *= 1 - o.lr * o.weightDecay;
      M[i] = M[i] + (1 - o.beta1) * (gi - M[i]);
      V[i] = o.beta2 * V[i] + (1 - o.beta2) * gi * gi;
      P[i] -= (o.lr / bc1) * (M[i] / (Math.sqrt(V[i]) / Math.sqrt(bc2) + o.eps));
    }
  }
  if (o.normalizeDecoder) normalizeRows(p.W_dec, p.m, p.d, o.decoderEps);
}

export function normalizeRows(W: Float64Array, rows: number, cols: number, eps: number): void {
  for (let j = 0; j < rows; j++) {
    let s = 0;
    for (let i = 0; i < cols; i++) s += W[j * cols + i] ** 2;
    const n = Math.sqrt(s) + eps;
    for (let i = 0; i < cols; i++) W[j * cols + i] /= n;
  }
}

/** Random parameters: W_enc ~ U(+-1/sqrt d), b_enc small, W_dec unit rows, b_dec small. */
export function randomParams(d: number, m: number, rnd: () => number): RefParams {
  const W_enc = new Float64Array(d * m).map(() => (2 * rnd() - 1) / Math.sqrt(d));
  const W_dec = new Float64Array(m * d).map(() => 2 * rnd() - 1);
  normalizeRows(W_dec, m, d, 0);
  return {
    d,
    m,
    W_enc,
    b_enc: new Float64Array(m).map(() => 0.1 * (2 * rnd() - 1)),
    W_dec,
    b_dec: new Float64Array(d).map(() => 0.1 * (2 * rnd() - 1)),
  };
}

export function toF32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}

/** The same parameters rounded to float32 and back (what the native model actually holds). */
export function roundToF32(p: RefParams): RefParams {
  const r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  return { d: p.d, m: p.m, W_enc: r(p.W_enc), b_enc: r(p.b_enc), W_dec: r(p.W_dec), b_dec: r(p.b_dec) };
}
