/** Seeded random numbers for tests (mulberry32 + Box-Muller). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  normals(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
    return out;
  }
}

/** Random Top-K codes: k distinct latents out of m per row, each activation drawn by `value` (0 marks an empty slot). */
export function randomCodes(rng: Rng, rows: number, m: number, k: number, value: (rng: Rng) => number = (r) => r.uniform(0.1, 2)) {
  const indices = new Int32Array(rows * k), values = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j = rng.int(m);
      while (used.has(j)) j = (j + 1) % m;
      used.add(j);
      indices[r * k + s] = j;
      values[r * k + s] = value(rng);
    }
  }
  return { rows, k, indices, values };
}
