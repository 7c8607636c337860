/**
 * Alignment benchmarks, ours and the anchors side by side in one run:
 *  - co-activation correlation: CorrelationAccumulator vs the authors' numpy approach (densify + float32 GEMM)
 *  - assignment: solveAssignment vs scipy.optimize.linear_sum_assignment on the three matrix kinds of anchors.md
 *   npx tsx bench/compare/alignment.ts [--sizes 1024,2048,4096,8192] [--only corr|lap] [--corr-rows N]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CorrelationAccumulator, info, solveAssignment } from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, '..', 'out');
mkdirSync(outDir, { recursive: true });
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const only = opt('only', 'all');
const sizes = opt('sizes', '1024,2048,4096,8192').split(',').map(Number);
const env = { ...process.env };
delete env.OPENBLAS_CORETYPE;
delete env.OPENBLAS_L2_SIZE;

function py(...a: string[]): Record<string, number> {
  const r = spawnSync('python3', [path.join(here, 'alignment_anchor.py'), ...a], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`anchor failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop();
  return line ? JSON.parse(line) : {};
}
const readTyped = <T>(file: string, ctor: new (b: ArrayBuffer) => T): T => {
  const b = readFileSync(file);
  return new ctor(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
};
const results: Record<string, unknown>[] = [];

if (only === 'all' || only === 'corr') {
  const [m, k] = [8192, 32];
  const N = Number(opt('corr-rows', '200000'));
  const base = path.join(outDir, 'codes');
  console.log(`\nCo-activation correlation, m=${m}, K=${k} (updates = rows * K^2)`);
  py('codes', base, String(N), String(m), String(k), '1');
  const a = { rows: N, k, indices: readTyped(base + '.ai', Int32Array), values: readTyped(base + '.av', Float32Array) };
  const b = { rows: N, k, indices: readTyped(base + '.bi', Int32Array), values: readTyped(base + '.bv', Float32Array) };
  const acc = new CorrelationAccumulator(m, m);
  let t = performance.now();
  acc.add(a, b);
  acc.result(); // includes applying the buffered rows and computing the dense mA x mB correlation
  const oursS = (performance.now() - t) / 1000;
  acc.dispose();
  const nNp = 20000;
  const np = py('numpycorr', base, String(nNp), String(m), String(k));
  const oursRate = (N * k * k) / oursS;
  const npRate = (nNp * k * k) / np.seconds;
  results.push({ kind: 'corr', m, k, ours_rows: N, ours_s: oursS, ours_updates_per_s: oursRate, numpy_rows: nNp, numpy_s: np.seconds, numpy_updates_per_s: npRate });
  console.log(`ours: ${N} rows in ${oursS.toFixed(2)} s = ${(oursRate / 1e6).toFixed(0)}M updates/s (exact float64, incl. the final ${m}x${m} matrix)`);
  console.log(`numpy (densify + float32 GEMM, the authors' approach): ${nNp} rows in ${np.seconds.toFixed(2)} s = ${(npRate / 1e6).toFixed(0)}M updates/s`);
  console.log(`paper scale (2.8M pairs): ours ~${((2.8e6 * k * k) / oursRate).toFixed(1)} s`);
}

if (only === 'all' || only === 'lap') {
  console.log('\nAssignment (maximize), ours vs scipy.optimize.linear_sum_assignment (1 call each)');
  console.log('kind       n     shape        | ours s  rounds edges   | scipy s | speedup | objective diff');
  for (const n of sizes) {
    for (const kind of ['uniform', 'corr', 'corrhard']) {
      const base = path.join(outDir, `lap-${kind}-${n}`);
      py('lapmat', base, kind, String(n), '7');
      const meta = JSON.parse(readFileSync(base + '.json', 'utf8'));
      const C = { rows: meta.rows, cols: meta.cols, data: readTyped(base + '.f32', Float32Array) };
      const t = performance.now();
      const r = solveAssignment(C, { maximize: true });
      const oursS = (performance.now() - t) / 1000;
      const sc = py('scipy', base);
      const row = { kind: `lap-${kind}`, n, rows: C.rows, cols: C.cols, ours_s: oursS, scipy_s: sc.seconds, speedup: sc.seconds / oursS, objective_diff: r.objective - sc.objective, stats: r.stats };
      results.push(row);
      console.log(
        `${kind.padEnd(10)} ${String(n).padEnd(5)} ${`${C.rows}x${C.cols}`.padEnd(12)} | ${oursS.toFixed(3).padStart(6)} ${String(r.stats.rounds).padStart(6)} ${String(r.stats.edges).padStart(7)} | ${sc.seconds.toFixed(3).padStart(7)} | ${row.speedup.toFixed(1).padStart(6)}x | ${row.objective_diff.toExponential(1)}`,
      );
    }
  }
}

const i = info();
const file = path.join(outDir, `alignment-${Date.now()}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, simd: i.simd, threads: i.threads }, results }, null, 2));
console.log(`\nwritten ${path.relative(process.cwd(), file)}`);
