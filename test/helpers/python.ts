/** Running the numpy/scipy oracles (test/helpers/oracle.py); tests skip cleanly without them. */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ORACLE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'oracle.py');
let available: boolean | undefined;

export function hasScipy(): boolean {
  if (available === undefined) available = spawnSync('python3', ['-c', 'import numpy, scipy.optimize'], { encoding: 'utf8' }).status === 0;
  return available;
}

/** Skips the current mocha test with a message when numpy/scipy are missing. */
export function requireScipy(ctx: Mocha.Context): void {
  if (!hasScipy()) {
    console.log('      (skipped: python3 with numpy and scipy is not available)');
    ctx.skip();
  }
}

function run(args: string[]): string {
  const r = spawnSync('python3', [ORACLE, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`oracle failed: ${r.stderr}`);
  return r.stdout;
}

/** numpy float64 corrcoef between the columns of dense A [n, mA] and B [n, mB] (zero-variance -> 0). */
export function numpyCorrelation(dir: string, A: Float32Array, B: Float32Array, n: number, mA: number, mB: number): Float64Array {
  writeFileSync(path.join(dir, 'A.f32'), A);
  writeFileSync(path.join(dir, 'B.f32'), B);
  run(['corr', dir, String(n), String(mA), String(mB)]);
  const buf = readFileSync(path.join(dir, 'C.f64'));
  return new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8).slice();
}

export interface LsaJob {
  rows: number;
  cols: number;
  data: Float32Array | Float64Array;
  maximize: boolean;
}

export type LsaAnswer = { objective: number; row_ind: number[]; col_ind: number[] } | { error: string };

/** scipy.optimize.linear_sum_assignment on each job. */
export function scipyLsa(dir: string, jobs: LsaJob[]): LsaAnswer[] {
  let offset = 0;
  const meta = [];
  const parts: Uint8Array[] = [];
  for (const j of jobs) {
    const bytes = new Uint8Array(j.data.buffer, j.data.byteOffset, j.data.byteLength);
    const pad = (8 - (offset % 8)) % 8;
    if (pad) parts.push(new Uint8Array(pad));
    offset += pad;
    meta.push({ rows: j.rows, cols: j.cols, maximize: j.maximize, dtype: j.data instanceof Float32Array ? 'f32' : 'f64', offset });
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(meta));
  writeFileSync(path.join(dir, 'costs.bin'), Buffer.concat(parts));
  return JSON.parse(run(['lsa', dir]));
}
