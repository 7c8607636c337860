// The AVX-512 packer of the certified encode's BF16 encoder copy (native/sae/bf16_pack_avx512.cc) against its plain
// reference (bf16_encoder.cc): the same BF16 bits in the same VNNI layout, the same biases and finiteness flags, and
// bound terms within one float ulp (their float64 norms are summed in another order, then rounded up by 2^-20).
import { expect } from 'chai';

import { info, setSimdLevel } from '../../lib/index.js';
import { native } from '../../lib/native/load.js';
import { Rng } from '../helpers/random.js';

function withinUlp(a: number, b: number): boolean {
  if (Object.is(a, b)) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  const f = new Float32Array([a, b]);
  const u = new Uint32Array(f.buffer);
  return Math.abs(u[0] - u[1]) <= 1;
}

function awkwardWeights(m: number, d: number, rng: Rng): Float32Array {
  const W = new Float32Array(m * d);
  const bits = new Uint32Array(W.buffer);
  for (let i = 0; i < W.length; i++) {
    const r = rng.uniform(0, 1);
    if (r < 0.05) bits[i] = (rng.int(1 << 16) << 16) | 0x8000; // exact rounding ties (both parities of the kept bit)
    else if (r < 0.08) W[i] = (rng.uniform(0, 1) - 0.5) * 1e-40; // float32 denormals
    else if (r < 0.09) W[i] = -0;
    else if (r < 0.1) bits[i] = 0x7f7fffff; // the largest float: rounds up to infinity in BF16
    else W[i] = rng.normal() * 0.05;
  }
  return W;
}

describe('BF16 encoder packing (AVX-512 packer vs reference)', () => {
  const level = info().simd;
  before(function () {
    if (info().simdDetected !== 'avx512') {
      console.log('      (skipped: this CPU has no AVX-512, so only the reference packer exists to run)');
      this.skip();
    }
    setSimdLevel('avx512');
  });
  after(() => setSimdLevel(level as 'scalar' | 'avx2' | 'avx512'));

  for (const [d, m, special] of [[7, 33, false], [64, 16, false], [100, 70, true], [512, 96, true], [33, 1, true], [1, 5, false]] as const) {
    it(`d = ${d}, m = ${m}${special ? ', with ties, denormals, -0 and overflow' : ''}`, () => {
      const rng = new Rng(d * 1000 + m);
      const W = special ? awkwardWeights(m, d, rng) : Float32Array.from({ length: m * d }, () => rng.normal() * 0.1);
      const b = Float32Array.from({ length: m }, () => rng.normal());
      const ref = native().packBf16(W, b, d, m, 'reference');
      const fast = native().packBf16(W, b, d, m, 'active');
      expect(fast.Wp.length).to.equal(ref.Wp.length);
      for (let i = 0; i < ref.Wp.length; i++) if (fast.Wp[i] !== ref.Wp[i]) throw new Error(`Wp[${i}] = ${fast.Wp[i]}, reference ${ref.Wp[i]}`);
      expect(Array.from(fast.finite)).to.deep.equal(Array.from(ref.finite));
      if (special && m > 1) expect(Array.from(ref.finite)).to.include(0); // the overflowing weights void their panel
      for (const key of ['bias', 'P', 'Q', 'C'] as const)
        for (let j = 0; j < ref[key].length; j++)
          if (!withinUlp(fast[key][j], ref[key][j])) throw new Error(`${key}[${j}] = ${fast[key][j]}, reference ${ref[key][j]}`);
    });
  }
});
