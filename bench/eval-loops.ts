/**
 * The TypeScript per-element loops of the evaluations against the work around them, at the paper's sizes
 * (issue 14: each goes native or keeps a comment with this measurement). Codes come from a freshly
 * initialized SAE (d = 512, k = 32) on l2-normalized Gaussian rows; best of `--reps` runs (default 3).
 *  - monosemanticityScores: 25,000 captions x external d 768, m = 8192 (the MS-COCO test captions), against
 *    encoding the same rows (evaluateMonosemanticity = encode + scores);
 *  - predictClasses: 50,000 images x 1,000 classes (ImageNet val), m = 8192, every latent kept, against encoding
 *    the images and the 1,000 class prototypes (evaluateZeroShot);
 *  - ReconstructionAccumulator.add: 25,000 x 512, against encode + decode of the same rows (reconstructionStats).
 *   npx tsx bench/eval-loops.ts [--reps 3] [--only ms|zs|recon]
 * Measured (2026-12, 2-vCPU AVX-512 VM shared with other jobs): monosemanticityScores 2.29 s in TypeScript
 * (52 % of the evaluation) -> 0.57 s native (21 %); predictClasses 0.20-0.24 s (4-6 %) and
 * ReconstructionAccumulator.add 0.06-0.07 s (2.5-4 %) stay in TypeScript (see their comments).
 */
import { TopKSAE, type Matrix, type SparseCodes } from '../lib/index.js';
import { monosemanticityScores } from '../lib/eval/monosemanticity.js';
import { ReconstructionAccumulator } from '../lib/eval/reconstruction.js';
import { predictClasses } from '../lib/eval/zeroshot.js';
import { info } from '../lib/info.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const reps = Number(arg('reps', '3'));
const only = arg('only', '');

let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

function unitRows(rows: number, cols: number): Matrix {
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += (data[r * cols + c] = normal()) ** 2;
    for (let c = 0; c < cols; c++) data[r * cols + c] /= Math.sqrt(s);
  }
  return { rows, cols, data };
}

/** Best wall time of `reps` runs, in seconds, and the last result. */
async function best<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  let t = Infinity, out!: T;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    out = await fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return [out, t];
}

const share = (part: number, rest: number) => `${((100 * part) / (part + rest)).toFixed(1)} %`;

const i = info();
console.log(`threads ${i.threads}, simd ${i.simd}, reps ${reps}`);
const d = 512, k = 32, m = 8192;
using sae = TopKSAE.create({ d, m, k, seed: 1, device: 'cpu' });

if (!only || only === 'ms') {
  const N = 25_000, D = 768;
  const x = unitRows(N, d), ext = unitRows(N, D);
  const [codes, enc] = await best(() => sae.encodeAsync(x));
  const [, ms] = await best(() => monosemanticityScores(codes, ext, m));
  console.log(`monosemanticityScores ${N} rows, k ${k}, external d ${D}, m ${m}: ${ms.toFixed(3)} s; encode ${enc.toFixed(3)} s; share of the evaluation ${share(ms, enc)}`);
}

if (!only || only === 'zs') {
  const N = 50_000, C = 1000;
  const x = unitRows(N, d);
  const [img, encImg] = await best(() => sae.encodeAsync(x));
  const [proto, encProto] = await best(() => sae.encodeAsync(unitRows(C, d)));
  const keep = new Uint8Array(m).fill(1);
  const [, pc] = await best(() => predictClasses(img, proto, keep));
  console.log(`predictClasses ${N} images x ${C} classes, k ${k}, m ${m}: ${pc.toFixed(3)} s; encode images + prototypes ${(encImg + encProto).toFixed(3)} s; share ${share(pc, encImg + encProto)}`);
}

if (!only || only === 'recon') {
  const N = 25_000;
  const x = unitRows(N, d);
  let codes: SparseCodes | null = null;
  const [xhat, encDec] = await best(async () => sae.decode((codes = await sae.encodeAsync(x))));
  void codes;
  const [, add] = await best(() => {
    const acc = new ReconstructionAccumulator(d);
    for (let r0 = 0; r0 < N; r0 += 4096) {
      const n = Math.min(4096, N - r0);
      acc.add({ rows: n, cols: d, data: x.data.subarray(r0 * d, (r0 + n) * d) }, { rows: n, cols: d, data: xhat.data.subarray(r0 * d, (r0 + n) * d) });
    }
    return acc.result();
  });
  console.log(`ReconstructionAccumulator.add ${N} x ${d}: ${add.toFixed(3)} s; encode + decode ${encDec.toFixed(3)} s; share ${share(add, encDec)}`);
}
