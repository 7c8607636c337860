/**
 * The concept index at the scale: 1M corpus pairs x m = 8192 latents per side, k = 32 (conceptStats: fire
 * counts, top-12 rows per latent, top-5 partners both directions by exact Pearson correlation). Prints the index time
 * and the peak memory it added, then the SAE's own encode speed at d = 512 (reported separately: the corpus is
 * encoded once). Usage: npx tsx bench/concepts.bench.ts [rows] [m] [k]
 */
import os from 'node:os';

import { TopKSAE, conceptStats, info } from '../lib/index.js';

const rows = Number(process.argv[2] ?? 1_000_000), m = Number(process.argv[3] ?? 8192), k = Number(process.argv[4] ?? 32);

/** Codes with structure: each text row keeps half of its image row's latents (shifted values) and draws the rest. */
function corpusCodes(seed: number): { image: { rows: number; k: number; indices: Int32Array; values: Float32Array }; text: { rows: number; k: number; indices: Int32Array; values: Float32Array } } {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const mk = () => ({ rows, k, indices: new Int32Array(rows * k), values: new Float32Array(rows * k) });
  const image = mk(), text = mk();
  const used = new Uint32Array(m);
  for (let r = 0; r < rows; r++) {
    const stamp = r + 1;
    for (let sl = 0; sl < k; sl++) {
      let j = Math.floor(next() * next() * m); // skewed fire rates
      while (used[j] === stamp) j = (j + 1) % m;
      used[j] = stamp;
      image.indices[r * k + sl] = j;
      image.values[r * k + sl] = 0.1 + 2 * next();
    }
    const tstamp = rows + 1 + r;
    for (let sl = 0; sl < k; sl++) {
      let j = sl < k / 2 ? image.indices[r * k + sl] : Math.floor(next() * next() * m);
      while (used[j] === tstamp || (sl >= k / 2 && used[j] === stamp)) j = (j + 1) % m;
      used[j] = tstamp;
      text.indices[r * k + sl] = j;
      text.values[r * k + sl] = sl < k / 2 ? image.values[r * k + sl] * (0.5 + next()) : 0.1 + 2 * next();
    }
  }
  return { image, text };
}

const mib = (kb: number) => (kb / 1024).toFixed(0);
console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), native threads ${info().threads}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
const { image, text } = corpusCodes(1);
const rssBefore = process.resourceUsage().maxRSS;
const codesMiB = ((image.indices.byteLength + image.values.byteLength) * 2) / 2 ** 20;
console.log(`corpus codes: ${rows} pairs x k = ${k} per side, m = ${m} (${codesMiB.toFixed(0)} MiB of codes); peak RSS so far ${mib(rssBefore)} MiB`);
const t0 = performance.now();
const stats = await conceptStats({ image, text, imageOfText: null }, { m, topN: 12, partners: 5 });
const seconds = (performance.now() - t0) / 1000;
const rssAfter = process.resourceUsage().maxRSS;
let alive = 0;
for (let i = 0; i < m; i++) if (stats.fireImage[i] > 0 && stats.fireText[i] > 0) alive++;
console.log(`index: ${seconds.toFixed(2)} s (target <= 20 s on 2 cores); peak RSS +${mib(rssAfter - rssBefore)} MiB over the codes (total ${mib(rssAfter)} MiB); ${alive} latents alive on both sides`);

// Encode speed of the SAE itself (d = 512, this m and k) on a slice, extrapolated to the corpus.
const d = 512, slice = Math.min(rows, 32768);
using sae = TopKSAE.create({ d, m, k, seed: 1 });
const x = { rows: slice, cols: d, data: new Float32Array(slice * d).map((_, i) => Math.sin(i * 0.37)) };
await sae.encodeAsync({ rows: 1024, cols: d, data: x.data.subarray(0, 1024 * d) });
const e0 = performance.now();
await sae.encodeAsync(x);
const eSec = (performance.now() - e0) / 1000;
console.log(`encode (d = ${d}): ${(slice / eSec).toFixed(0)} rows/s on ${slice} rows -> about ${((2 * rows) / (slice / eSec)).toFixed(1)} s for both sides of ${rows} pairs`);
