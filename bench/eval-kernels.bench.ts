/**
 * The evaluation kernels at the paper's sizes (ours only), one timed run each after a small warm-up:
 *  - retrievalRanks: 25,000 queries x 25,000 items, m = 8192, k = 32 (random codes; item q, query q's ground
 *    truth, keeps 70 % of the query's latents);
 *  - decoderDistanceHistogram: 4096 x 4096 latents, d = 512, the default 5 correlation bins x 200 distance bins;
 *  - rankingMetrics: 4,800 queries x 30,000 items, d = 512, 1 % relevant (a tenth of the steering size; the
 *    full 48,000 queries scale linearly).
 *   npx tsx bench/eval-kernels.bench.ts [--skip-ranking]
 */
import { decoderDistanceHistogram, rankingMetrics, retrievalRanks, type GroundTruth } from '../lib/eval/kernels.js';
import { info, type Matrix, type SparseCodes } from '../lib/index.js';

let s = 12345;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

/** Random codes; with `like`, each slot keeps that row's latent with probability 0.7. */
function codes(rows: number, k: number, m: number, like?: SparseCodes): SparseCodes {
  const c: SparseCodes = { rows, k, indices: new Int32Array(rows * k), values: new Float32Array(rows * k) };
  const used = new Uint8Array(m);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < k; t++) {
      let j = like && rnd() < 0.7 ? like.indices[r * k + t] : Math.floor(rnd() * m);
      while (used[j]) j = Math.floor(rnd() * m);
      used[j] = 1;
      c.indices[r * k + t] = j;
      c.values[r * k + t] = Math.exp(normal() * 0.5);
    }
    for (let t = 0; t < k; t++) used[c.indices[r * k + t]] = 0;
  }
  return c;
}

function gaussian(rows: number, cols: number): Matrix {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = normal();
  return { rows, cols, data };
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, (performance.now() - t0) / 1000];
}

const i = info();
console.log(`threads ${i.threads}, simd ${i.simd}`);

{
  const [N, m, k] = [25_000, 8192, 32];
  const q = codes(N, k, m), it = codes(N, k, m, q);
  const gt: GroundTruth = { offsets: Int32Array.from({ length: N + 1 }, (_, r) => r), items: Int32Array.from({ length: N }, (_, r) => r) };
  retrievalRanks({ ...q, rows: 500, indices: q.indices.subarray(0, 500 * k), values: q.values.subarray(0, 500 * k) }, it, { offsets: gt.offsets.subarray(0, 501), items: gt.items });
  const [r, sec] = time(() => retrievalRanks(q, it, gt, { m }));
  const top1 = r.ranks.reduce((a, b) => a + (b === 0 ? 1 : 0), 0);
  console.log(`retrievalRanks ${N} x ${N}, m=${m}, k=${k}: ${sec.toFixed(2)} s (R@1 ${(top1 / N).toFixed(3)})`);
}

{
  const [m, d] = [4096, 512];
  const a = gaussian(m, d), t = gaussian(m, d);
  const corr: Matrix = { rows: m, cols: m, data: new Float32Array(m * m) };
  for (let p = 0; p < corr.data.length; p++) corr.data[p] = rnd() * 1.1 - 0.1;
  const alive = new Uint8Array(m).fill(1);
  decoderDistanceHistogram({ rows: 64, cols: d, data: a.data.subarray(0, 64 * d) }, t, { rows: 64, cols: m, data: corr.data.subarray(0, 64 * m) }, alive.subarray(0, 64), alive);
  const [h, sec] = time(() => decoderDistanceHistogram(a, t, corr, alive, alive));
  console.log(`decoderDistanceHistogram ${m} x ${m}, d=${d}: ${sec.toFixed(2)} s (${h.pairs.reduce((x, y) => x + y, 0)} pairs binned)`);
}

if (!process.argv.includes('--skip-ranking')) {
  const [Q, N, d] = [4800, 30_000, 512];
  const q = gaussian(Q, d), x = gaussian(N, d);
  const relevant = Uint8Array.from({ length: N }, () => (rnd() < 0.01 ? 1 : 0));
  const [r, sec] = time(() => rankingMetrics(q, x, relevant));
  const mean = r.ap.reduce((a, b) => a + b, 0) / Q;
  console.log(`rankingMetrics ${Q} x ${N}, d=${d}: ${sec.toFixed(2)} s (~${((sec * 48_000) / Q).toFixed(0)} s for 48,000 queries; mAP ${mean.toFixed(4)})`);
}
