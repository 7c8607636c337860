/**
 * Side-by-side benchmark: our fused encode and training step vs numpy (OpenBLAS sgemm, argpartition, the best
 * numpy step), in one run, alternating rounds so machine noise hits both. Prints ratios; writes JSON to bench/out/.
 *   npx tsx bench/compare/run.ts [--only encode|step] [--rounds N] [--reps N]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { TopKSAE, info, type Matrix } from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const only = opt('only', 'all');
const rounds = Number(opt('rounds', '3'));
const reps = Number(opt('reps', '5'));

const pythonEnv = { ...process.env };
delete pythonEnv.OPENBLAS_CORETYPE; // these two slow a current numpy down (see anchors.md)
delete pythonEnv.OPENBLAS_L2_SIZE;

function numpy(job: Record<string, unknown>): Record<string, number> | null {
  const r = spawnSync('python3', [path.join(here, 'numpy_kernels.py'), JSON.stringify({ ...job, reps, seed: 1 })], { env: pythonEnv, encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`numpy run failed (is python3 with numpy/scipy installed?): ${r.stderr.trim().split('\n').pop()}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function bestOf(fn: () => void, n: number): number {
  fn();
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return best;
}

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  let s = seed >>> 0;
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2147483648 - 1;
  }
  return { rows, cols, data };
}

const results: Record<string, unknown>[] = [];
const fmt = (x: number, digits = 1) => x.toFixed(digits);

if (only === 'all' || only === 'encode') {
  console.log('\nFused Top-K encode vs numpy X @ W (and + argpartition top-k); GFLOP/s = 2*B*d*m / time');
  console.log('B     d    m      k  | ours ms  GFLOP/s | np sgemm ms GFLOP/s | np+argpart ms | ours/sgemm  ours vs sgemm+argpart');
  for (const [B, d, m, k] of [
    [1024, 512, 8192, 32],
    [1024, 768, 12288, 32],
    [4096, 512, 8192, 32],
  ]) {
    const sae = TopKSAE.create({ d, m, k, seed: 1 });
    const x = randomMatrix(B, d, 7);
    let ours = Infinity, sg = Infinity, sgt = Infinity;
    for (let r = 0; r < rounds; r++) {
      ours = Math.min(ours, bestOf(() => sae.encode(x), reps));
      const np = numpy({ kind: 'encode', B, d, m, k });
      if (np) {
        sg = Math.min(sg, np.sgemm);
        sgt = Math.min(sgt, np.sgemm_argpartition);
      }
    }
    sae.dispose();
    const flop = 2 * B * d * m;
    const row = { kind: 'encode', B, d, m, k, ours_ms: ours, ours_gflops: flop / ours / 1e6, numpy_sgemm_ms: sg, numpy_sgemm_gflops: flop / sg / 1e6, numpy_sgemm_argpartition_ms: sgt, ratio_gflops_vs_sgemm: sg / ours, speedup_vs_sgemm_argpartition: sgt / ours };
    results.push(row);
    console.log(
      `${String(B).padEnd(5)} ${String(d).padEnd(4)} ${String(m).padEnd(6)} ${String(k).padEnd(2)} | ${fmt(ours).padStart(7)} ${fmt(row.ours_gflops).padStart(8)} | ${fmt(sg).padStart(11)} ${fmt(row.numpy_sgemm_gflops).padStart(7)} | ${fmt(sgt).padStart(13)} | ${fmt(row.ratio_gflops_vs_sgemm, 2).padStart(10)}x ${fmt(row.speedup_vs_sgemm_argpartition, 2).padStart(10)}x`,
    );
  }
}

if (only === 'all' || only === 'step') {
  console.log('\nFull training step (encode, decode, FVU, sparse backward, projection, clipping, AdamW, renorm)');
  const [B, d, m, k] = [1024, 512, 8192, 32];
  const sae = TopKSAE.create({ d, m, k, seed: 1 });
  const x = randomMatrix(B, d, 9);
  let ours = Infinity, np = Infinity;
  for (let r = 0; r < rounds; r++) {
    ours = Math.min(ours, bestOf(() => sae.step(x, { lr: 5e-4 }), reps));
    const n = numpy({ kind: 'step', B, d, m, k });
    if (n) np = Math.min(np, n.step);
  }
  sae.dispose();
  const row = { kind: 'step', B, d, m, k, ours_ms: ours, numpy_step_ms: np, speedup: np / ours, ours_samples_per_s: (B / ours) * 1e3 };
  results.push(row);
  console.log(`(B,d,m,k)=(${B},${d},${m},${k}): ours ${fmt(ours)} ms (${fmt(row.ours_samples_per_s / 1e3)}k samples/s), numpy ${fmt(np)} ms, speedup ${fmt(row.speedup, 2)}x`);
}

const i = info();
const report = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, simd: i.simd, threads: i.threads }, rounds, reps, results };
mkdirSync(path.join(here, '..', 'out'), { recursive: true });
const file = path.join(here, '..', 'out', `compare-${Date.now()}.json`);
writeFileSync(file, JSON.stringify(report, null, 2));
console.log(`\nwritten ${path.relative(process.cwd(), file)}`);
