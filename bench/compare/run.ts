/**
 * Side-by-side benchmark: our fused encode and training step vs numpy (OpenBLAS sgemm, argpartition, the best
 * numpy step), in one run, alternating rounds so machine noise hits both. Prints ratios; writes JSON to bench/out/.
 * Our side runs once per encode path this CPU has (fp32 and the certified BF16 paths, info().encodePaths).
 *   npx tsx bench/compare/run.ts [--only encode|step] [--rounds N] [--reps N] [--simd avx2|scalar]
 * --simd runs our side at a lower SIMD level than the CPU has (e.g. the AVX2 kernels on an AVX-512 machine, where the
 * certified BF16 paths are off); numpy keeps the CPU's full level, so such a ratio is a conservative stand-in.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { TopKSAE, info, setEncodePath, setSimdLevel, type EncodeMode } from '../../lib/index.js';
import { randomMatrix } from '../random-matrix.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const only = opt('only', 'all');
const rounds = Number(opt('rounds', '3'));
const reps = Number(opt('reps', '5'));
const simd = opt('simd', '');
if (simd) {
  if (simd !== 'avx2' && simd !== 'scalar' && simd !== 'avx512') throw new Error(`--simd must be avx2, scalar or avx512 (got '${simd}')`);
  console.log(`our kernels at SIMD level ${setSimdLevel(simd)} (numpy at the CPU's own level)`);
}

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


const results: Record<string, unknown>[] = [];
const fmt = (x: number, digits = 1) => x.toFixed(digits);

// The certified BF16 paths need the avx512 level; below it only the float32 encode runs.
const paths = (info().simd === 'avx512' ? info().encodePaths : ['fp32']) as EncodeMode[];
const modeBefore = info().encodeMode;

if (only === 'all' || only === 'encode') {
  console.log('\nFused Top-K encode vs numpy X @ W (and + argpartition top-k); GFLOP/s = 2*B*d*m / time');
  console.log('B     d    m      k  path         | ours ms  GFLOP/s | np sgemm ms GFLOP/s | np+argpart ms | ours/sgemm  ours vs sgemm+argpart');
  for (const [B, d, m, k] of [
    [1024, 512, 8192, 32],
    [1024, 768, 12288, 32],
    [4096, 512, 8192, 32],
  ]) {
    const sae = TopKSAE.create({ d, m, k, seed: 1 });
    const x = randomMatrix(B, d, 7);
    const ours: Record<string, number> = Object.fromEntries(paths.map((p) => [p, Infinity]));
    let sg = Infinity, sgt = Infinity;
    for (let r = 0; r < rounds; r++) {
      for (const p of paths) {
        setEncodePath(p);
        ours[p] = Math.min(ours[p], bestOf(() => sae.encode(x), reps));
      }
      const np = numpy({ kind: 'encode', B, d, m, k });
      if (np) {
        sg = Math.min(sg, np.sgemm);
        sgt = Math.min(sgt, np.sgemm_argpartition);
      }
    }
    sae.dispose();
    const flop = 2 * B * d * m;
    for (const p of paths) {
      const t = ours[p];
      const row = { kind: 'encode', path: p, B, d, m, k, ours_ms: t, ours_gflops: flop / t / 1e6, numpy_sgemm_ms: sg, numpy_sgemm_gflops: flop / sg / 1e6, numpy_sgemm_argpartition_ms: sgt, ratio_gflops_vs_sgemm: sg / t, speedup_vs_sgemm_argpartition: sgt / t };
      results.push(row);
      console.log(
        `${String(B).padEnd(5)} ${String(d).padEnd(4)} ${String(m).padEnd(6)} ${String(k).padEnd(2)} ${p.padEnd(12)} | ${fmt(t).padStart(7)} ${fmt(row.ours_gflops).padStart(8)} | ${fmt(sg).padStart(11)} ${fmt(row.numpy_sgemm_gflops).padStart(7)} | ${fmt(sgt).padStart(13)} | ${fmt(row.ratio_gflops_vs_sgemm, 2).padStart(10)}x ${fmt(row.speedup_vs_sgemm_argpartition, 2).padStart(10)}x`,
      );
    }
  }
}

if (only === 'all' || only === 'step') {
  console.log('\nFull training step (encode, decode, FVU, sparse backward, projection, clipping, AdamW, renorm)');
  const [B, d, m, k] = [1024, 512, 8192, 32];
  const x = randomMatrix(B, d, 9);
  const stepPaths = paths;
  const saes = Object.fromEntries(stepPaths.map((p) => [p, TopKSAE.create({ d, m, k, seed: 1 })]));
  const ours: Record<string, number> = Object.fromEntries(stepPaths.map((p) => [p, Infinity]));
  let np = Infinity;
  for (let r = 0; r < rounds; r++) {
    for (const p of stepPaths) {
      setEncodePath(p);
      ours[p] = Math.min(ours[p], bestOf(() => saes[p].step(x, { lr: 5e-4 }), reps));
    }
    const n = numpy({ kind: 'step', B, d, m, k });
    if (n) np = Math.min(np, n.step);
  }
  for (const p of stepPaths) {
    saes[p].dispose();
    const row = { kind: 'step', path: p, B, d, m, k, ours_ms: ours[p], numpy_step_ms: np, speedup: np / ours[p], ours_samples_per_s: (B / ours[p]) * 1e3 };
    results.push(row);
    console.log(`(B,d,m,k)=(${B},${d},${m},${k}) encode ${p.padEnd(12)}: ours ${fmt(ours[p])} ms (${fmt(row.ours_samples_per_s / 1e3)}k samples/s), numpy ${fmt(np)} ms, speedup ${fmt(row.speedup, 2)}x`);
  }
}
setEncodePath(modeBefore);

const i = info();
const report = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, simd: i.simd, encodePaths: i.encodePaths, threads: i.threads }, rounds, reps, results };
mkdirSync(path.join(here, '..', 'out'), { recursive: true });
const file = path.join(here, '..', 'out', `compare-${Date.now()}.json`);
writeFileSync(file, JSON.stringify(report, null, 2));
console.log(`\nwritten ${path.relative(process.cwd(), file)}`);
