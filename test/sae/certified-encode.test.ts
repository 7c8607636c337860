// The certified mixed-precision Top-K encode (native/sae/certified_encode.h) returns the float32 encode's codes bit
// for bit: same indices, values and tie order, on random, awkward and adversarial inputs, through the fallback, and
// through 20 training steps (AuxK and the BF16 repacking of the fused update included). Every certified path this
// CPU has is run; a machine without AVX-512-BF16 skips with the reason.
import { expect } from 'chai';

import { encodeStats, info, setEncodePath, setThreads, getThreads, TopKSAE, SaeError, type EncodeMode, type Matrix, type SparseCodes, type TopKSAEOptions } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';

const certifiedPaths = () => info().encodePaths.filter((p) => p !== 'fp32') as EncodeMode[];

function encodeWith(path: EncodeMode, sae: TopKSAE, x: Matrix): { codes: SparseCodes; certified: number; fallback: number } {
  setEncodePath(path);
  const s0 = encodeStats();
  const codes = sae.encode(x);
  const s1 = encodeStats();
  return { codes, certified: s1.certifiedRows - s0.certifiedRows, fallback: s1.fallbackRows - s0.fallbackRows };
}

function expectSameCodes(a: SparseCodes, b: SparseCodes, what: string): void {
  expect(b.indices.length, what).to.equal(a.indices.length);
  for (let i = 0; i < a.indices.length; i++) {
    if (a.indices[i] !== b.indices[i] || !Object.is(a.values[i], b.values[i]))
      throw new Error(`${what}: slot ${i} (row ${Math.floor(i / a.k)}) is ${b.indices[i]}=${b.values[i]}, float32 gave ${a.indices[i]}=${a.values[i]}`);
  }
}

/** Compares every certified path with fp32 on (sae, x); returns the rows each path certified and handed back. */
function compareAll(sae: TopKSAE, x: Matrix, what: string): Record<string, { certified: number; fallback: number }> {
  const ref = encodeWith('fp32', sae, x);
  expect(ref.certified + ref.fallback, 'fp32 takes no certified path').to.equal(0);
  const out: Record<string, { certified: number; fallback: number }> = {};
  for (const p of certifiedPaths()) {
    const got = encodeWith(p, sae, x);
    expectSameCodes(ref.codes, got.codes, `${what} [${p}]`);
    expect(got.certified + got.fallback, `${what} [${p}]: every row went through the certified path`).to.equal(x.rows);
    out[p] = { certified: got.certified, fallback: got.fallback };
  }
  return out;
}

function matrix(rows: number, cols: number, data: Float32Array): Matrix {
  return { rows, cols, data };
}

