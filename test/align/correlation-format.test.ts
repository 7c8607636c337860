/**
 * The serialized CorrelationAccumulator: format 2 carries a checksum, so every flipped bit is refused
 * (ERR_FORMAT); format 1 blobs (no checksum) are still read, and every blob passes range checks that keep the
 * statistics possible and every correlation in [-1, 1].
 */
import { expect } from 'chai';

import { CorrelationAccumulator, type SparseCodes } from '../../lib/index.js';
import { expectSaeError } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';

const [mA, mB, k, n] = [11, 7, 3, 200];

function codes(rng: Rng, m: number): SparseCodes {
  const c: SparseCodes = { rows: n, k, indices: new Int32Array(n * k), values: new Float32Array(n * k) };
  for (let r = 0; r < n; r++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j: number;
      do j = rng.int(m - 1); // latent m-1 never fires
      while (used.has(j));
      used.add(j);
      c.indices[r * k + s] = j;
      c.values[r * k + s] = s === k - 1 && r % 4 === 0 ? 0 : 0.1 + rng.next();
    }
  }
  return c;
}

function accumulator(): CorrelationAccumulator {
  const rng = new Rng(21);
  const acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
  const a = codes(rng, mA);
  const b = codes(rng, mB);
  // Correlate B with A a little so that the matrix is not all noise.
  for (let p = 0; p < b.indices.length; p++) if (p % 2 === 0) b.indices[p] = a.indices[p] % (mB - 1);
  for (let r = 0; r < n; r++) {
    const row = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j = b.indices[r * k + s];
      while (row.has(j)) j = (j + 1) % (mB - 1);
      row.add(j);
      b.indices[r * k + s] = j;
    }
  }
  acc.add(a, b);
  return acc;
}

/** Byte layout of the blob: 32 header bytes, per side sum/sumsq/fires (f64) and min/max (f32), then S, then the checksum. */
const sideBytes = (m: number) => m * (3 * 8 + 2 * 4);
const S_OFFSET = 32 + sideBytes(mA) + sideBytes(mB);
const BODY = S_OFFSET + mA * mB * 8;

function asV1(v2: Uint8Array): Uint8Array {
  const v1 = v2.slice(0, BODY);
  new DataView(v1.buffer).setUint32(8, 1, true);
  return v1;
}

function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

function expectSane(acc: CorrelationAccumulator, what: string): void {
  const r = acc.result();
  for (const v of r.correlation.data) expect(Math.abs(v), `${what}: correlation ${v}`).to.be.at.most(1 + 1e-4);
  for (const a of [r.meanA, r.meanB, r.stdA, r.stdB, r.firesA, r.firesB]) for (const v of a) expect(Number.isFinite(v), what).to.equal(true);
}

describe('CorrelationAccumulator serialized format', () => {
  const acc = accumulator();
  const blob = acc.serialize();
  after(() => acc.dispose());

  it('format 2: the layout is versioned and checksummed; the round trip is exact', () => {
    expect(blob.length).to.equal(BODY + 8);
    expect(new DataView(blob.buffer, blob.byteOffset).getUint32(8, true)).to.equal(2);
    using back = CorrelationAccumulator.deserialize(blob);
    expect(back.result().correlation.data).to.deep.equal(acc.result().correlation.data);
    expect(back.serialize()).to.deep.equal(blob);
  });

  it('format 2: every flipped bit is refused (all header bits, a seeded sample of the rest, the checksum)', () => {
    const rng = new Rng(5);
    const bits = [...Array.from({ length: 32 * 8 }, (_, i) => i), ...Array.from({ length: 600 }, () => 32 * 8 + rng.int((blob.length - 32) * 8))];
    for (let b = (blob.length - 8) * 8; b < blob.length * 8; b += 5) bits.push(b);
    for (const bit of bits) expectSaeError(() => CorrelationAccumulator.deserialize(flip(blob, bit)), 'ERR_FORMAT');
    expectSaeError(() => CorrelationAccumulator.deserialize(flip(blob, S_OFFSET * 8 + 61)), 'ERR_FORMAT', /checksum/);
    expectSaeError(() => CorrelationAccumulator.deserialize(blob.subarray(0, blob.length - 1)), 'ERR_FORMAT', /bytes/);
    const extra = new Uint8Array(blob.length + 8);
    extra.set(blob);
    expectSaeError(() => CorrelationAccumulator.deserialize(extra), 'ERR_FORMAT', /bytes/);
  });

  it('format 1 (no checksum) is still read; its corrupt blobs are refused or, when accepted, still sane', () => {
    const v1 = asV1(blob);
    using back = CorrelationAccumulator.deserialize(v1);
    expect(back.result().correlation.data).to.deep.equal(acc.result().correlation.data);
    expect(back.serialize()).to.deep.equal(blob); // re-serialized as format 2
    const rng = new Rng(6);
    let refused = 0;
    const tries = 400;
    for (let t = 0; t < tries; t++) {
      const bad = flip(v1, rng.int(v1.length * 8));
      let revived: CorrelationAccumulator | undefined;
      try {
        revived = CorrelationAccumulator.deserialize(bad);
      } catch (e) {
        expect((e as { code?: string }).code, String(e)).to.equal('ERR_FORMAT');
        refused++;
      }
      if (revived) {
        expectSane(revived, `accepted flip ${t}`);
        revived.dispose();
      }
    }
    // Low mantissa bits of the float64 moments are undetectable without the checksum (and harmless: sane above).
    expect(refused, 'the range checks refuse the flips that matter (exponents, signs, counts)').to.be.above(tries / 4);
  });

  it('format 1: statistics no codes can produce are ERR_FORMAT, each with its reason', () => {
    const v1 = asV1(blob);
    const edit = (fn: (dv: DataView) => void) => {
      const b = v1.slice();
      fn(new DataView(b.buffer));
      return b;
    };
    const sumA = 32, sumsqA = sumA + 8 * mA, firesA = sumsqA + 8 * mA, minA = firesA + 8 * mA;
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(firesA, n + 1, true))), 'ERR_FORMAT', /fire count/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(firesA + 8, 2.5, true))), 'ERR_FORMAT', /fire count/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(sumsqA, -1, true))), 'ERR_FORMAT', /moments/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(sumA + 16, NaN, true))), 'ERR_FORMAT', /moments/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat32(minA, 1e9, true))), 'ERR_FORMAT', /extremes|sum/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(sumA + 8 * (mA - 1), 3, true))), 'ERR_FORMAT', /never fired/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(S_OFFSET + 8 * 3, 1e30, true))), 'ERR_FORMAT', /\[-1, 1\]/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(S_OFFSET, -50, true))), 'ERR_FORMAT', /\[-1, 1\]/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setFloat64(S_OFFSET + 8, NaN, true))), 'ERR_FORMAT', /not finite/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setBigInt64(24, -3n, true))), 'ERR_FORMAT', /negative row count/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setUint32(20, 1, true))), 'ERR_FORMAT', /header/);
    expectSaeError(() => CorrelationAccumulator.deserialize(edit((dv) => dv.setUint32(8, 3, true))), 'ERR_FORMAT', /version 3/);
  });
});
