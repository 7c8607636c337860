import { expect } from 'chai';

import { TopKSAE, getThreads, info, setSimdLevel, setThreads } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { randomParams, refDecode, refEncode, roundToF32 } from '../helpers/reference.js';
import { fromWeights, saeFromRef, toWeights, worstRatio } from '../helpers/sae.js';

interface Shape {
  B: number;
  d: number;
  m: number;
  k: number;
}

const SHAPES: Shape[] = [
  { B: 13, d: 7, m: 33, k: 5 },
  { B: 5, d: 7, m: 33, k: 1 },
  { B: 4, d: 7, m: 33, k: 33 },
  { B: 1, d: 16, m: 40, k: 8 },
  { B: 1, d: 7, m: 33, k: 5 },
  { B: 37, d: 65, m: 257, k: 16 },
  { B: 64, d: 130, m: 600, k: 32 },
  { B: 7, d: 3, m: 5, k: 5 },
  { B: 9001, d: 5, m: 21, k: 3 }, // more rows than one encode pass handles (8192)
];

/** Native encode must equal the reference: same index sets (and order), values to 1e-5 relative. */
function compareEncode(s: Shape, seed: number): void {
  const rng = new Rng(seed);
  const p = roundToF32(randomParams(s.d, s.m, () => rng.next()));
  const x = rng.normals(s.B * s.d);
  const sae = saeFromRef(p, { k: s.k });
  try {
    const codes = sae.encode({ rows: s.B, cols: s.d, data: x });
    const ref = refEncode(p, x, s.B, s.k);
    expect(codes.k).to.equal(s.k);
    expect(Array.from(codes.indices)).to.deep.equal(Array.from(ref.indices));
    const { ratio } = worstRatio(codes.values, ref.values, 1e-6, 1e-5);
    expect(ratio, 'values within 1e-5 relative').to.be.at.most(1);
    const dec = sae.decode(codes);
    const refDec = refDecode(p, ref);
    expect(worstRatio(dec.data, refDec, 1e-5, 1e-5).ratio).to.be.at.most(1);
  } finally {
    sae.dispose();
  }
}

