import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, PairedEmbeddings, Trainer, lrFactor, parseConfig, type TrainConfigInput, type TrainProgress } from '../../lib/index.js';
import { readBatch } from '../../lib/data/paired.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { conceptByActivation } from '../helpers/paired-data.js';
import { plantedSuite } from '../helpers/planted-suite.js';

describe('Trainer', function () {
  this.timeout(120_000);
  const { dir, data: p } = plantedSuite({ n: 3000, d: 24, C: 12, active: 2 });

  const config = (method: TrainConfigInput['method'], train: Partial<NonNullable<TrainConfigInput['train']>> = {}): TrainConfigInput => ({
    method,
    data: { image: { path: p.imagePath }, text: { path: p.textPath } },
    sae: { m: 24, k: method === 'shared+iso' ? 4 : 2, latentsPerModality: 'half' },
    train: { epochs: 6, batchSize: 100, lr: 4e-3, schedule: 'warmup-constant', warmupRatio: 0.02, ...train },
  });

  for (const method of ['shared', 'shared+iso', 'shared+group', 'separate', 'posthoc'] as const) {
    it(`${method}: trains on planted paired data and lowers its loss`, async () => {
      const lambda = method === 'shared+iso' ? { pairLossWeight: 0.05 } : method === 'shared+group' ? { pairLossWeight: 0.01 } : {};
      const t = new Trainer(config(method, lambda), { out: path.join(dir, `run-${method}`) });
      const seen: TrainProgress[] = [];
      t.on('progress', (q: TrainProgress) => seen.push(q));
      const r = await t.run();
      expect(r.steps).to.equal(6 * Math.floor(2850 / 100));
      const first = seen.slice(0, 5).reduce((s, q) => s + q.fvu, 0) / 5, last = seen.slice(-5).reduce((s, q) => s + q.fvu, 0) / 5;
      expect(last, `${method}: FVU ${first} -> ${last}`).to.be.below(0.5 * first);
      if (method === 'shared+iso' || method === 'shared+group') expect(seen.some((q) => q.pairLoss !== 0)).to.equal(true);
      expect(r.validation).to.have.length(6);
      expect(r.validation[5].fvuImage).to.be.below(0.6);
      const metrics = readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(metrics.filter((m) => m.type === 'val')).to.have.length(6);
      expect(Object.keys(r.models).sort()).to.deep.equal(method.startsWith('shared') ? ['shared'] : method === 'posthoc' ? ['image', 'pair', 'text'] : ['image', 'text']);
    });
  }

  it('posthoc: the alignment is a bijection that recovers >= 95% of the planted concept pairing', async () => {
    // 16 latents per modality for 12 concepts: every concept can get a latent on both sides.
    const t = new Trainer({ ...config('posthoc', { epochs: 15 }), sae: { m: 32, k: 2 }, data: { image: { path: p.imagePath }, text: { path: p.textPath }, valFraction: 0 } }, { out: path.join(dir, 'run-align') });
    const r = await t.run();
    using pair = await AlignedPair.load(r.models.pair);
    expect(new Set(pair.perm).size).to.equal(pair.perm.length);
    using data = PairedEmbeddings.open(p.imagePath, p.textPath);
    const all = Int32Array.from({ length: p.n }, (_, i) => i);
    const m = pair.image.m;
    const ci = conceptByActivation(pair.image.encode(readBatch(data, 'image', all, pair.normalizer)), m, p.gt, p.C);
    const ct = conceptByActivation(pair.text.encode(readBatch(data, 'text', all, pair.normalizer)), m, p.gt, p.C);
    let mapped = 0, same = 0;
    for (let i = 0; i < m; i++)
      if (ci.corr[i] > 0.5 && ct.corr[i] > 0.5) {
        mapped++;
        if (ci.concept[i] === ct.concept[i]) same++;
      }
    expect(mapped, 'latents that learned a concept on both sides').to.be.at.least(p.C - 1);
    expect(same / mapped, `${same}/${mapped} matched latents share their concept`).to.be.at.least(0.95);
    // The shared index space: the same row in both modalities lights up the same latents.
    const zi = pair.encode('image', readBatch(data, 'image', [0], pair.normalizer), { normalized: true });
    const zt = pair.encode('text', readBatch(data, 'text', [0], pair.normalizer), { normalized: true });
    expect(new Set(zi.indices)).to.deep.equal(new Set(zt.indices));
  });

  it('keeps the event loop responsive (it turns between every two steps) and stops on an AbortSignal', async () => {
    const t = new Trainer(config('separate', { epochs: 2 }), { out: path.join(dir, 'loop') });
    // Machine-independent: a self-rescheduling setImmediate counts event-loop turns; every step must let one pass.
    let turns = 0, steps = 0, stalled = 0, last = -1, running = true;
    const spin = () => {
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    t.on('progress', (q: TrainProgress) => {
      if (turns === last) stalled++; // no loop turn since the previous step's progress
      last = turns;
      steps = q.step;
    });
    try {
      await t.run();
    } finally {
      running = false;
    }
    expect(steps).to.equal(2 * 28);
    expect(stalled, `${stalled} of ${steps} steps ran without the event loop turning in between`).to.equal(0);
    const ac = new AbortController();
    ac.abort();
    await expectSaeRejection(new Trainer(config('shared'), { out: path.join(dir, 'pre-aborted') }).run({ signal: ac.signal }), 'ERR_ABORTED', /step 0/);
  });

  it('validates and round-trips the configuration; typed errors for bad data', async () => {
    const cfg = parseConfig(config('posthoc'));
    expect(parseConfig(JSON.parse(JSON.stringify(cfg)))).to.deep.equal(cfg);
    expect(cfg.train.fvuReduction).to.equal('mean');
    expect(cfg.data.normalization).to.equal('l2');
    const e = expectSaeError(() => parseConfig({ method: 'nope', data: { image: { path: '' } }, train: { lr: -1 } }), 'ERR_ARG');
    expect(e.message).to.match(/method/).and.to.match(/data\.image\.path/).and.to.match(/train\.lr/);
    expectSaeError(() => new Trainer({ ...config('shared'), extra: 1 } as never, { out: dir }), 'ERR_ARG', /extra/);
    const tooBig = new Trainer(config('shared', { batchSize: 5000 }), { out: path.join(dir, 'big') });
    await expectSaeRejection(tooBig.run(), 'ERR_RANGE', /batchSize 5000 makes no batch of the 2850 training rows: at most 2850 rows/);
    // Without dropLast a batch larger than the data is the whole split (no buffer of batchSize rows is allocated).
    const whole = await new Trainer(config('shared', { batchSize: 99_999_999_999, dropLast: false, epochs: 2 }), { out: path.join(dir, 'whole') }).run();
    expect(whole.steps).to.equal(2);
    await expectSaeRejection(new Trainer(config('shared'), { out: path.join(dir, 'none'), resume: true }).run(), 'ERR_IO', /nothing to resume/);
  });

  it('learning-rate schedules follow the reference formulas', () => {
    // warmup-cosine: warm = max(1, floor(0.05 * 100)) = 5; f(0) = 0 (the first update has lr 0).
    expect(lrFactor('warmup-cosine', 0, 100, 0.05)).to.equal(0);
    expect(lrFactor('warmup-cosine', 4, 100, 0.05)).to.equal(0.8);
    expect(lrFactor('warmup-cosine', 5, 100, 0.05)).to.equal(1);
    expect(lrFactor('warmup-cosine', 99, 100, 0.05)).to.be.closeTo(0.5 * (1 + Math.cos((Math.PI * 94) / 95)), 1e-15);
    expect(lrFactor('warmup-cosine', 0, 10, 0)).to.equal(0); // warm is at least 1
    expect(lrFactor('constant', 0, 10, 0.5)).to.equal(1);
    expect(lrFactor('warmup-constant', 0, 10, 0)).to.equal(1);
    expect(lrFactor('warmup-constant', 1, 10, 0.5)).to.equal(0.2);
  });
});
