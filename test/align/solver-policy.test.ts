/**
 * The assignment's solver policy (native/lap/solver_policy.cc), observed through what a solve reports: 'auto' takes
 * the dense solver below min(rows, cols) = 512 and the certified sparse path from 512 up; the sparse path's row
 * candidates are clamped to max(rows, cols); its candidate and pricing passes run on the device only for float32
 * costs with at most 64 candidates per row (the device kernels' limit), and a device asked for but missing is
 * ERR_CUDA_UNAVAILABLE exactly where the passes would have run there.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';

import { solveAssignment, type CostMatrix } from '../../lib/index.js';
import { native, nativePath } from '../../lib/native/load.js';
import { expectSaeError } from '../helpers/expect-error.js';

const DENSE_STATS = { rounds: 0, violations: 0, edges: 0, weakRows: 0, warmRounds: 0, fellBack: false, device: false };

function costs(rows: number, cols: number): CostMatrix {
  const data = new Float64Array(rows * cols);
  for (let q = 0; q < data.length; q++) data[q] = ((q * 2654435761) % 1000003) / 1000003;
  return { rows, cols, data };
}

interface DeviceCase {
  name: string;
  rows: number;
  cols: number;
  f32: boolean;
  algorithm: 'auto' | 'dense' | 'sparse';
  k: number;
  onDevice: boolean;
}

const DEVICE_CASES: DeviceCase[] = [
  { name: 'float32, k = 64 (the device limit)', rows: 600, cols: 600, f32: true, algorithm: 'sparse', k: 64, onDevice: true },
  { name: 'float32, k = 65 (just above it: CPU passes)', rows: 600, cols: 600, f32: true, algorithm: 'sparse', k: 65, onDevice: false },
  { name: 'float32, k = 63', rows: 600, cols: 600, f32: true, algorithm: 'sparse', k: 63, onDevice: true },
  { name: 'float64 costs', rows: 600, cols: 600, f32: false, algorithm: 'sparse', k: 16, onDevice: false },
  { name: "'auto' at 511 x 511 (dense: no passes)", rows: 511, cols: 511, f32: true, algorithm: 'auto', k: 16, onDevice: false },
  { name: "'auto' at 512 x 512", rows: 512, cols: 512, f32: true, algorithm: 'auto', k: 16, onDevice: true },
  { name: "'dense' at 600 x 600", rows: 600, cols: 600, f32: true, algorithm: 'dense', k: 16, onDevice: false },
  { name: '200 candidates on 40 x 30 (clamped to 40 <= 64)', rows: 40, cols: 30, f32: true, algorithm: 'sparse', k: 200, onDevice: true },
  { name: 'an empty matrix', rows: 0, cols: 5, f32: true, algorithm: 'sparse', k: 16, onDevice: false },
];

// Runs every case through the binding b with device 'cuda': 'device', 'cpu' (passes on the CPU) or the error code.
// Plain JavaScript, so that a child process with CMSAE_EMULATE_CUDA=1 runs the same code.
const OUTCOMES_JS = `
  return cases.map((c) => {
    const n = c.rows * c.cols;
    const data = c.f32 ? new Float32Array(n) : new Float64Array(n);
    for (let q = 0; q < n; q++) data[q] = ((q * 2654435761) % 1000003) / 1000003;
    try {
      return b.solveAssignment(data, c.rows, c.cols, false, c.algorithm, c.k, 'cuda').stats.device ? 'device' : 'cpu';
    } catch (e) {
      return e.code;
    }
  });`;

function expected(deviceRegistered: boolean): string[] {
  return DEVICE_CASES.map((c) => (c.onDevice ? (deviceRegistered ? 'device' : 'ERR_CUDA_UNAVAILABLE') : 'cpu'));
}

function labelled(outcomes: string[]): string[] {
  return DEVICE_CASES.map((c, q) => `${c.name}: ${outcomes[q]}`);
}

describe('assignment solver policy (dense vs sparse, candidates, device limits)', () => {
  it("'auto' is dense below min(rows, cols) = 512 and sparse from 512 up, in both orientations", () => {
    const cases: [number, number, boolean][] = [
      [511, 511, false],
      [512, 512, true],
      [511, 600, false],
      [600, 511, false],
      [512, 600, true],
      [600, 512, true],
    ];
    for (const [rows, cols, sparse] of cases) {
      const { stats } = solveAssignment(costs(rows, cols), { device: 'cpu' });
      if (sparse) expect(stats.rounds > 0 || stats.fellBack, `${rows} x ${cols}: the sparse path ran`).to.equal(true);
      else expect(stats, `${rows} x ${cols}: the dense solver ran`).to.deep.equal(DENSE_STATS);
    }
  });

  it("'dense' and 'sparse' are taken whatever the size", () => {
    expect(solveAssignment(costs(600, 600), { algorithm: 'dense', device: 'cpu' }).stats).to.deep.equal(DENSE_STATS);
    const { stats } = solveAssignment(costs(5, 7), { algorithm: 'sparse', device: 'cpu' });
    expect(stats.rounds, 'a 5 x 7 sparse solve').to.be.at.least(1);
    expect(stats.edges).to.be.above(0);
  });

  it('the sparse path clamps its row candidates to max(rows, cols)', () => {
    // Column 0 is every row's favourite and row 0 holds its best entry: rows 1.. are "weak" when every row keeps
    // all 6 of its entries as candidates (k = 6), and a row with fewer than k candidates is never weak.
    const c = costs(4, 6);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 6; j++) c.data[i * 6 + j] = j === 0 ? 0.5 * i : 1 + 0.01 * j;
    const at6 = solveAssignment(c, { algorithm: 'sparse', candidates: 6, device: 'cpu' });
    const at100 = solveAssignment(c, { algorithm: 'sparse', candidates: 100, device: 'cpu' });
    expect(at6.stats.weakRows, 'k = 6 finds the weak rows').to.be.above(0);
    expect(at100.stats, 'candidates 100 runs as k = max(rows, cols) = 6').to.deep.equal(at6.stats);
    expect(Array.from(at100.rowToCol)).to.deep.equal(Array.from(at6.rowToCol));
  });

  it('candidates: at most 65536 (kMaxCandidates) reach the native solver', () => {
    const c = costs(3, 4);
    expect(native().solveAssignment(c.data, 3, 4, false, 'sparse', 65536, 'cpu').objective).to.be.a('number').and.satisfy(Number.isFinite);
    expectSaeError(() => native().solveAssignment(c.data, 3, 4, false, 'sparse', 65537, 'cpu'), 'ERR_ARG', /\[1, 65536\]/);
  });

  it('device limits in this process: passes on the device exactly for float32 and k <= 64', function () {
    const info = native().cudaInfo();
    // A CUDA build without a usable GPU registers the device but cannot open it: its errors are the driver's.
    if (info.compiled && !info.available) this.skip();
    const outcomes = new Function('b', 'cases', OUTCOMES_JS)(native(), DEVICE_CASES) as string[];
    expect(labelled(outcomes)).to.deep.equal(labelled(expected(info.available)));
  });

  it('device limits on the CPU emulation of the device (CMSAE_EMULATE_CUDA=1, a child process)', function () {
    this.timeout(120_000);
    const env: NodeJS.ProcessEnv = { ...process.env, CMSAE_EMULATE_CUDA: '1' };
    delete env.CMSAE_DEVICE;
    native();
    const script = `const b = require(${JSON.stringify(nativePath())}); const cases = ${JSON.stringify(DEVICE_CASES)};
      process.stdout.write(JSON.stringify((function (b, cases) {${OUTCOMES_JS}})(b, cases)));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
    expect(r.status, r.stderr).to.equal(0);
    expect(labelled(JSON.parse(r.stdout) as string[])).to.deep.equal(labelled(expected(true)));
  });
});