describe('fused Top-K encode', () => {
  const threads = getThreads();
  const simd = info().simdDetected as 'scalar' | 'avx2' | 'avx512';
  afterEach(() => {
    setThreads(threads);
    setSimdLevel(simd);
  });

  for (const s of SHAPES) {
    it(`equals the dense reference at B=${s.B} d=${s.d} m=${s.m} k=${s.k}`, () => {
      compareEncode(s, 1000 + s.B * 7 + s.m);
    });
  }

  for (const level of ['scalar', 'avx2', 'avx512'] as const) {
    it(`equals the reference with the ${level} kernels (skipped where the CPU lacks them)`, function () {
      const set = setSimdLevel(level);
      if (set !== level) {
        console.log(`      (skipped: this CPU has no ${level}; best is ${simd})`);
        this.skip();
      }
      for (const s of SHAPES) compareEncode(s, 77 + s.m);
    });
  }

  it('gives the same codes with 1, 2 and 3 threads', () => {
    const rng = new Rng(5);
    const s = { B: 50, d: 40, m: 700, k: 12 };
    const p = roundToF32(randomParams(s.d, s.m, () => rng.next()));
    const x = { rows: s.B, cols: s.d, data: rng.normals(s.B * s.d) };
    const sae = saeFromRef(p, { k: s.k });
    const runs = [1, 2, 3].map((t) => {
      setThreads(t);
      return sae.encode(x);
    });
    sae.dispose();
    for (const r of runs.slice(1)) {
      expect(Array.from(r.indices)).to.deep.equal(Array.from(runs[0].indices));
      expect(Array.from(r.values)).to.deep.equal(Array.from(runs[0].values));
    }
  });

  it('breaks ties toward the smaller latent index', () => {
    // Latents 3, 10 and 20 have identical encoder columns and biases: equal pre-activations.
    const rng = new Rng(9);
    const d = 8, m = 24, k = 2;
    const p = roundToF32(randomParams(d, m, () => rng.next()));
    for (let i = 0; i < d; i++) {
      p.W_enc[i * m + 3] = 1;
      p.W_enc[i * m + 10] = 1;
      p.W_enc[i * m + 20] = 1;
    }
    p.b_enc[3] = p.b_enc[10] = p.b_enc[20] = 0;
    p.b_dec.fill(0);
    const x = new Float32Array(d).fill(1); // pre = 8 for the three tied latents, far above the others
    const sae = saeFromRef(p, { k });
    const codes = sae.encode({ rows: 1, cols: d, data: x });
    sae.dispose();
    expect(Array.from(codes.indices)).to.deep.equal([3, 10]);
  });

  it('pads with value 0 and the smallest unused indices when fewer than k pre-activations are positive', () => {
    const d = 4, m = 10, k = 4;
    const rng = new Rng(3);
    const p = roundToF32(randomParams(d, m, () => rng.next()));
    p.W_enc.fill(0);
    p.b_dec.fill(0);
    p.b_enc.fill(-1);
    p.b_enc[7] = 2; // the only positive latent
    const sae = saeFromRef(p, { k });
    const codes = sae.encode({ rows: 1, cols: d, data: new Float32Array(d) });
    sae.dispose();
    expect(Array.from(codes.indices)).to.deep.equal([7, 0, 1, 2]);
    expect(Array.from(codes.values)).to.deep.equal([2, 0, 0, 0]);
  });

  it('always encodes with the current weights (after setWeights, training steps and SIMD changes)', () => {
    const rng = new Rng(21);
    const s = { B: 20, d: 24, m: 70, k: 6 };
    const p = roundToF32(randomParams(s.d, s.m, () => rng.next()));
    const x = { rows: s.B, cols: s.d, data: rng.normals(s.B * s.d) };
    const sae = saeFromRef(p, { k: s.k });
    const check = () => {
      const q = fromWeights(sae.getWeights());
      expect(Array.from(sae.encode(x).indices)).to.deep.equal(Array.from(refEncode(q, x.data, s.B, s.k).indices));
    };
    check();
    const p2 = roundToF32(randomParams(s.d, s.m, () => rng.next()));
    sae.setWeights(toWeights(p2));
    check();
    for (let i = 0; i < 3; i++) {
      sae.step(x, { lr: 0.05 });
      check();
    }
    setSimdLevel('scalar');
    check();
    sae.step(x, { lr: 0.05 });
    check();
    setSimdLevel(simd);
    check();
    sae.dispose();
  });

  it('is deterministic for a given seed', () => {
    const a = TopKSAE.create({ d: 20, m: 50, k: 4, seed: 42, device: 'cpu' });
    const b = TopKSAE.create({ d: 20, m: 50, k: 4, seed: 42, device: 'cpu' });
    const c = TopKSAE.create({ d: 20, m: 50, k: 4, seed: 43, device: 'cpu' });
    expect(Array.from(a.getWeights().W_enc.data)).to.deep.equal(Array.from(b.getWeights().W_enc.data));
    expect(Array.from(a.getWeights().W_enc.data)).to.not.deep.equal(Array.from(c.getWeights().W_enc.data));
    const w = a.getWeights();
    const bound = 1 / Math.sqrt(20);
    expect(Math.max(...Array.from(w.W_enc.data).map(Math.abs))).to.be.at.most(bound);
    // W_dec row j is the normalized encoder column j.
    for (const j of [0, 17, 49]) {
      let n = 0;
      for (let i = 0; i < 20; i++) n += w.W_enc.data[i * 50 + j] ** 2;
      n = Math.sqrt(n);
      for (let i = 0; i < 20; i++) expect(w.W_dec.data[j * 20 + i]).to.be.closeTo(w.W_enc.data[i * 50 + j] / n, 1e-6);
    }
    expect(Array.from(w.b_enc).every((v) => v === 0)).to.equal(true);
    for (const s of [a, b, c]) s.dispose();
  });
});
