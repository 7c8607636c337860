import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, TopKSAE, Trainer, type TrainConfigInput, type TrainProgress } from '../../lib/index.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { plantedSuite } from '../helpers/planted-suite.js';

const METHODS = ['shared', 'shared+iso', 'shared+group', 'separate', 'posthoc'] as const;

/** metrics.jsonl as records, without the fields that depend on the clock. */
function metrics(runDir: string): Record<string, unknown>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { time: _t, samplesPerSec: _r, etaSec: _e, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
}

function expectSameWeights(a: TopKSAE, b: TopKSAE, what: string): void {
  const wa = a.getWeights(), wb = b.getWeights();
  for (const [name, x, y] of [['W_enc', wa.W_enc.data, wb.W_enc.data], ['W_dec', wa.W_dec.data, wb.W_dec.data], ['b_enc', wa.b_enc, wb.b_enc], ['b_dec', wa.b_dec, wb.b_dec]] as const)
    expect(Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `${what} ${name}`).to.equal(0);
}

describe('Trainer resume', function () {
  this.timeout(120_000);
  const { dir, data: p } = plantedSuite({ n: 3000, d: 24, C: 12, active: 2 });

  // 3 epochs of 28 steps, metrics every 10 steps, a checkpoint every 10: the cut at step 37 falls between them.
  const config = (method: (typeof METHODS)[number]): TrainConfigInput => ({
    method,
    data: { image: { path: p.imagePath }, text: { path: p.textPath } },
    sae: { m: 24, k: method === 'shared+iso' ? 4 : 2 },
    train: { epochs: 3, batchSize: 100, lr: 4e-3, schedule: 'warmup-cosine', checkpointEvery: 10, ...(method === 'shared+iso' ? { pairLossWeight: 0.05 } : method === 'shared+group' ? { pairLossWeight: 0.01 } : {}) },
  });

  for (const method of METHODS) {
    it(`${method}: an interrupted run resumes at the interrupted step and ends bit-identical to an uninterrupted one`, async () => {
      const cfg = config(method);
      const fullSteps: TrainProgress[] = [];
      const fullTrainer = new Trainer(cfg, { out: path.join(dir, `full-${method}`), logEvery: 10 });
      fullTrainer.on('progress', (q: TrainProgress) => fullSteps.push(q));
      const full = await fullTrainer.run();
      expect(full.steps).to.equal(84);

      const out = path.join(dir, `cut-${method}`);
      const ac = new AbortController();
      const cut = new Trainer(cfg, { out, logEvery: 10 });
      cut.on('progress', (q: TrainProgress) => q.step === 37 && ac.abort());
      await expectSaeRejection(cut.run({ signal: ac.signal }), 'ERR_ABORTED', /step 37/);
      expect(JSON.parse(readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'))).to.include({ step: 37, epoch: 1, batch: 9 });
      // The cut run logged steps 10, 20, 30 and the validation of epoch 0: nothing after step 37.
      expect(metrics(out).map((m) => `${m.type}:${m.step}`)).to.deep.equal(['train:10', 'train:20', 'val:28', 'train:30']);

      // The resumed run starts at step 38 (a rerun from scratch would start at 1) and does no data scan.
      const resumedTrainer = new Trainer(await Trainer.loadConfig(out), { out, resume: true, logEvery: 10 });
      const resumedSteps: TrainProgress[] = [];
      let scanned = false;
      resumedTrainer.on('progress', (q: TrainProgress) => resumedSteps.push(q));
      resumedTrainer.on('scan', () => (scanned = true));
      const resumed = await resumedTrainer.run();
      expect(scanned, 'a resumed run does not scan the data again').to.equal(false);
      expect(resumedSteps.map((q) => q.step)).to.deep.equal(Array.from({ length: 84 - 37 }, (_, i) => 38 + i));
      expect(resumedSteps.map((q) => [q.epoch, q.lr, q.loss, q.fvu])).to.deep.equal(fullSteps.slice(37).map((q) => [q.epoch, q.lr, q.loss, q.fvu]));
      expect(resumed.steps).to.equal(full.steps);
      // metrics.jsonl: the cut run's lines up to step 37, then the resumed run's, equal to the uninterrupted run's.
      expect(metrics(out)).to.deep.equal(metrics(full.runDir));

      expect(Object.keys(resumed.models).sort()).to.deep.equal(Object.keys(full.models).sort());
      for (const name of Object.keys(full.models)) {
        if (name === 'pair') continue;
        using a = await TopKSAE.load(full.models[name]);
        using b = await TopKSAE.load(resumed.models[name]);
        expectSameWeights(a, b, name);
      }
      if (method === 'posthoc') {
        using a = await AlignedPair.load(full.models.pair);
        using b = await AlignedPair.load(resumed.models.pair);
        expect(Array.from(b.perm)).to.deep.equal(Array.from(a.perm));
        expectSameWeights(a.text, b.text, 'pair text');
      }
    });
  }

  it('refuses a checkpoint that does not fit the run (batch size changed, inconsistent step)', async () => {
    const out = path.join(dir, 'cut-shared');
    const cfg = await Trainer.loadConfig(out);
    await expectSaeRejection(new Trainer({ ...cfg, train: { ...cfg.train, batchSize: 50 } }, { out, resume: true }).run(), 'ERR_STATE', /does not fit this run's 57 steps per epoch/);
  });
});
