/**
 * CorrelationAccumulator at the paper's scale: 2.8M paired rows, m = 8192 per side, K = 32 active latents,
 * B a noisy permutation of A (70 % of activations carried over), fed in batches of 100k rows; prints the
 * end-to-end time (construction, every add, and result() with the dense 8192 x 8192 correlation).
 *   npx tsx bench/corr-scale.ts [--rows N]
 */
import { CorrelationAccumulator, type SparseCodes } from '../lib/index.js';

const i = process.argv.indexOf('--rows');
const N = i >= 0 ? Number(process.argv[i + 1]) : 2_800_000;
const [m, k, B] = [8192, 32, 100_000];
let s = 12345;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
// Heavy-tailed firing frequencies (lognormal weights), sampled through the cumulative table.
const w = Float64Array.from({ length: m }, () => Math.exp(Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd())));
const cdf = new Float64Array(m);
let total = 0;
for (let j = 0; j < m; j++) cdf[j] = total += w[j];
const pick = () => {
  const x = rnd() * total;
  let lo = 0, hi = m - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
const perm = Int32Array.from({ length: m }, (_, j) => j).sort(() => rnd() - 0.5);
// Two distinct batches, reused (generating 2.8M rows in JavaScript would dominate the run).
const batches: { a: SparseCodes; b: SparseCodes }[] = [];
for (let t = 0; t < 2; t++) {
  const a: SparseCodes = { rows: B, k, indices: new Int32Array(B * k), values: new Float32Array(B * k) };
  const b: SparseCodes = { rows: B, k, indices: new Int32Array(B * k), values: new Float32Array(B * k) };
  for (let r = 0; r < B; r++) {
    const usedA = new Set<number>(), usedB = new Set<number>();
    for (let q = 0; q < k; q++) {
      let j = pick();
      while (usedA.has(j)) j = pick();
      usedA.add(j);
      a.indices[r * k + q] = j;
      a.values[r * k + q] = 0.5 + rnd();
      let jb = rnd() < 0.7 ? perm[j] : pick();
      while (usedB.has(jb)) jb = pick();
      usedB.add(jb);
      b.indices[r * k + q] = jb;
      b.values[r * k + q] = 0.5 + rnd();
    }
  }
  batches.push({ a, b });
}
const t0 = performance.now();
const acc = new CorrelationAccumulator(m, m);
for (let r = 0; r < N; r += B) acc.add(batches[(r / B) % 2].a, batches[(r / B) % 2].b);
const res = acc.result();
const dt = (performance.now() - t0) / 1000;
acc.dispose();
console.log(`${N} rows, m=${m}, K=${k}: ${dt.toFixed(2)} s end to end = ${((N * k * k) / dt / 1e6).toFixed(0)}M co-activation updates/s (alive ${res.aliveA.reduce((x, y) => x + y, 0)}/${m})`);
