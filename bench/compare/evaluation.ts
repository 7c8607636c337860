/**
 * Evaluation benchmarks, ours and the numpy/scipy anchors side by side in one run:
 *  - retrieval at MS-COCO test size (5000 images x 25000 captions, m = 4096 per modality, k = 32):
 *    retrievalRanks (native, exact, sparse) vs the reference's dense float32 GEMM (numpy) and scipy.sparse;
 *  - monosemanticity score (N = 20000 inputs, m = 4096, k = 32, d_ext = 512): ours (sparse, TypeScript) vs
 *    the reference's dense numpy formulation.
 *   npx tsx bench/compare/evaluation.ts [--images 5000] [--captions-per-image 5] [--m 4096]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { info, retrievalRanks, type SparseCodes } from '../../lib/index.js';
import { monosemanticityScores } from '../../lib/eval/monosemanticity.js';
import { recallAt } from '../../lib/eval/retrieval.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, '..', 'out');
mkdirSync(outDir, { recursive: true });
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : Number(fallback);
};
const nImg = opt('images', '5000'), cpi = opt('captions-per-image', '5'), m = opt('m', '4096'), k = 32;

function py(...a: string[]): Record<string, unknown> {
  const r = spawnSync('python3', [path.join(here, 'evaluation_anchor.py'), ...a], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`anchor failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop();
  return line ? JSON.parse(line) : {};
}
const readTyped = <T>(file: string, ctor: new (b: ArrayBuffer) => T): T => {
  const b = readFileSync(file);
  return new ctor(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
};
const fmt = (r: number[]) => r.map((x) => (100 * x).toFixed(2)).join('/');

const results: Record<string, unknown>[] = [];
console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores; ${JSON.stringify(info().simd)} ${info().threads} threads\n`);

{
  const base = path.join(outDir, 'retrieval');
  py('codes', base, String(nImg), String(cpi), String(m), String(k), '3');
  const img: SparseCodes = { rows: nImg, k, indices: readTyped(base + '.ii', Int32Array), values: readTyped(base + '.iv', Float32Array) };
  const txt: SparseCodes = { rows: nImg * cpi, k, indices: readTyped(base + '.ti', Int32Array), values: readTyped(base + '.tv', Float32Array) };
  const t0 = performance.now();
  const t2i = retrievalRanks(txt, img, { offsets: Int32Array.from({ length: txt.rows + 1 }, (_, i) => i), items: Int32Array.from({ length: txt.rows }, (_, t) => Math.floor(t / cpi)) }, { m });
  const i2t = retrievalRanks(img, txt, { offsets: Int32Array.from({ length: nImg + 1 }, (_, i) => i * cpi), items: Int32Array.from({ length: txt.rows }, (_, t) => t) }, { m });
  const oursS = (performance.now() - t0) / 1000;
  const ours = { i2t: [1, 5, 10].map((K) => recallAt(i2t.ranks, K)), t2i: [1, 5, 10].map((K) => recallAt(t2i.ranks, K)) };
  const dense = py('dense', base, String(nImg), String(cpi), String(m), String(k)) as { seconds: number; i2t: number[]; t2i: number[] };
  const sparse = py('sparse', base, String(nImg), String(cpi), String(m), String(k)) as { seconds: number; i2t: number[]; t2i: number[] };
  console.log(`Retrieval, ${nImg} images x ${nImg * cpi} captions, m=${m}, k=${k} (both directions)`);
  console.log(`  ours (native sparse, float64):    ${oursS.toFixed(2)} s   R@1/5/10 i2t ${fmt(ours.i2t)}  t2i ${fmt(ours.t2i)}`);
  console.log(`  numpy dense float32 GEMM (ref.):  ${dense.seconds.toFixed(2)} s   R@1/5/10 i2t ${fmt(dense.i2t)}  t2i ${fmt(dense.t2i)}   ours ${(dense.seconds / oursS).toFixed(1)}x faster`);
  console.log(`  scipy.sparse float64:             ${sparse.seconds.toFixed(2)} s   R@1/5/10 i2t ${fmt(sparse.i2t)}  t2i ${fmt(sparse.t2i)}   ours ${(sparse.seconds / oursS).toFixed(1)}x faster`);
  results.push({ kind: 'retrieval', images: nImg, captions: nImg * cpi, m, k, ours_s: oursS, numpy_dense_s: dense.seconds, scipy_sparse_s: sparse.seconds, ours, dense: { i2t: dense.i2t, t2i: dense.t2i }, sparse: { i2t: sparse.i2t, t2i: sparse.t2i } });
}

{
  const N = 20000, dext = 512;
  const base = path.join(outDir, 'ms');
  const anchor = py('ms', base, String(N), String(m), String(k), String(dext), '5') as { seconds: number; mean: number; scored: number };
  const codes: SparseCodes = { rows: N, k, indices: readTyped(base + '.mi', Int32Array), values: readTyped(base + '.mv', Float32Array) };
  const E = { rows: N, cols: dext, data: readTyped(base + '.me', Float32Array) };
  const t0 = performance.now();
  const s = monosemanticityScores(codes, E, m);
  const oursS = (performance.now() - t0) / 1000;
  console.log(`\nMonosemanticity, N=${N}, m=${m}, k=${k}, d_ext=${dext}`);
  console.log(`  ours (sparse accumulation, TypeScript): ${oursS.toFixed(2)} s   mean MS ${s.mean.toFixed(6)} over ${s.latents} latents`);
  console.log(`  numpy dense (ref. formulation):         ${anchor.seconds.toFixed(2)} s   mean MS ${anchor.mean.toFixed(6)} over ${anchor.scored} latents   ours ${(anchor.seconds / oursS).toFixed(1)}x faster`);
  results.push({ kind: 'monosemanticity', N, m, k, dext, ours_s: oursS, numpy_s: anchor.seconds, ours_mean: s.mean, numpy_mean: anchor.mean });
}

writeFileSync(path.join(outDir, 'evaluation-compare.json'), JSON.stringify({ date: new Date().toISOString(), machine: os.cpus()[0].model, cores: os.cpus().length, results }, null, 2));
