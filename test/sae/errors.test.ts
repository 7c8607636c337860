import { expect } from 'chai';

import { TopKSAE, type Matrix } from '../../lib/index.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';

describe('bad input gives typed errors and leaves the model unchanged', () => {
  const d = 8, m = 20, k = 3;
  const rng = new Rng(1);
  const good: Matrix = { rows: 4, cols: d, data: rng.normals(4 * d) };

  it('rejects bad options', () => {
    expectSaeError(() => TopKSAE.create({ d, m, k: 0 }), 'ERR_ARG', /k/);
    expectSaeError(() => TopKSAE.create({ d, m, k: m + 1 }), 'ERR_ARG', /k = 21 is larger than m = 20/);
    expectSaeError(() => TopKSAE.create({ d: 0, m, k }), 'ERR_ARG', /d/);
    expectSaeError(() => TopKSAE.create({ d, m: -5, k }), 'ERR_ARG', /m/);
    expectSaeError(() => TopKSAE.create({ d: 2.5, m, k }), 'ERR_ARG');
    expectSaeError(() => TopKSAE.create({ d, m, k, activation: 'relu' as never }), 'ERR_ARG', /activation/);
    expectSaeError(() => TopKSAE.create({ d, m, k, beta1: 2 }), 'ERR_ARG', /beta1/);
    expectSaeError(() => TopKSAE.create({ d, m, k, lr: 1 } as never), 'ERR_ARG', /unknown option 'lr'/);
    expectSaeError(() => TopKSAE.create({ d, m, k, decay: { W_x: true } as never }), 'ERR_ARG', /W_x/);
    expectSaeError(() => TopKSAE.create(null as never), 'ERR_ARG');
  });

  it('finds a NaN, +Inf or -Inf at any position (vector lanes and the tail), and accepts the largest finite values', () => {
    const dd = 7, rows = 5;  // 35 elements: two 16-element runs and a 3-element tail
    const sae = TopKSAE.create({ d: dd, m: 12, k: 2, seed: 3 });
    const base = rng.normals(rows * dd);
    for (const bad of [NaN, Infinity, -Infinity])
      for (let at = 0; at < rows * dd; ++at) {
        const data = base.slice();
        data[at] = bad;
        const where = new RegExp(`row ${Math.floor(at / dd)}, column ${at % dd}`);
        expectSaeError(() => sae.encode({ rows, cols: dd, data }), 'ERR_NONFINITE', where);
      }
    const huge = base.map((v, i) => (i % 2 ? 3.4028234663852886e38 : -3.4028234663852886e38));
    expect(() => sae.encode({ rows, cols: dd, data: huge })).to.not.throw();
    sae.dispose();
  });

  it('finds a NaN or Inf anywhere in a batch large enough to be checked on several threads', () => {
    const dd = 512, rows = 600;  // 307200 elements: split over the threads
    const sae = TopKSAE.create({ d: dd, m: 64, k: 4, seed: 4 });
    const base = rng.normals(rows * dd);
    for (const at of [0, 153599, 153600, rows * dd - 1]) {
      const data = base.slice();
      data[at] = at % 2 ? Infinity : NaN;
      expectSaeError(() => sae.encode({ rows, cols: dd, data }), 'ERR_NONFINITE', new RegExp(`row ${Math.floor(at / dd)}, column ${at % dd}`));
    }
    expect(sae.encode({ rows, cols: dd, data: base }).rows).to.equal(rows);
    sae.dispose();
  });

  it('rejects NaN/Inf, wrong shapes, wrong dtypes, empty batches and bad lr without changing weights', () => {
    const sae = TopKSAE.create({ d, m, k, seed: 5 });
    const before = sae.getWeights();
    const withNaN = { ...good, data: good.data.slice() };
    withNaN.data[2 * d + 3] = NaN;
    const e = expectSaeError(() => sae.step(withNaN, { lr: 1e-3 }), 'ERR_NONFINITE', /row 2, column 3/);
    expect(e.message).to.match(/NaN/);
    const withInf = { ...good, data: good.data.slice() };
    withInf.data[0] = -Infinity;
    expectSaeError(() => sae.encode(withInf), 'ERR_NONFINITE', /Inf/);
    expectSaeError(() => sae.step(good, { lr: 1e-3, pair: withInf }), 'ERR_NONFINITE', /^y /);
    expectSaeError(() => sae.encode({ rows: 4, cols: d + 1, data: new Float32Array(4 * (d + 1)) }), 'ERR_SHAPE', /expects d = 8/);
    expectSaeError(() => sae.encode({ rows: 4, cols: d, data: new Float32Array(4 * d - 1) }), 'ERR_SHAPE', /elements/);
    expectSaeError(() => sae.encode({ rows: 0, cols: d, data: new Float32Array(0) }), 'ERR_SHAPE', /empty/);
    expectSaeError(() => sae.encode({ rows: 4, cols: d, data: Array.from(good.data) as never }), 'ERR_DTYPE', /Float32Array/);
    expectSaeError(() => sae.encode({ rows: 4, cols: d, data: Float64Array.from(good.data) as never }), 'ERR_DTYPE', /Float64Array/);
    expectSaeError(() => sae.encode(undefined as never), 'ERR_ARG');
    expectSaeError(() => sae.step(good, { lr: NaN }), 'ERR_ARG', /lr/);
    expectSaeError(() => sae.step(good, { lr: -1 }), 'ERR_ARG', /lr/);
    expectSaeError(() => sae.step(good, { lr: 1e-3, pair: { ...good, rows: 3, data: good.data.subarray(0, 3 * d) } }), 'ERR_SHAPE', /equal rows/);
    // FVU of a single row is undefined (zero batch variance).
    expectSaeError(() => sae.step({ rows: 1, cols: d, data: good.data.subarray(0, d) }, { lr: 1e-3 }), 'ERR_DEGENERATE_BATCH', /mse/);
    const after = sae.getWeights();
    expect(Array.from(after.W_enc.data)).to.deep.equal(Array.from(before.W_enc.data));
    expect(Array.from(after.b_dec)).to.deep.equal(Array.from(before.b_dec));
    expect(sae.status().step).to.equal(0);
    expect(sae.status().samplesSeen).to.equal(0);
    sae.dispose();
  });

  it('rejects codes that do not fit the model', () => {
    const sae = TopKSAE.create({ d, m, k });
    const codes = sae.encode(good);
    expectSaeError(() => sae.decode({ ...codes, indices: codes.indices.map((v, i) => (i === 5 ? m : v)) }), 'ERR_RANGE', /indices\[5\] = 20/);
    expectSaeError(() => sae.decode({ ...codes, indices: codes.indices.map((v, i) => (i === 1 ? -1 : v)) }), 'ERR_RANGE');
    expectSaeError(() => sae.decode({ ...codes, values: codes.values.map((v, i) => (i === 0 ? NaN : v)) }), 'ERR_NONFINITE');
    expectSaeError(() => sae.decode({ ...codes, k: m + 1 }), 'ERR_SHAPE');
    expectSaeError(() => sae.decode({ ...codes, values: new Float32Array(3) }), 'ERR_SHAPE');
    expectSaeError(() => sae.decode({ ...codes, indices: Float32Array.from(codes.indices) as never }), 'ERR_DTYPE');
    sae.dispose();
  });

  it('rejects bad weights', () => {
    const sae = TopKSAE.create({ d, m, k });
    const w = sae.getWeights();
    expectSaeError(() => sae.setWeights({ ...w, W_enc: { rows: m, cols: d, data: w.W_enc.data } }), 'ERR_SHAPE');
    expectSaeError(() => sae.setWeights({ ...w, b_enc: new Float32Array(m + 1) }), 'ERR_SHAPE');
    const nan = w.W_dec.data.slice();
    nan[7] = NaN;
    expectSaeError(() => sae.setWeights({ ...w, W_dec: { ...w.W_dec, data: nan } }), 'ERR_NONFINITE');
    expectSaeError(() => TopKSAE.fromWeights({ ...w, b_dec: new Float32Array(2) }, { k }), 'ERR_SHAPE');
    sae.dispose();
  });

  it('calls without their options object (or with a typo in it) are ERR_ARG naming what is missing', async () => {
    using sae = TopKSAE.create({ d, m, k, seed: 2 });
    const before = sae.getWeights();
    expectSaeError(() => sae.step(good, undefined as never), 'ERR_ARG', /step needs options with the learning rate.*\{ lr: 1e-3 \}/);
    expectSaeError(() => sae.step(good, null as never), 'ERR_ARG', /got null/);
    expectSaeError(() => sae.step(good, { lr: 1e-3, pairs: good } as never), 'ERR_ARG', /unknown option 'pairs'/);
    expectSaeError(() => sae.step(good, {} as never), 'ERR_ARG', /lr must be a finite number/);
    await expectSaeRejection(sae.stepAsync(good, undefined as never), 'ERR_ARG', /stepAsync needs options/);
    expectSaeError(() => sae.forwardBackward(good, null as never), 'ERR_ARG', /forwardBackward options must be an object/);
    expectSaeError(() => sae.computeGradients(good, { pair: good, lr: 1 } as never), 'ERR_ARG', /unknown option 'lr'/);
    expectSaeError(() => sae.applyUpdate(1e-3, NaN), 'ERR_ARG', /gradScale/);
    expectSaeError(() => TopKSAE.fromWeights(before, undefined as never), 'ERR_ARG', /fromWeights needs options with at least k/);
    expectSaeError(() => TopKSAE.fromWeights(before, {} as never), 'ERR_ARG', /option k/);
    expect(sae.getWeights().W_enc.data).to.deep.equal(before.W_enc.data);
    expect(sae.status().step).to.equal(0);
  });

  it('setTrainingState refuses null, missing parts and values outside their meaning, changing nothing', () => {
    using sae = TopKSAE.create({ d, m, k, seed: 3 });
    for (let i = 0; i < 3; i++) sae.step({ rows: 6, cols: d, data: rng.normals(6 * d) }, { lr: 1e-3 });
    const st = sae.getTrainingState();
    const json = (x: unknown) => JSON.stringify(x, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v));
    const same = json(st);
    expectSaeError(() => sae.setTrainingState(null as never), 'ERR_ARG', /getTrainingState/);
    expectSaeError(() => sae.setTrainingState({ ...st, arrays: null } as never), 'ERR_ARG', /arrays/);
    expectSaeError(() => sae.setTrainingState({ ...st, step: '5' } as never), 'ERR_ARG', /step must be a number/);
    expectSaeError(() => sae.setTrainingState({ ...st, thresholdReady: 1 } as never), 'ERR_ARG', /thresholdReady must be a boolean/);
    expectSaeError(() => sae.setTrainingState({ ...st, arrays: { ...st.arrays, fires: undefined } } as never), 'ERR_DTYPE', /fires/);
    const edited = (name: string, i: number, v: number) => {
      const a = st.arrays[name].slice();
      a[i] = v;
      return { ...st, arrays: { ...st.arrays, [name]: a } };
    };
    expectSaeError(() => sae.setTrainingState(edited('W_dec.exp_avg_sq', 4, -1e-3)), 'ERR_RANGE', /W_dec.exp_avg_sq\[4\].*negative/);
    expectSaeError(() => sae.setTrainingState(edited('b_enc.exp_avg_sq', 0, NaN)), 'ERR_NONFINITE');
    expectSaeError(() => sae.setTrainingState(edited('fires', 2, -1)), 'ERR_RANGE', /fires\[2\]/);
    expectSaeError(() => sae.setTrainingState(edited('fires', 2, 2.5)), 'ERR_RANGE', /whole number/);
    expectSaeError(() => sae.setTrainingState(edited('since', 0, Infinity)), 'ERR_RANGE', /since\[0\]/);
    expectSaeError(() => sae.setTrainingState({ ...st, step: 1e300 }), 'ERR_RANGE', /step must be a whole number/);
    expectSaeError(() => sae.setTrainingState({ ...st, step: 2.5 }), 'ERR_RANGE', /step/);
    expectSaeError(() => sae.setTrainingState({ ...st, samplesSeen: -4 }), 'ERR_RANGE', /samplesSeen/);
    expectSaeError(() => sae.setTrainingState({ ...st, threshold: NaN }), 'ERR_RANGE', /threshold/);
    expect(json(sae.getTrainingState())).to.equal(same);
    sae.setTrainingState(st);
    expect(json(sae.getTrainingState())).to.equal(same);
  });

  it('refuses a model that cannot fit in RAM with ERR_NOMEM instead of being killed', () => {
    // 2^33 weights: ~300 GB of weights, moments and scratch.
    expectSaeError(() => TopKSAE.create({ d: 4096, m: 1 << 21, k: 32 }), 'ERR_NOMEM', /GiB/);
  });

  it('dispose is idempotent and later calls throw ERR_DISPOSED', async () => {
    const sae = TopKSAE.create({ d, m, k });
    sae.dispose();
    sae.dispose();
    sae[Symbol.dispose]();
    expect(sae.disposed).to.equal(true);
    expectSaeError(() => sae.encode(good), 'ERR_DISPOSED');
    expectSaeError(() => sae.step(good, { lr: 1 }), 'ERR_DISPOSED');
    await expectSaeRejection(sae.encodeAsync(good), 'ERR_DISPOSED');
    {
      using scoped = TopKSAE.create({ d, m, k });
      scoped.encode(good);
    }
  });

  it('an async failure rejects with a typed error and the SAE stays usable', async () => {
    const sae = TopKSAE.create({ d, m, k });
    const bad = { ...good, data: good.data.slice() };
    bad.data[1] = NaN;
    await expectSaeRejection(sae.stepAsync(bad, { lr: 1e-3 }), 'ERR_NONFINITE');
    await expectSaeRejection(sae.encodeAsync(bad), 'ERR_NONFINITE');
    await expectSaeRejection(sae.stepAsync(good, { lr: -3 }), 'ERR_ARG');
    const r = await sae.stepAsync(good, { lr: 1e-3 });
    expect(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`).to.equal(true);
    sae.dispose();
  });
});