describe('certified BF16 Top-K encode equals the float32 encode', function () {
  let threads = 0;
  let mode: EncodeMode = 'auto';
  before(function () {
    if (certifiedPaths().length === 0) {
      console.log(`      (skipped: this CPU or SIMD level has no certified encode path: ${JSON.stringify(info().encodePaths)}, simd ${info().simd})`);
      this.skip();
    }
    threads = getThreads();
    mode = info().encodeMode;
  });
  after(() => {
    if (threads) setThreads(threads);
    setEncodePath(mode);
  });

  it('reports the paths it runs and refuses unknown ones', () => {
    const paths = info().encodePaths;
    expect(paths).to.include('fp32');
    expect(info().encodePath).to.equal(paths[0]);
    expect(() => setEncodePath('int8' as EncodeMode)).to.throw(SaeError).with.property('code', 'ERR_ARG');
    if (!paths.includes('amx-bf16')) expect(() => setEncodePath('amx-bf16')).to.throw(SaeError).with.property('code', 'ERR_UNSUPPORTED');
    setEncodePath('fp32');
    expect(info().encodePath).to.equal('fp32');
    setEncodePath('auto');
    expect(info().encodePath).to.equal(paths[0]);
  });

  it('random inputs at several shapes and thread counts', () => {
    const rng = new Rng(11);
    // Row blocks (32 rows) per thread: 5 (300 rows, 2 threads), 9-10 (600, 2), uneven (600, 3); too few or too
    // uneven for fixed ranges (1, 2; 70, 2; 64, 4: the latent blocks are spread instead). Fixed ranges over several
    // latent blocks (each thread prefetching the next block's panels), in one run of up to 16 row blocks and in two:
    // 1100 rows, d = 512, m = 1024 (4 latent blocks of 256; 18 and 17 row blocks per thread); 1700 rows, d = 64,
    // m = 4160 (blocks of 2048, 2048 and 64 latents; 18 row blocks on each of 3 threads).
    for (const [B, d, m, k, t] of [
      [300, 64, 1024, 16, 2],
      [600, 32, 1024, 8, 2],
      [600, 32, 1024, 8, 3],
      [64, 64, 1024, 16, 4],
      [97, 100, 640, 8, 1],
      [1, 48, 512, 32, 2],
      [70, 512, 2048, 32, 2],
      [1100, 512, 1024, 32, 2],
      [1700, 64, 4160, 16, 3],
    ]) {
      setThreads(t);
      const sae = TopKSAE.create({ d, m, k, seed: B + d, device: 'cpu' });
      // A decoy batch of the same shape first, on one thread (another split of the rows): its rows then sit in the
      // per-call buffers, so a row that the pass below does not prepare again shows up as a wrong code.
      setThreads(1);
      compareAll(sae, matrix(B, d, rng.normals(B * d)), `decoy B=${B} d=${d} m=${m} k=${k} threads=1`);
      setThreads(t);
      const x = matrix(B, d, rng.normals(B * d));
      const res = compareAll(sae, x, `B=${B} d=${d} m=${m} k=${k} threads=${t}`);
      for (const [p, r] of Object.entries(res)) expect(r.fallback, `${p}: every random row certified, none handed back`).to.equal(0);
      sae.dispose();
    }
  });

  it('awkward shapes: d = 7, m = 33, k = 5; k = m; B = 1', () => {
    const rng = new Rng(12);
    for (const [B, d, m, k] of [
      [13, 7, 33, 5],
      [9, 7, 33, 33],
      [1, 7, 33, 5],
      [5, 31, 17, 17],
      [40, 33, 65, 1],
    ]) {
      const sae = TopKSAE.create({ d, m, k, seed: 3, device: 'cpu' });
      compareAll(sae, matrix(B, d, rng.normals(B * d)), `B=${B} d=${d} m=${m} k=${k}`);
      sae.dispose();
    }
  });

  it('adversarial near-ties: many pre-activations within one BF16 ulp of the k-th value, and exact ties', () => {
    const rng = new Rng(13);
    const d = 64, m = 512, k = 16, B = 40;
    const sae = TopKSAE.create({ d, m, k, seed: 5, device: 'cpu' });
    const w = sae.getWeights();
    const base = rng.normals(d, 0.1);
    for (let j = 0; j < m; j++) {
      // Latents 0..255: one direction plus perturbations far below a BF16 ulp (2^-8 relative); 256..383: exact
      // copies of latent 256 (ties broken by index); the rest random.
      for (let c = 0; c < d; c++) {
        let v: number;
        if (j < 256) v = base[c] * (1 + (rng.next() - 0.5) * 2 ** -12);
        else if (j < 384) v = base[(c + 1) % d];
        else v = rng.normal() * 0.1;
        w.W_enc.data[j * d + c] = v;
      }
      w.b_enc[j] = j < 384 ? 0 : -0.5;
    }
    sae.setWeights(w);
    const x = new Float32Array(B * d);
    for (let r = 0; r < B; r++) {
      const mix = r % 2 === 0 ? 1 : 0;  // even rows along the near-tied direction, odd rows along the tied copies
      for (let c = 0; c < d; c++) x[r * d + c] = mix * base[c] * 3 + (1 - mix) * base[(c + 1) % d] * 3 + rng.normal() * 1e-3;
    }
    const res = compareAll(sae, matrix(B, d, x), 'near-ties and exact ties');
    for (const p of Object.keys(res)) expect(res[p].certified + res[p].fallback).to.equal(B);
    sae.dispose();
  });

  it('refuses NaN and Inf in x on every certified path (checked while the rows are prepared), naming the first one', () => {
    const rng = new Rng(23);
    // Fixed ranges (600 rows, 2 threads), spread latent blocks (64 rows, 4 threads), two passes of rows (5000 rows:
    // the bad value in the second), and d = 33 (a tail of 1 past two whole vectors).
    for (const [B, d, m, k, t] of [
      [600, 64, 1024, 16, 2],
      [64, 64, 1024, 16, 4],
      [5000, 16, 256, 8, 2],
      [40, 33, 512, 8, 1],
    ]) {
      setThreads(t);
      const sae = TopKSAE.create({ d, m, k, seed: B, device: 'cpu' });
      const base = rng.normals(B * d);
      for (const p of certifiedPaths()) {
        setEncodePath(p);
        for (const [at, bad] of [[0, NaN], [B * d - 1, Infinity], [Math.floor(B / 2) * d + d - 1, -Infinity], [(B - 1) * d + 32 % d, NaN]] as const) {
          const data = base.slice();
          data[at] = bad;
          const where = new RegExp(`row ${Math.floor(at / d)}, column ${at % d}`);
          let err: unknown;
          try {
            sae.encode(matrix(B, d, data));
          } catch (e) {
            err = e;
          }
          expect(err, `B=${B} d=${d} [${p}] bad value at ${at}`).to.be.instanceOf(SaeError);
          expect((err as SaeError).code).to.equal('ERR_NONFINITE');
          expect((err as SaeError).message).to.match(where);
        }
      }
      // The engine is unharmed: a clean batch still encodes as float32 does, through the certified path.
      const res = compareAll(sae, matrix(B, d, base), `after refusals B=${B} d=${d}`);
      for (const [p, r] of Object.entries(res)) expect(r.fallback, `${p} rows handed back`).to.equal(0);
      sae.dispose();
    }
    // x finite but x - b_dec overflowing float32: not an input error; every path does what float32 does.
    setThreads(2);
    const d = 64, B = 600;
    const sae = TopKSAE.create({ d, m: 1024, k: 16, seed: 5, device: 'cpu' });
    const w = sae.getWeights();
    w.b_dec[3] = 3e38;
    sae.setWeights(w);
    const x = rng.normals(B * d);
    x[7 * d + 3] = -3e38;
    const outcome = (p: EncodeMode) => {
      setEncodePath(p);
      try {
        return sae.encode(matrix(B, d, x));
      } catch (e) {
        return `${(e as SaeError).code}: ${(e as Error).message}`;
      }
    };
    const ref = outcome('fp32');
    for (const p of certifiedPaths()) {
      const got = outcome(p);
      if (typeof ref === 'string') expect(got, p).to.equal(ref);
      else expectSameCodes(ref, got as SparseCodes, `x - b_dec overflow [${p}]`);
    }
    sae.dispose();
  });

  it('huge and tiny row norms (including rows the bound cannot certify: the float32 fallback)', () => {
    const rng = new Rng(14);
    const d = 32, m = 768, k = 8, B = 48;
    const sae = TopKSAE.create({ d, m, k, seed: 9, device: 'cpu' });
    const x = rng.normals(B * d);
    const scales = [1e30, 1e20, 1, 1e-20, 1e-33, 1e-38, 0];
    for (let r = 0; r < B; r++) for (let c = 0; c < d; c++) x[r * d + c] *= scales[r % scales.length];
    const res = compareAll(sae, matrix(B, d, x), 'huge and tiny rows');
    for (const p of Object.keys(res)) {
      expect(res[p].fallback, `${p}: the denormal-scale rows cannot be certified and go to float32`).to.be.greaterThan(0);
      expect(res[p].certified, `${p}: the ordinary and huge rows are certified`).to.be.greaterThan(0);
    }
    sae.dispose();
  });

  it('falls back when the bound admits too many candidates (a tiny-norm batch)', () => {
    const rng = new Rng(15);
    const d = 16, m = 1024, k = 4, B = 20;
    const sae = TopKSAE.create({ d, m, k, seed: 2, device: 'cpu' });
    const x = rng.normals(B * d, 1e-36);
    const res = compareAll(sae, matrix(B, d, x), 'tiny batch');
    for (const p of Object.keys(res)) expect(res[p].fallback, `${p} fallback rows`).to.equal(B);
    sae.dispose();
  });

  it('20 training steps (AuxK, BatchTopK, b_dec mean) end with bit-identical weights, moments and codes', () => {
    // The second shape (d = 7: a depth tail; k = 17: a second exact round and rows sharing a vector; one thread)
    // runs every option with odd sizes.
    for (const [d, m, k, B, t] of [
      [40, 320, 6, 64, 0],
      [7, 400, 17, 50, 1],
    ]) {
      if (t) setThreads(t);
      const cases: Omit<TopKSAEOptions, 'd' | 'm' | 'k'>[] = [
        { bDecInit: 'mean', weightDecay: 1e-3 },
        { auxCoef: 1 / 32, kAux: 16, deadWindow: 64 },
        { activation: 'batchtopk', batchCapacity: 2 * k },
      ];
      for (const opts of cases) {
        const run = (path: EncodeMode) => {
          setEncodePath(path);
          const rng = new Rng(21);
          const sae = TopKSAE.create({ d, m, k, seed: 4, device: 'cpu', ...opts });
          const s0 = encodeStats();
          const losses: number[] = [];
          for (let s = 0; s < 20; s++) losses.push(sae.step(matrix(B, d, rng.normals(B * d)), { lr: 5e-3 }).loss);
          const certified = encodeStats().certifiedRows - s0.certifiedRows;
          const w = sae.getWeights();
          const st = sae.getTrainingState();
          const codes = sae.encode(matrix(B, d, rng.normals(B * d)));
          sae.dispose();
          return { losses, w, st, codes, certified };
        };
        const ref = run('fp32');
        expect(ref.certified).to.equal(0);
        for (const p of certifiedPaths()) {
          const got = run(p);
          const what = `d=${d} m=${m} k=${k} ${JSON.stringify(opts)} [${p}]`;
          expect(got.certified, `${what}: the steps used the certified encode`).to.be.greaterThan(20 * B - 1);
          expect(got.losses, `${what}: losses`).to.deep.equal(ref.losses);
          for (const key of ['W_enc', 'W_dec'] as const) expect(Buffer.from(got.w[key].data.buffer).equals(Buffer.from(ref.w[key].data.buffer)), `${what}: ${key}`).to.equal(true);
          expect(Buffer.from(got.w.b_enc.buffer).equals(Buffer.from(ref.w.b_enc.buffer)), `${what}: b_enc`).to.equal(true);
          for (const name of Object.keys(ref.st.arrays)) {
            const a = ref.st.arrays[name], b = got.st.arrays[name];
            expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), `${what}: ${name}`).to.equal(true);
          }
          expectSameCodes(ref.codes, got.codes, `${what}: codes after training`);
        }
      }
      if (t) setThreads(threads);
    }
  });
});
