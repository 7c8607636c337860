import { expect } from 'chai';
import os from 'node:os';

import { CorrelationAccumulator, type SparseCodes } from '../../lib/index.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { numpyCorrelation, requireScipy } from '../helpers/python.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Paired sparse codes with: dead latents (A 0-2, B 0-1 never fire), a constant latent on each side (A 3 and
 * B 2 fire in every row with value 1.5), duplicated rows, padding slots (value 0), and a planted partner
 * structure (B latent pi(i) tends to fire with A latent i).
 */
function makeCodes(rng: Rng, n: number, mA: number, mB: number, kA: number, kB: number) {
  const a: SparseCodes = { rows: n, k: kA, indices: new Int32Array(n * kA), values: new Float32Array(n * kA) };
  const b: SparseCodes = { rows: n, k: kB, indices: new Int32Array(n * kB), values: new Float32Array(n * kB) };
  const denseA = new Float32Array(n * mA), denseB = new Float32Array(n * mB);
  for (let r = 0; r < n; r++) {
    if (r % 17 === 5 && r > 0) {
      // duplicate the previous row
      a.indices.copyWithin(r * kA, (r - 1) * kA, r * kA);
      a.values.copyWithin(r * kA, (r - 1) * kA, r * kA);
      b.indices.copyWithin(r * kB, (r - 1) * kB, r * kB);
      b.values.copyWithin(r * kB, (r - 1) * kB, r * kB);
    } else {
      const usedA = new Set<number>([3]), usedB = new Set<number>([2]);
      a.indices[r * kA] = 3;
      a.values[r * kA] = 1.5;
      b.indices[r * kB] = 2;
      b.values[r * kB] = 1.5;
      for (let s = 1; s < kA; s++) {
        let j: number;
        do j = 4 + rng.int(mA - 4);
        while (usedA.has(j));
        usedA.add(j);
        a.indices[r * kA + s] = j;
        a.values[r * kA + s] = s === kA - 1 && r % 3 === 0 ? 0 : Math.exp(rng.normal() * 0.5); // some padding
      }
      for (let s = 1; s < kB; s++) {
        const partner = 3 + (a.indices[r * kA + s] % (mB - 3));
        let j = rng.next() < 0.7 && !usedB.has(partner) ? partner : -1;
        while (j < 0 || usedB.has(j)) j = 3 + rng.int(mB - 3);
        usedB.add(j);
        b.indices[r * kB + s] = j;
        b.values[r * kB + s] = Math.exp(rng.normal() * 0.5);
      }
    }
    for (let s = 0; s < kA; s++) denseA[r * mA + a.indices[r * kA + s]] += a.values[r * kA + s];
    for (let s = 0; s < kB; s++) denseB[r * mB + b.indices[r * kB + s]] += b.values[r * kB + s];
  }
  return { a, b, denseA, denseB };
}

function slice(c: SparseCodes, r0: number, r1: number): SparseCodes {
  return { rows: r1 - r0, k: c.k, indices: c.indices.slice(r0 * c.k, r1 * c.k), values: c.values.slice(r0 * c.k, r1 * c.k) };
}

