/**
 * The exact alignment at large m from paired codes (CoactivationCodes.align), end to end: generating the
 * planted codes is reported apart; the timed part is every add() plus align(). Prints time, peak RSS and the
 * large-m path's counters; --compare also runs the dense path on the same store and checks that both give the
 * same objective and permutation.
 * --scipy (with --accumulator) also solves the accumulator's alive correlation submatrix with scipy's
 * linear_sum_assignment in the same run (the anchor; it needs the dense matrix, so only at small m).
 * --accumulator also times today's streaming path on the same codes (CorrelationAccumulator add + result +
 * alignLatents) and compares its objective and permutation.
 *   npx tsx bench/align-large.ts [--m 65536] [--rows 1000000] [--k 32] [--path auto|dense|large] [--compare]
 *     [--accumulator] [--min-fires 1]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';

import { CoactivationCodes, CorrelationAccumulator, alignLatents, type SparseCodes } from '../lib/index.js';
import { PlantedCodes } from '../lib/synth/planted-codes.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const m = Number(arg('m', '65536')), N = Number(arg('rows', '1000000')), k = Number(arg('k', '32'));
const path = arg('path', 'auto') as 'auto' | 'dense' | 'large';
const compare = process.argv.includes('--compare');
const accumulator = process.argv.includes('--accumulator');
const kept: { a: SparseCodes; b: SparseCodes }[] = [];
const chunk = 100_000;
const gib = (b: number) => (b / 2 ** 30).toFixed(2);

const gen = new PlantedCodes({ m, k, seed: 12345 });
let genMs = 0, addMs = 0;
using store = new CoactivationCodes(m, m);
for (let r = 0; r < N; r += chunk) {
  const t0 = performance.now();
  const { a, b } = gen.next(Math.min(chunk, N - r));
  const t1 = performance.now();
  await store.addAsync(a, b);
  if (accumulator) kept.push({ a, b });
  genMs += t1 - t0;
  addMs += performance.now() - t1;
}
const t0 = performance.now();
const minFires = Number(arg('min-fires', '1'));
const res = await store.alignAsync({ path, minFires });
const alignMs = performance.now() - t0;
const planted = gen.perm;
let recovered = 0, partnered = 0;
for (let i = 0; i < m; i++)
  if (planted[i] >= 0 && res.aliveA[i]) {
    partnered++;
    recovered += +(res.rowToCol[i] === planted[i]);
  }
console.log(JSON.stringify({
  m, rows: N, k, path: res.plan.path,
  generate_s: +(genMs / 1000).toFixed(2),
  add_s: +(addMs / 1000).toFixed(2),
  align_s: +(alignMs / 1000).toFixed(2),
  end_to_end_s: +((addMs + alignMs) / 1000).toFixed(2),
  phases_s: res.seconds,
  peak_rss_gib: +gib(process.resourceUsage().maxRSS * 1024),
  plan_gib: { budget: gib(res.plan.budget), codes: gib(res.plan.codes), layout: gib(res.plan.layout), dense: gib(res.plan.dense), large: gib(res.plan.large) },
  alive: { a: res.aliveA.reduce((s, x) => s + x, 0), b: res.aliveB.reduce((s, x) => s + x, 0) },
  objective: res.objective,
  planted_recovered: `${recovered} / ${partnered}`,
  large: res.largeStats,
}));
if (compare) {
  const t1 = performance.now();
  const other = await store.alignAsync({ path: res.plan.path === 'large' ? 'dense' : 'large', minFires });
  const otherMs = performance.now() - t1;
  let same = 0;
  for (let i = 0; i < m; i++) same += +(other.rowToCol[i] === res.rowToCol[i]);
  console.log(JSON.stringify({ other_path: other.plan.path, other_align_s: +(otherMs / 1000).toFixed(2), other_phases_s: other.seconds, same_objective: other.objective === res.objective, objective_diff: other.objective - res.objective, same_rowToCol: `${same} / ${m}`, ratio_large_over_dense: res.plan.path === 'large' ? alignMs / otherMs : otherMs / alignMs, peak_rss_gib: +gib(process.resourceUsage().maxRSS * 1024) }));
}
if (accumulator) {
  const t1 = performance.now();
  using acc = new CorrelationAccumulator(m, m, { device: 'cpu' });
  for (const { a, b } of kept) await acc.addAsync(a, b);
  const r = acc.result({ minFires });
  const perm = alignLatents(r, { device: 'cpu' });
  const accMs = performance.now() - t1;
  let same = 0, obj = 0;
  for (let i = 0; i < m; i++) {
    same += +(perm[i] === res.perm![i]);
    if (r.aliveA[i] && r.aliveB[perm[i]]) obj += r.correlation.data[i * m + perm[i]];
  }
  if (process.argv.includes('--scipy')) {
    const ra: number[] = [], rb: number[] = [];
    for (let i = 0; i < m; i++) {
      if (r.aliveA[i]) ra.push(i);
      if (r.aliveB[i]) rb.push(i);
    }
    const sub = new Float32Array(ra.length * rb.length);
    ra.forEach((i, x) => rb.forEach((j, y) => (sub[x * rb.length + y] = r.correlation.data[i * m + j])));
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'cmsae-lsa-'));
    const file = nodePath.join(dir, 'c.f32');
    fs.writeFileSync(file, sub);
    const py = `import numpy as np, time, sys
from scipy.optimize import linear_sum_assignment
c = np.fromfile(sys.argv[1], dtype=np.float32).reshape(${ra.length}, ${rb.length})
t = time.perf_counter(); r, k = linear_sum_assignment(c, maximize=True); dt = time.perf_counter() - t
print(dt, float(c[r, k].astype(np.float64).sum()))`;
    const [dt, sobj] = execFileSync('python3', ['-c', py, file], { encoding: 'utf8' }).trim().split(' ').map(Number);
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(JSON.stringify({ scipy_lsa_s: +dt.toFixed(2), ours_align_s: +(alignMs / 1000).toFixed(2), speedup_vs_scipy_solve_alone: dt / (alignMs / 1000), objective_rel_diff_vs_scipy: (res.objective - sobj) / sobj }));
  }
  console.log(JSON.stringify({ accumulator_s: +(accMs / 1000).toFixed(2), ours_s: +((addMs + alignMs) / 1000).toFixed(2), ratio_ours_over_accumulator: (addMs + alignMs) / accMs, objective_rel_diff: (obj - res.objective) / res.objective, same_perm: `${same} / ${m}`, peak_rss_gib: +gib(process.resourceUsage().maxRSS * 1024) }));
}
