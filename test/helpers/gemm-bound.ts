/**
 * How far a reduced-precision encoder GEMM (BF16 inputs, FP32 accumulation) may move a pre-activation away from
 * the CPU engine's FP32 one, and the code comparison that follows from it (used by the CUDA parity tests).
 *
 * Derivation. pre[r, j] = sum_i xt_i W[i, j] + b_enc[j] with xt = fl32(x - b_dec), computed the same way on both
 * engines. Write S = sum_i |xt_i| |W[i, j]| and b = |b_enc[j]|.
 *  - BF16 keeps 8 significant bits, rounding to nearest: bf(t) = t (1 + delta), |delta| <= u = 2^-8 (the unit
 *    roundoff). A product of two BF16 values has at most 16 significant bits, exact in FP32, so
 *    |bf(xt_i) bf(W_ij) - xt_i W_ij| <= (2u + u^2) |xt_i| |W_ij|: together at most (2u + u^2) S.
 *  - Summing d products and b_enc in FP32, in any order (tensor-core partial sums included), errs by at most
 *    gamma_(d+1) times the sum of the magnitudes, gamma_n = n v / (1 - n v), v = 2^-23 (one full ulp: tensor
 *    cores need not round to nearest when they align addends); the magnitudes are at most (1 + 2u + u^2) S + b.
 *  - The CPU's FP32 sum errs by at most gamma_(d+1) (S + b) with v = 2^-24.
 * So |pre_gpu - pre_cpu| <= e = (2u + u^2) S + gamma'_(d+1) ((1 + 2u + u^2) S + b) + gamma_(d+1) (S + b), and the
 * same holds for the ReLU values (ReLU is 1-Lipschitz).
 * Selection. If the CPU keeps latent j and the GPU drops it for a latent l the CPU did not keep, then
 * pre_gpu(l) >= pre_gpu(j), hence v_cpu(j) - kth_cpu <= v_cpu(j) - pre_cpu(l) <= e_j + e_l; and the same with the
 * engines swapped. Shared latents agree within e_j. At the paper's shape (d 512, unit-norm rows) e is about 0.2,
 * at d 33 about 0.03: the window is the bound, not a fixed 0.3.
 */
import { expect } from 'chai';

import type { Matrix, SaeWeights, SparseCodes } from '../../lib/index.js';

/** Unit roundoff of BF16 (8 significant bits, round to nearest). */
export const BF16_UNIT_ROUNDOFF = 2 ** -8;

const gamma = (n: number, v: number) => (n * v) / (1 - n * v);

/** The bound e[r, j] above, for the GEMM inputs rounded with unit roundoff u. */
export function gemmBound(w: SaeWeights, x: Matrix, u: number): (r: number, j: number) => number {
  const { rows: d, cols: m } = w.W_enc;
  const xt = new Float64Array(x.rows * d);
  for (let r = 0; r < x.rows; r++) for (let i = 0; i < d; i++) xt[r * d + i] = Math.abs(Math.fround(x.data[r * d + i] - w.b_dec[i]));
  const inputs = 2 * u + u * u;
  return (r, j) => {
    let S = 0;
    for (let i = 0; i < d; i++) S += xt[r * d + i] * Math.abs(w.W_enc.data[i * m + j]);
    const b = Math.abs(w.b_enc[j]);
    return inputs * S + gamma(d + 1, 2 ** -23) * ((1 + inputs) * S + b) + gamma(d + 1, 2 ** -24) * (S + b);
  };
}

function positives(c: SparseCodes, r: number): Map<number, number> {
  const out = new Map<number, number>();
  for (let s = 0; s < c.k; s++) if (c.values[r * c.k + s] > 0) out.set(c.indices[r * c.k + s], c.values[r * c.k + s]);
  return out;
}

/**
 * Same codes up to the bound: per row, shared latents agree within e, and a latent one side keeps and the other
 * drops lies within e_j + max e_l (l: the latents only the other side keeps) of its side's k-th value; slot
 * order best first on both.
 */
export function expectSameCodesWithin(gpu: SparseCodes, cpu: SparseCodes, bound: (r: number, j: number) => number, label = ''): void {
  expect(gpu.rows).to.equal(cpu.rows);
  expect(gpu.k).to.equal(cpu.k);
  for (let r = 0; r < cpu.rows; r++) {
    const a = positives(cpu, r), b = positives(gpu, r);
    for (const [j, v] of a) if (b.has(j)) expect(Math.abs(b.get(j)! - v), `${label} row ${r} latent ${j}: ${b.get(j)} vs ${v}, bound ${bound(r, j)}`).to.be.at.most(bound(r, j));
    expectDropsWithin(r, a, b, bound, `${label} row ${r}: kept only on the CPU`);
    expectDropsWithin(r, b, a, bound, `${label} row ${r}: kept only on the GPU`);
    for (let s = 1; s < gpu.k; s++) expect(gpu.values[r * gpu.k + s]).to.be.at.most(gpu.values[r * gpu.k + s - 1]);
  }
}

/** Every latent `mine` keeps and `other` drops is within bound(j) + max bound(l) (l kept only by `other`) of mine's k-th value. */
function expectDropsWithin(r: number, mine: Map<number, number>, other: Map<number, number>, bound: (r: number, j: number) => number, label: string): void {
  let kth = Infinity;
  for (const v of mine.values()) kth = Math.min(kth, v);
  let window = 0;
  for (const l of other.keys()) if (!mine.has(l)) window = Math.max(window, bound(r, l));
  for (const [j, v] of mine)
    if (!other.has(j)) expect(v - kth, `${label}: latent ${j} (${v}) is ${v - kth} above the k-th value, window ${bound(r, j)} + ${window}`).to.be.at.most(bound(r, j) + window);
}

/** BF16 rounding of a float32 value (round to nearest, ties to even), as the device's __float2bfloat16 does. */
export function toBf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  const lsb = (u[0] >>> 16) & 1;
  u[0] = ((u[0] + 0x7fff + lsb) >>> 16) << 16;
  return f[0];
}