describe('CorrelationAccumulator', () => {
  const [n, mA, mB, kA, kB] = [3000, 40, 30, 6, 5];
  const data = makeCodes(new Rng(5), n, mA, mB, kA, kB);

  it('matches numpy float64 corrcoef to 1e-9 (dead, constant and duplicated rows included)', function () {
    requireScipy(this);
    const { dir, cleanup } = tempDir();
    try {
      const want = numpyCorrelation(dir, data.denseA, data.denseB, n, mA, mB);
      using acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
      acc.add(slice(data.a, 0, 1234), slice(data.b, 0, 1234));
      acc.add(slice(data.a, 1234, n), slice(data.b, 1234, n));
      const r = acc.result({ float64: true });
      expect(r.n).to.equal(n);
      let worst = 0, worst32 = 0;
      for (let i = 0; i < mA * mB; i++) {
        worst = Math.max(worst, Math.abs(r.correlation64![i] - want[i]));
        worst32 = Math.max(worst32, Math.abs(r.correlation.data[i] - want[i]));
      }
      expect(worst, 'float64 correlation vs numpy').to.be.below(1e-9);
      expect(worst32, 'float32 correlation vs numpy').to.be.below(1e-6);
      // Some real structure must be present for this to mean anything.
      expect(Math.max(...Array.from(r.correlation.data))).to.be.greaterThan(0.3);
    } finally {
      cleanup();
    }
  });

  it('reports fires, means, population stds and alive masks; dead and constant latents have correlation 0', () => {
    using acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    acc.add(data.a, data.b);
    const r = acc.result();
    for (let j = 0; j < mA; j++) {
      let fires = 0, sum = 0, sq = 0;
      for (let row = 0; row < n; row++) {
        const v = data.denseA[row * mA + j];
        if (v !== 0) fires++;
        sum += v;
        sq += v * v;
      }
      const mean = sum / n;
      expect(r.firesA[j]).to.equal(fires);
      expect(r.meanA[j]).to.be.closeTo(mean, 1e-12);
      expect(r.stdA[j]).to.be.closeTo(Math.sqrt(Math.max(0, sq / n - mean * mean)), 1e-9);
    }
    expect(Array.from(r.aliveA.subarray(0, 4))).to.deep.equal([0, 0, 0, 0]); // 0-2 dead, 3 constant
    expect(Array.from(r.aliveB.subarray(0, 3))).to.deep.equal([0, 0, 0]);
    expect(r.aliveA.subarray(4).every((v) => v === 1)).to.equal(true);
    for (let j = 0; j < mB; j++) {
      expect(r.correlation.data[3 * mB + j]).to.equal(0);
      expect(r.correlation.data[0 * mB + j]).to.equal(0);
    }
    expect(Array.from(r.correlation.data).every(Number.isFinite)).to.equal(true);
    // minFires raises the bar.
    const strict = acc.result({ minFires: 1e9 });
    expect(strict.aliveA.every((v) => v === 0)).to.equal(true);
  });

  it('a B side wider than 65536 latents (32-bit B index records) gives the same correlations', () => {
    const stride = 2333, wide = (mB - 1) * stride + 1 + 65536; // > 65536 columns
    const b = { ...data.b, indices: data.b.indices.map((j) => j * stride) };
    using narrow = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    using wideAcc = new CorrelationAccumulator(mA, wide, { device: 'cpu' });
    narrow.add(data.a, data.b);
    wideAcc.add(data.a, b);
    const r = narrow.result({ float64: true });
    const w = wideAcc.result({ float64: true });
    let alive = 0;
    for (let i = 0; i < mA; i++)
      for (let j = 0; j < mB; j++) {
        expect(w.correlation64![i * wide + j * stride]).to.equal(r.correlation64![i * mB + j]);
        if (r.correlation64![i * mB + j] !== 0) alive++;
      }
    expect(alive).to.be.greaterThan(mA * mB / 2);
    expect(w.aliveB.reduce((s, x) => s + x, 0)).to.equal(r.aliveB.reduce((s, x) => s + x, 0));
  });

  it('merge of 3 shards equals one pass; serialize/deserialize round-trips', () => {
    using whole = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    whole.add(data.a, data.b);
    const shards = [0, 700, 2100, n];
    const parts = shards.slice(0, -1).map((r0, i) => {
      const acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
      acc.add(slice(data.a, r0, shards[i + 1]), slice(data.b, r0, shards[i + 1]));
      return acc;
    });
    // One shard travels through bytes, as from another process.
    const revived = CorrelationAccumulator.deserialize(parts[2].serialize());
    parts[2].dispose();
    parts[0].merge(parts[1]);
    parts[0].merge(revived);
    const a = parts[0].result({ float64: true }), b = whole.result({ float64: true });
    for (let i = 0; i < mA * mB; i++) expect(a.correlation64![i]).to.be.closeTo(b.correlation64![i], 1e-12);
    expect(Array.from(a.firesA)).to.deep.equal(Array.from(b.firesA));
    expect(a.n).to.equal(n);
    const bytes = whole.serialize();
    using again = CorrelationAccumulator.deserialize(bytes);
    expect(Array.from(again.result().correlation.data)).to.deep.equal(Array.from(b.correlation.data));
    expectSaeError(() => CorrelationAccumulator.deserialize(bytes.subarray(0, bytes.length - 8)), 'ERR_FORMAT', /truncated|bytes/);
    expectSaeError(() => CorrelationAccumulator.deserialize(new Uint8Array(64)), 'ERR_FORMAT', /magic/);
    for (const p of [parts[0], parts[1], revived]) p.dispose();
  });

  it('topCorrelations equals the dense matrix top-k per row and per column', () => {
    using acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    acc.add(data.a, data.b);
    const r = acc.result();
    const k = 4;
    const top = acc.topCorrelations(k);
    for (let i = 0; i < mA; i++) {
      const cand = r.aliveA[i] ? Array.from({ length: mB }, (_, j) => j).filter((j) => r.aliveB[j]) : [];
      cand.sort((x, y) => r.correlation.data[i * mB + y] - r.correlation.data[i * mB + x] || x - y);
      const want = [...cand.slice(0, k), ...Array(Math.max(0, k - cand.length)).fill(-1)];
      expect(Array.from(top.rows.indices.subarray(i * k, (i + 1) * k)), `row ${i}`).to.deep.equal(want);
    }
    for (let j = 0; j < mB; j++) {
      const cand = r.aliveB[j] ? Array.from({ length: mA }, (_, i) => i).filter((i) => r.aliveA[i]) : [];
      cand.sort((x, y) => r.correlation.data[y * mB + j] - r.correlation.data[x * mB + j] || x - y);
      const want = [...cand.slice(0, k), ...Array(Math.max(0, k - cand.length)).fill(-1)];
      expect(Array.from(top.cols.indices.subarray(j * k, (j + 1) * k)), `col ${j}`).to.deep.equal(want);
    }
  });

  it('addAsync gives the same result as add', async () => {
    using a = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    using b = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    a.add(data.a, data.b);
    await Promise.all([b.addAsync(slice(data.a, 0, 1500), slice(data.b, 0, 1500)), b.addAsync(slice(data.a, 1500, n), slice(data.b, 1500, n))]);
    expect(Array.from(b.result().correlation.data)).to.deep.equal(Array.from(a.result().correlation.data));
  });

  it('rejects mismatched rows, bad indices, NaN values, wrong m and duplicates, leaving the state unchanged', async () => {
    using acc = new CorrelationAccumulator(mA, mB, { device: 'cpu' });
    acc.add(slice(data.a, 0, 10), slice(data.b, 0, 10));
    expectSaeError(() => acc.add(slice(data.a, 0, 10), slice(data.b, 0, 9)), 'ERR_SHAPE', /paired/);
    const badIdx = slice(data.a, 0, 10);
    badIdx.indices[7] = mA + 3;
    expectSaeError(() => acc.add(badIdx, slice(data.b, 0, 10)), 'ERR_RANGE', /outside/);
    const nan = slice(data.b, 0, 10);
    nan.values[4] = NaN;
    expectSaeError(() => acc.add(slice(data.a, 0, 10), nan), 'ERR_NONFINITE');
    const dup = slice(data.a, 0, 10);
    dup.indices[1] = dup.indices[2];
    dup.values[1] = dup.values[2] = 1;
    expectSaeError(() => acc.add(dup, slice(data.b, 0, 10)), 'ERR_ARG', /twice/);
    const wide: SparseCodes = { rows: 1, k: mA + 1, indices: new Int32Array(mA + 1), values: new Float32Array(mA + 1) };
    expectSaeError(() => acc.add(wide, slice(data.b, 0, 1)), 'ERR_SHAPE', /exceeds/);
    await expectSaeRejection(acc.addAsync(badIdx, slice(data.b, 0, 10)), 'ERR_RANGE');
    expect(acc.n).to.equal(10);
    expectSaeError(() => new CorrelationAccumulator(0, 3), 'ERR_ARG');
    // 65536^2 float64 co-moments = 32 GiB: refused on machines with less than ~43 GiB of RAM.
    if (os.totalmem() < 40 * 2 ** 30) expectSaeError(() => new CorrelationAccumulator(65536, 65536), 'ERR_NOMEM', /GiB/);
    else console.log('      (ERR_NOMEM check skipped: this machine could hold a 32 GiB accumulator)');
    using other = new CorrelationAccumulator(mA + 1, mB);
    expectSaeError(() => acc.merge(other), 'ERR_SHAPE', /different sizes/);
    expectSaeError(() => acc.topCorrelations(0), 'ERR_ARG');
  });
});
