/**
 * The CUDA backend against the CPU engine on random and awkward shapes (skipped, with the reason, where no
 * CUDA device can be used), and the device selection rules (run everywhere).
 *
 * Tolerances: encode in fp32 computes the same pre-activations in a different summation order, so values
 * agree to ~1e-5 relative and the selected index sets may differ only where two candidates are within that
 * of each other at the k-th place (near-ties). tf32 rounds the GEMM inputs to 10 mantissa bits: values agree
 * to ~3e-3 relative; bf16 keeps 8 significant bits: values and near-tie windows come from its rounding bound
 * (test/helpers/gemm-bound.ts derives it), checked here on every machine against a simulated BF16 encode.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CorrelationAccumulator, DeviceRows, SaeError, TopKSAE, Trainer, info, solveAssignment, writeNpy, type Matrix, type SaeWeights, type SparseCodes } from '../../lib/index.js';
import { cudaDeviceAvailable } from '../../lib/sae/options.js';
import { expectSaeError } from '../helpers/expect-error.js';
import { BF16_UNIT_ROUNDOFF, expectSameCodesWithin, gemmBound, toBf16 } from '../helpers/gemm-bound.js';
import { Rng, randomCodes } from '../helpers/random.js';
import { worstRatio } from '../helpers/sae.js';
import { tempDir } from '../helpers/tmp.js';
import {
  checkExplodingLearningRate,
  checkNonFiniteGradient,
  checkNonFiniteGradientAsync,
  checkResidentRows,
  checkTinyFvuBatch,
  checkUpdateOverflow,
} from '../sae/divergence-cases.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function randomWeights(rng: Rng, d: number, m: number): SaeWeights {
  const W_dec = rng.normals(m * d);
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += W_dec[j * d + c] ** 2;
    for (let c = 0; c < d; c++) W_dec[j * d + c] /= Math.sqrt(s);
  }
  const W_enc = new Float32Array(d * m);
  for (let j = 0; j < m; j++) for (let c = 0; c < d; c++) W_enc[c * m + j] = W_dec[j * d + c] + 0.1 * rng.normal();
  return { W_enc: { rows: d, cols: m, data: W_enc }, b_enc: rng.normals(m, 0.05), W_dec: { rows: m, cols: d, data: W_dec }, b_dec: rng.normals(d, 0.05) };
}

const batch = (rng: Rng, rows: number, d: number): Matrix => ({ rows, cols: d, data: rng.normals(rows * d) });

/** Same codes up to near-ties: per row, equal value per shared index and any differing index within tol of the k-th value. */
function expectSameCodes(gpu: SparseCodes, cpu: SparseCodes, rtol: number): void {
  expect(gpu.rows).to.equal(cpu.rows);
  expect(gpu.k).to.equal(cpu.k);
  const k = cpu.k;
  for (let r = 0; r < cpu.rows; r++) {
    const a = new Map<number, number>(), b = new Map<number, number>();
    for (let s = 0; s < k; s++) {
      if (cpu.values[r * k + s] > 0) a.set(cpu.indices[r * k + s], cpu.values[r * k + s]);
      if (gpu.values[r * k + s] > 0) b.set(gpu.indices[r * k + s], gpu.values[r * k + s]);
    }
    let kth = Infinity;
    for (const v of a.values()) kth = Math.min(kth, v);
    for (const [j, v] of a) {
      const g = b.get(j);
      if (g === undefined) expect(Math.abs(v - kth), `row ${r}: latent ${j} (${v}) missing on the GPU far from the k-th value ${kth}`).to.be.at.most(rtol * Math.max(1, kth) * 10);
      else expect(Math.abs(g - v), `row ${r} latent ${j}`).to.be.at.most(rtol * Math.max(1, Math.abs(v)));
    }
    // Slot order: best first on both.
    for (let s = 1; s < k; s++) expect(gpu.values[r * k + s]).to.be.at.most(gpu.values[r * k + s - 1]);
  }
}

