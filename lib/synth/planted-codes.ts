/**
 * Paired codes for the large-m alignment benchmarks: K active latents per row on each side with heavy-tailed
 * (lognormal) firing frequencies, and a planted partial permutation: a fraction `partnered` of the A latents
 * has a B partner that fires with it in `carry` of its rows (value ~ the A value times U(0.5, 1.5)); the other
 * B slots are drawn from B's own frequencies. Deterministic in the seed.
 */
import type { SparseCodes } from '../types.js';

export interface PlantedSpec {
  m: number;
  k: number;
  seed?: number;
  partnered?: number;
  carry?: number;
}

/** Walker's alias table over weights w: one uniform draw per sample. */
function aliasTable(w: Float64Array): { prob: Float64Array; alias: Int32Array } {
  const n = w.length;
  let total = 0;
  for (const x of w) total += x;
  const prob = new Float64Array(n), alias = new Int32Array(n);
  const scaled = Float64Array.from(w, (x) => (x * n) / total);
  const small: number[] = [], large: number[] = [];
  scaled.forEach((x, i) => (x < 1 ? small : large).push(i));
  while (small.length && large.length) {
    const s = small.pop()!, l = large.pop()!;
    prob[s] = scaled[s];
    alias[s] = l;
    scaled[l] += scaled[s] - 1;
    (scaled[l] < 1 ? small : large).push(l);
  }
  for (const i of [...small, ...large]) prob[i] = 1;
  return { prob, alias };
}

export class PlantedCodes {
  readonly spec: Required<PlantedSpec>;
  /** perm[i]: A latent i's planted B partner, -1 for partnerless latents. */
  readonly perm: Int32Array;
  #s: number;
  readonly #a: { prob: Float64Array; alias: Int32Array };
  readonly #b: { prob: Float64Array; alias: Int32Array };
  readonly #stampA: Int32Array;
  readonly #stampB: Int32Array;
  #row = 0;

  constructor(spec: PlantedSpec) {
    this.spec = { seed: 1, partnered: 0.8, carry: 0.7, ...spec };
    const { m, seed, partnered } = this.spec;
    this.#s = seed >>> 0 || 1;
    const lognormal = () => Math.exp(1.2 * Math.sqrt(-2 * Math.log(this.#rnd() + 1e-12)) * Math.cos(2 * Math.PI * this.#rnd()));
    this.#a = aliasTable(Float64Array.from({ length: m }, lognormal));
    this.#b = aliasTable(Float64Array.from({ length: m }, lognormal));
    const order = Int32Array.from({ length: m }, (_, j) => j);
    for (let j = m - 1; j > 0; j--) {
      const t = Math.floor(this.#rnd() * (j + 1));
      [order[j], order[t]] = [order[t], order[j]];
    }
    this.perm = Int32Array.from({ length: m }, (_, i) => (this.#rnd() < partnered ? order[i] : -1));
    this.#stampA = new Int32Array(m).fill(-1);
    this.#stampB = new Int32Array(m).fill(-1);
  }

  #rnd(): number {
    // xorshift32
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s / 4294967296;
  }

  #draw(t: { prob: Float64Array; alias: Int32Array }): number {
    const u = this.#rnd() * t.prob.length;
    const i = Math.floor(u);
    return u - i < t.prob[i] ? i : t.alias[i];
  }

  /** The next `rows` paired rows. */
  next(rows: number): { a: SparseCodes; b: SparseCodes } {
    const { m, k, carry } = this.spec;
    const ai = new Int32Array(rows * k), av = new Float32Array(rows * k), bi = new Int32Array(rows * k), bv = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++, this.#row++) {
      const row = this.#row;
      let nb = 0;
      for (let q = 0; q < k; q++) {
        let i = this.#draw(this.#a);
        while (this.#stampA[i] === row) i = Math.floor(this.#rnd() * m);
        this.#stampA[i] = row;
        const v = 0.05 + this.#rnd() * this.#rnd() * 2;
        ai[r * k + q] = i;
        av[r * k + q] = v;
        const p = this.perm[i];
        if (p >= 0 && nb < k && this.#stampB[p] !== row && this.#rnd() < carry) {
          this.#stampB[p] = row;
          bi[r * k + nb] = p;
          bv[r * k + nb] = v * (0.5 + this.#rnd());
          nb++;
        }
      }
      for (; nb < k; nb++) {
        let j = this.#draw(this.#b);
        while (this.#stampB[j] === row) j = Math.floor(this.#rnd() * m);
        this.#stampB[j] = row;
        bi[r * k + nb] = j;
        bv[r * k + nb] = 0.05 + this.#rnd() * this.#rnd() * 2;
      }
    }
    return { a: { rows, k, indices: ai, values: av }, b: { rows, k, indices: bi, values: bv } };
  }
}
