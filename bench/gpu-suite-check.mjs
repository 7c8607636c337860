#!/usr/bin/env node
// Reads the mocha JSON of the whole suite run on a GPU machine (bench/gpu.sh) and decides whether the GPU check
// passed: every test passed, and the CUDA parity tests (test/cuda/parity.test.ts) ran on a device — none of them
// pending (a pending parity test means it was skipped for want of a device) and at least one passed.
//   node bench/gpu-suite-check.mjs <suite.json> <device: real|none>
// Prints the counts (whole suite and parity), the failures, and exits 1 when the check fails.
import { existsSync, readFileSync } from 'node:fs';

const [file, device] = process.argv.slice(2);
if (!existsSync(file)) {
  console.log(`GPU CHECK FAILED: ${file} was not written (the suite did not finish)`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const isParity = (t) => /test[\\/]cuda[\\/]parity\.test\.ts$/.test(t.file ?? '');
const count = (list) => list.filter(isParity).length;
const s = r.stats;
const parity = { passes: count(r.passes), failures: count(r.failures), pending: count(r.pending) };
console.log(`suite: ${s.passes} passed, ${s.failures} failed, ${s.pending} pending (${s.tests} tests, ${Math.round(s.duration / 1000)} s)`);
console.log(`parity (test/cuda/parity.test.ts): ${parity.passes} passed, ${parity.failures} failed, ${parity.pending} pending`);
for (const f of r.failures) console.log(` FAIL ${f.fullTitle}\n    ${String(f.err?.message ?? '').split('\n')[0]}`);
for (const p of r.pending.filter(isParity)) console.log(` PENDING (parity) ${p.fullTitle}`);

const problems = [];
if (device !== 'real') problems.push('no CUDA device is usable here: no parity test can have run on a device');
if (s.failures > 0) problems.push(`${s.failures} test(s) failed`);
if (parity.passes === 0) problems.push('no parity test passed');
if (parity.pending > 0) problems.push(`${parity.pending} parity test(s) pending: they did not run on the device`);
if (s.passes + s.failures + s.pending === 0) problems.push('no test ran');
for (const p of problems) console.log(`GPU CHECK FAILED: ${p}`);
process.exit(problems.length ? 1 : 0);