/** The device's BF16 encode as the bound models it: inputs rounded to BF16, exact products, FP32 sums; Top-K of ReLU, ties to the smaller index. */
function simulatedBf16Encode(w: SaeWeights, x: Matrix, k: number): SparseCodes {
  const { rows: d, cols: m } = w.W_enc;
  const Wb = w.W_enc.data.map(toBf16);
  const indices = new Int32Array(x.rows * k), values = new Float32Array(x.rows * k);
  const pre = new Float64Array(m);
  for (let r = 0; r < x.rows; r++) {
    const xb = Array.from({ length: d }, (_, i) => toBf16(Math.fround(x.data[r * d + i] - w.b_dec[i])));
    for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc = Math.fround(acc + xb[i] * Wb[i * m + j]);
      pre[j] = Math.max(0, Math.fround(acc + w.b_enc[j]));
    }
    const order = Array.from({ length: m }, (_, j) => j).sort((a, b) => pre[b] - pre[a] || a - b);
    for (let s = 0; s < k; s++) {
      indices[r * k + s] = order[s];
      values[r * k + s] = pre[order[s]];
    }
  }
  return { rows: x.rows, k, indices, values };
}

describe('CUDA backend: device selection (every machine)', () => {
  it("'auto' resolves to the CPU without a device, 'cuda' without one is ERR_CUDA_UNAVAILABLE, options the backend lacks stay on the CPU", function () {
    const have = cudaDeviceAvailable();
    using a = TopKSAE.create({ d: 8, m: 16, k: 2, device: 'auto' });
    expect(a.options.device).to.equal(have ? 'cuda' : 'cpu');
    using b = TopKSAE.create({ d: 8, m: 16, k: 2, activation: 'batchtopk', device: 'auto' });
    expect(b.options.device).to.equal('cpu');
    using c = TopKSAE.create({ d: 8, m: 16, k: 2, device: 'cpu' });
    expect(c.options.device).to.equal('cpu');
    expectSaeError(() => TopKSAE.create({ d: 8, m: 16, k: 2, device: 'cuda', auxCoef: 1 }), 'ERR_ARG', /topk/);
    if (!have) {
      const e = expectSaeError(() => TopKSAE.create({ d: 8, m: 16, k: 2, device: 'cuda' }), 'ERR_CUDA_UNAVAILABLE', /use device 'cpu'/);
      expect(e).to.be.instanceOf(SaeError);
    }
    expectSaeError(() => TopKSAE.create({ d: 8, m: 16, k: 2, device: 'gpu' as never }), 'ERR_ARG', /device/);
    if (!have) {
      expectSaeError(() => new CorrelationAccumulator(4, 4, { device: 'cuda' }), 'ERR_CUDA_UNAVAILABLE');
      expectSaeError(() => new DeviceRows(4, 8), 'ERR_CUDA_UNAVAILABLE');
      expectSaeError(() => solveAssignment({ rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, 4) }, { device: 'cuda' }), 'ERR_CUDA_UNAVAILABLE');
    }
    const r = solveAssignment({ rows: 600, cols: 600, data: Float32Array.from({ length: 360000 }, (_, i) => Math.sin(i * 0.7)) }, { maximize: true, device: 'auto' });
    expect(r.stats.device ?? false).to.equal(have);
    using acc = new CorrelationAccumulator(4, 4, { device: 'cpu' });
    expect(acc.mA).to.equal(4);
  });

  it('CMSAE_DEVICE sets the default device of every SAE (an explicit option wins)', () => {
    const script = `import { TopKSAE } from './lib/index.js';
try { const s = TopKSAE.create({ d: 4, m: 8, k: 1 }); console.log('device', s.options.device); } catch (e) { console.log('error', e.code); }
const c = TopKSAE.create({ d: 4, m: 8, k: 1, device: 'cpu' }); console.log('explicit', c.options.device);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_DEVICE: 'cuda' } });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(cudaDeviceAvailable() ? /device cuda/ : /error ERR_CUDA_UNAVAILABLE/);
    expect(r.stdout).to.match(/explicit cpu/);
  });

  it('the BF16 bound covers a simulated BF16 encode (round-to-nearest inputs, exact products, float32 sums) and the FP32 bound does not', () => {
    for (const s of [{ d: 64, m: 256, k: 8, rows: 64 }, { d: 33, m: 300, k: 5, rows: 70 }]) {
      const rng = new Rng(s.d * 7 + s.m);
      const w = randomWeights(rng, s.d, s.m);
      using cpu = TopKSAE.fromWeights(w, { k: s.k, device: 'cpu' });
      const x = batch(rng, s.rows, s.d);
      const sim = simulatedBf16Encode(w, x, s.k);
      expectSameCodesWithin(sim, cpu.encode(x), gemmBound(w, x, BF16_UNIT_ROUNDOFF), `d ${s.d}`);
      expect(() => expectSameCodesWithin(sim, cpu.encode(x), gemmBound(w, x, 0)), 'BF16 rounding must exceed the FP32 bound').to.throw();
    }
  });

  it('the build reports whether CUDA was compiled in', () => {
    const i = info();
    expect(i.cuda.compiled).to.equal(i.build === 'cuda' || i.cuda.emulated === true); // the CPU emulation stands in for a CUDA build
    expect(i.backend).to.equal(cudaDeviceAvailable() && process.env.CMSAE_DEVICE !== 'cpu' ? 'cuda' : 'cpu');
  });
});

describe('CUDA backend: parity with the CPU engine', function () {
  this.timeout(300_000);
  before(function () {
    if (!cudaDeviceAvailable()) {
      const c = info().cuda;
      process.stderr.write(`      (skipped: no usable CUDA device here — ${c.compiled ? c.message : 'this build has no CUDA backend'}; run bench/gpu.sh on a GPU machine)\n`);
      this.skip();
    }
  });

  const shapes = [
    { d: 64, m: 256, k: 8, rows: 64 },
    { d: 33, m: 300, k: 5, rows: 70 }, // nothing a multiple of a tile
    { d: 128, m: 1000, k: 1, rows: 1 },
    { d: 40, m: 300, k: 150, rows: 65 }, // k larger than a tile's 128 latents
    { d: 512, m: 8192, k: 32, rows: 1024 }, // the paper's shape
  ];

  for (const s of shapes)
    it(`encode and decode match in fp32 (d ${s.d}, m ${s.m}, k ${s.k}, rows ${s.rows}); tf32 within 3e-3, bf16 within its rounding bound`, () => {
      const rng = new Rng(s.d * 7 + s.m);
      const w = randomWeights(rng, s.d, s.m);
      using cpu = TopKSAE.fromWeights(w, { k: s.k, device: 'cpu' });
      using gpu = TopKSAE.fromWeights(w, { k: s.k, device: 'cuda', precision: 'fp32' });
      using tf = TopKSAE.fromWeights(w, { k: s.k, device: 'cuda', precision: 'tf32' });
      using bf = TopKSAE.fromWeights(w, { k: s.k, device: 'cuda', precision: 'bf16' });
      const x = batch(rng, s.rows, s.d);
      const cc = cpu.encode(x);
      expectSameCodes(gpu.encode(x), cc, 2e-5);
      expectSameCodes(tf.encode(x), cc, 3e-3);
      expectSameCodesWithin(bf.encode(x), cc, gemmBound(w, x, BF16_UNIT_ROUNDOFF), 'bf16');
      const xc = cpu.decode(cc), xg = gpu.decode(cc);
      expect(worstRatio(xg.data, xc.data, 1e-5, 1e-5).ratio).to.be.at.most(1);
    });

  for (const s of shapes.slice(0, 4))
    it(`gradients (W_enc, W_dec, b_enc, b_dec), one step and ten steps match (d ${s.d}, m ${s.m}, k ${s.k})`, () => {
      const rng = new Rng(s.m + 1);
      const w = randomWeights(rng, s.d, s.m);
      const rows = Math.max(8, s.rows);
      const opts = { k: s.k, weightDecay: 1e-3, loss: 'fvu' as const };
      using cpu = TopKSAE.fromWeights(w, { ...opts, device: 'cpu' });
      using gpu = TopKSAE.fromWeights(w, { ...opts, device: 'cuda', precision: 'fp32' });
      const x = batch(rng, rows, s.d);
      const gc = cpu.computeGradients(x), gg = gpu.computeGradients(x);
      expect(gg.loss).to.be.closeTo(gc.loss, 1e-5 * Math.max(1, gc.loss));
      for (const key of ['W_enc', 'W_dec', 'b_enc'] as const) {
        const a = key === 'b_enc' ? gg.grads.b_enc : gg.grads[key].data, b = key === 'b_enc' ? gc.grads.b_enc : gc.grads[key].data;
        let scale = 0;
        for (const v of b) scale = Math.max(scale, Math.abs(v));
        expect(worstRatio(a, b, 1e-4 * scale, 1e-3).ratio, key).to.be.at.most(1);
      }
      expect(worstRatio(gg.grads.b_dec, gc.grads.b_dec, 1e-5, 1e-3).ratio).to.be.at.most(1);
      for (let t = 0; t < 10; t++) {
        const xb = batch(rng, rows, s.d);
        const a = cpu.step(xb, { lr: 1e-3 }), b = gpu.step(xb, { lr: 1e-3 });
        expect(b.loss, `step ${t}`).to.be.closeTo(a.loss, 1e-3 * Math.max(1, a.loss));
        expect(b.l0).to.be.closeTo(a.l0, 0.05 * s.k);
      }
      const wc = cpu.getWeights(), wg = gpu.getWeights();
      expect(worstRatio(wg.W_dec.data, wc.W_dec.data, 1e-3, 1e-2).ratio).to.be.at.most(1);
      expect(worstRatio(wg.b_dec, wc.b_dec, 1e-3, 1e-2).ratio).to.be.at.most(1);
      const sc = cpu.status(), sg = gpu.status();
      expect(sg.step).to.equal(sc.step);
      expect(sg.deadFraction).to.be.closeTo(sc.deadFraction, 0.05);
    });

  it('paired batches with the code-level pair losses (iso, group) and split steps (forwardBackward + applyUpdate) match', () => {
    const rng = new Rng(5);
    const d = 48, m = 384, k = 6;
    const w = randomWeights(rng, d, m);
    for (const pairLoss of ['iso', 'group'] as const) {
      using cpu = TopKSAE.fromWeights(w, { k, pairLoss, pairLossWeight: 0.1, device: 'cpu' });
      using gpu = TopKSAE.fromWeights(w, { k, pairLoss, pairLossWeight: 0.1, device: 'cuda', precision: 'fp32' });
      for (let t = 0; t < 5; t++) {
        const x = batch(rng, 64, d), y = batch(rng, 64, d);
        const a = cpu.step(x, { pair: y, lr: 1e-3 }), b = gpu.step(x, { pair: y, lr: 1e-3 });
        expect(b.loss, `${pairLoss} step ${t}`).to.be.closeTo(a.loss, 1e-3 * Math.max(1, a.loss));
        expect(b.pairLoss).to.be.closeTo(a.pairLoss, 1e-3 * Math.max(1, a.pairLoss));
      }
    }
    using cpu = TopKSAE.fromWeights(w, { k, device: 'cpu' });
    using gpu = TopKSAE.fromWeights(w, { k, device: 'cuda', precision: 'fp32' });
    const x = batch(rng, 64, d);
    const a = cpu.forwardBackward(x), b = gpu.forwardBackward(x);
    expect(b.gradNorm).to.be.closeTo(a.gradNorm, 1e-3 * a.gradNorm);
    cpu.applyUpdate(1e-3, 0.5);
    gpu.applyUpdate(1e-3, 0.5);
    expect(worstRatio(gpu.getWeights().W_dec.data, cpu.getWeights().W_dec.data, 1e-4, 1e-3).ratio).to.be.at.most(1);
    const lc = gpu.lastCodes(), lcc = cpu.lastCodes();
    expectSameCodes(lc, lcc, 2e-5);
  });

  it('co-activation correlation accumulated on the device equals the CPU accumulator (float64, awkward sizes)', () => {
    const rng = new Rng(11);
    const mA = 300, mB = 257, kA = 8, kB = 5, rows = 5000;
    const codes = (m: number, k: number): SparseCodes => randomCodes(rng, rows, m, k, (r) => (r.next() < 0.2 ? 0 : r.uniform(0.1, 2)));
    const a = codes(mA, kA), b = codes(mB, kB);
    using cpu = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    using gpu = new CorrelationAccumulator(mA, mB, { device: 'cuda' });
    for (let q = 0; q < rows; q += 1700) {
      const sub = (c: SparseCodes, k: number): SparseCodes => {
        const n = Math.min(1700, rows - q);
        return { rows: n, k, indices: c.indices.slice(q * k, (q + n) * k), values: c.values.slice(q * k, (q + n) * k) };
      };
      cpu.add(sub(a, kA), sub(b, kB));
      gpu.add(sub(a, kA), sub(b, kB));
    }
    const rc = cpu.result({ float64: true }), rg = gpu.result({ float64: true });
    expect(rg.n).to.equal(rc.n);
    expect(Array.from(rg.aliveA)).to.deep.equal(Array.from(rc.aliveA));
    let worst = 0;
    for (let i = 0; i < rc.correlation64!.length; i++) worst = Math.max(worst, Math.abs(rg.correlation64![i] - rc.correlation64![i]));
    expect(worst).to.be.below(1e-12);
  });

  it('resident rows: stepRows equals step on the same gathered batch on the device and matches the CPU engine; the trainer trains resident, like the CPU', async () => {
    const rng = new Rng(13);
    const d = 48, m = 384, k = 6, n = 500;
    const w = randomWeights(rng, d, m);
    const X = batch(rng, n, d), Y = batch(rng, n, d);
    using rx = new DeviceRows(n, d);
    using ry = new DeviceRows(n, d);
    rx.upload(0, X);
    ry.upload(0, Y);
    using a = TopKSAE.fromWeights(w, { k, device: 'cuda', precision: 'fp32' });
    using b = TopKSAE.fromWeights(w, { k, device: 'cuda', precision: 'fp32' });
    using c = TopKSAE.fromWeights(w, { k, device: 'cpu' });
    for (let t = 0; t < 5; t++) {
      const idx = Int32Array.from({ length: 64 }, () => rng.int(n));
      const gather = (M: Matrix): Matrix => {
        const data = new Float32Array(64 * d);
        idx.forEach((r, i) => data.set(M.data.subarray(r * d, (r + 1) * d), i * d));
        return { rows: 64, cols: d, data };
      };
      const sa = a.stepRows(rx, idx, { pair: ry, lr: 1e-3 });
      const sb = b.step(gather(X), { pair: gather(Y), lr: 1e-3 });
      const sc = c.step(gather(X), { pair: gather(Y), lr: 1e-3 });
      // Resident and host batches on the device: the same arithmetic, bit for bit.
      expect(sa.loss).to.equal(sb.loss);
      expect(sa.gradNorm).to.equal(sb.gradNorm);
      // The device against the CPU engine: the fp32 parity tolerances.
      expect(sa.loss, `step ${t}: device vs CPU loss`).to.be.closeTo(sc.loss, 1e-3 * Math.max(1, sc.loss));
      expect(sa.gradNorm, `step ${t}: device vs CPU gradient norm`).to.be.closeTo(sc.gradNorm, 1e-3 * sc.gradNorm);
    }
    expect(a.getWeights().W_dec.data).to.deep.equal(b.getWeights().W_dec.data);
    const wa = a.getWeights(), wc = c.getWeights();
    for (const [name, ga, gc] of [['W_enc', wa.W_enc.data, wc.W_enc.data], ['W_dec', wa.W_dec.data, wc.W_dec.data], ['b_enc', wa.b_enc, wc.b_enc], ['b_dec', wa.b_dec, wc.b_dec]] as const)
      expect(worstRatio(ga, gc, 1e-4, 1e-3).ratio, `${name}: resident device steps vs the CPU engine`).to.be.at.most(1);
    expectSaeError(() => a.stepRows(rx, Int32Array.of(n), { lr: 1e-3 }), 'ERR_RANGE');
    // The trainer, resident and not, on the same data: the same trajectory.
    const { dir, cleanup } = tempDir();
    try {
      const img = batch(rng, 2048, d), txt = batch(rng, 2048, d);
      await writeNpy(path.join(dir, 'i.npy'), img);
      await writeNpy(path.join(dir, 't.npy'), txt);
      const losses: Record<string, number> = {};
      for (const resident of ['on', 'off', 'cpu'] as const) {
        const device = resident === 'cpu' ? ('cpu' as const) : ('cuda' as const);
        const train = { epochs: 2, batchSize: 128, device, precision: 'fp32' as const, resident: resident === 'on' ? ('on' as const) : ('off' as const) };
        const tr = new Trainer({ method: 'posthoc', data: { image: { path: path.join(dir, 'i.npy') }, text: { path: path.join(dir, 't.npy') } }, sae: { m: 256, k: 4 }, train }, { out: path.join(dir, resident) });
        let sawResident = false;
        tr.on('resident', () => (sawResident = true));
        const r = await tr.run();
        expect(sawResident).to.equal(resident === 'on');
        losses[resident] = r.last!.loss;
      }
      expect(losses.on).to.equal(losses.off);
      // 32 steps on the device against the same 32 on the CPU engine.
      expect(losses.on, 'device vs CPU trainer, last loss').to.be.closeTo(losses.cpu, 1e-2 * losses.cpu);
    } finally {
      cleanup();
    }
  });

  it('assignment: the device candidate and pricing passes give the CPU optimum (uniform, correlation-like, ties, rectangular, forbidden)', () => {
    const rng = new Rng(17);
    const cases: { rows: number; cols: number; gen: (i: number, j: number) => number; maximize: boolean }[] = [
      { rows: 1024, cols: 1024, gen: () => rng.next(), maximize: true },
      { rows: 700, cols: 900, gen: () => rng.next(), maximize: false },
      { rows: 900, cols: 700, gen: () => rng.next(), maximize: true },
      { rows: 800, cols: 800, gen: () => Math.round(rng.next() * 4) / 4, maximize: true }, // heavy ties
      { rows: 1024, cols: 1024, gen: (i, j) => (i === j ? 0.9 : 0.1 * rng.normal()), maximize: true }, // correlation-like
      { rows: 600, cols: 600, gen: (i, j) => ((i + j) % 7 === 0 ? Infinity : rng.next()), maximize: false }, // forbidden
    ];
    for (const c of cases) {
      const data = new Float32Array(c.rows * c.cols);
      for (let i = 0; i < c.rows; i++) for (let j = 0; j < c.cols; j++) data[i * c.cols + j] = c.gen(i, j);
      const cost = { rows: c.rows, cols: c.cols, data };
      const a = solveAssignment(cost, { maximize: c.maximize, algorithm: 'sparse', device: 'cpu' });
      const b = solveAssignment(cost, { maximize: c.maximize, algorithm: 'sparse', device: 'cuda', returnDuals: true });
      expect(b.stats.device, `${c.rows}x${c.cols}`).to.equal(true);
      expect(b.objective).to.be.closeTo(a.objective, 1e-9 * Math.max(1, Math.abs(a.objective)));
      // The same candidate keys and the same edge order: the same matching, ties included.
      expect(Array.from(b.rowToCol), `${c.rows}x${c.cols}`).to.deep.equal(Array.from(a.rowToCol));
      const seen = new Set<number>();
      for (const j of b.rowToCol) if (j >= 0) {
        expect(seen.has(j)).to.equal(false);
        seen.add(j);
      }
    }
    expectSaeError(() => solveAssignment({ rows: 600, cols: 600, data: new Float32Array(360000).fill(NaN) }, { algorithm: 'sparse', device: 'cuda' }), 'ERR_NONFINITE');
  });

  it('divergence: non-finite steps and updates are ERR_DIVERGED and change nothing on the device (every entry point, awkward shapes)', async () => {
    for (const sh of [{ d: 7, m: 33, k: 5, rows: 13 }, { d: 40, m: 300, k: 150, rows: 3 }]) {
      const s = { device: 'cuda' as const, options: { precision: 'fp32' as const }, ...sh };
      checkNonFiniteGradient(s);
      checkNonFiniteGradient(s, true);
      await checkNonFiniteGradientAsync(s);
      checkExplodingLearningRate(s);
      checkUpdateOverflow(s);
      checkTinyFvuBatch(s);
      await checkResidentRows(s);
    }
  });

  it('checkpoints: state written on the GPU resumes on the CPU and state written on the CPU on the GPU, exactly; both continue alike; a degenerate batch changes nothing', async () => {
    const rng = new Rng(9);
    const d = 32, m = 256, k = 4;
    const batches = Array.from({ length: 6 }, () => batch(rng, 32, d));
    const on = (device: 'cpu' | 'cuda') => (device === 'cuda' ? { device, precision: 'fp32' as const } : { device });
    const { dir, cleanup } = tempDir();
    try {
      for (const [from, to] of [['cuda', 'cpu'], ['cpu', 'cuda']] as const) {
        const label = `${from} -> ${to}`;
        using src = TopKSAE.create({ d, m, k, seed: 3, ...on(from) });
        for (const x of batches.slice(0, 3)) src.step(x, { lr: 1e-3 });
        const out = path.join(dir, `${from}-to-${to}`);
        await src.save(out, { includeTrainingState: true });
        using dst = await TopKSAE.load(out, on(to));
        expect(dst.options.device, label).to.equal(to);
        // What the checkpoint carries arrives unchanged: weights, AdamW moments, latent statistics, counters.
        const ws = src.getWeights(), wd = dst.getWeights();
        for (const [name, a, b] of [['W_enc', wd.W_enc.data, ws.W_enc.data], ['W_dec', wd.W_dec.data, ws.W_dec.data], ['b_enc', wd.b_enc, ws.b_enc], ['b_dec', wd.b_dec, ws.b_dec]] as const)
          expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${label}: ${name}`).to.equal(true);
        const ts = src.getTrainingState(), td = dst.getTrainingState();
        expect({ ...td, arrays: undefined }, label).to.deep.equal({ ...ts, arrays: undefined });
        expect(td.step, label).to.equal(3);
        expect(Object.keys(td.arrays).sort(), label).to.deep.equal(Object.keys(ts.arrays).sort());
        for (const name of Object.keys(ts.arrays)) expect(Array.from(td.arrays[name]), `${label}: ${name}`).to.deep.equal(Array.from(ts.arrays[name]));
        // Each continues on its own device from the same state: the fp32 parity tolerances hold after 3 more steps
        // (a resume without the moments would move the weights by about lr = 1e-3 more than that).
        for (const [t, x] of batches.slice(3).entries()) {
          const a = src.step(x, { lr: 1e-3 }), b = dst.step(x, { lr: 1e-3 });
          expect(b.loss, `${label}: step ${t + 4}`).to.be.closeTo(a.loss, 1e-3 * Math.max(1, a.loss));
        }
        expect(dst.status().step, label).to.equal(6);
        const w1 = src.getWeights(), w2 = dst.getWeights();
        for (const [name, a, b] of [['W_enc', w2.W_enc.data, w1.W_enc.data], ['W_dec', w2.W_dec.data, w1.W_dec.data], ['b_enc', w2.b_enc, w1.b_enc], ['b_dec', w2.b_dec, w1.b_dec]] as const)
          expect(worstRatio(a, b, 1e-4, 1e-3).ratio, `${label}: ${name} after 3 steps on each side`).to.be.at.most(1);
      }
      using gpu = TopKSAE.create({ d, m, k, seed: 3, device: 'cuda', precision: 'fp32' });
      for (const x of batches.slice(0, 3)) gpu.step(x, { lr: 1e-3 });
      const before = gpu.getWeights();
      const same = { rows: 4, cols: d, data: new Float32Array(4 * d).fill(0.5) };
      expectSaeError(() => gpu.step(same, { lr: 1e-3 }), 'ERR_DEGENERATE_BATCH');
      expect(gpu.getWeights().W_dec.data).to.deep.equal(before.W_dec.data);
      expect(gpu.status().step).to.equal(3);
    } finally {
      cleanup();
    }
  });
});
