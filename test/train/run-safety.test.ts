import { expect } from 'chai';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE, Trainer, writeNpy, type TrainConfigInput } from '../../lib/index.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { plantedSuite } from '../helpers/planted-suite.js';
import { Rng } from '../helpers/random.js';

/** Every file under `dir` (relative path -> bytes). */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const p = path.join(dir, rel);
    try {
      out.set(rel, readFileSync(p));
    } catch {
      /* a directory */
    }
  }
  return out;
}

/** metrics.jsonl holds only finite numbers (no null, which is what JSON makes of NaN and Infinity). */
function expectFiniteMetrics(runDir: string): Record<string, unknown>[] {
  const text = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8');
  expect(text).not.to.match(/:null[,}\]]/);
  const records = text.trim() ? text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  for (const r of records) for (const v of Object.values(r)) if (typeof v === 'number') expect(Number.isFinite(v)).to.equal(true);
  return records;
}

describe('Trainer: other runs, divergence and bad output paths', function () {
  this.timeout(120_000);
  const { dir, data: p } = plantedSuite({ n: 1200, d: 16, C: 8, active: 2 });

  const config = (method: TrainConfigInput['method'], train: Partial<NonNullable<TrainConfigInput['train']>> = {}, data: Partial<TrainConfigInput['data']> = {}): TrainConfigInput => ({
    method,
    data: { image: { path: p.imagePath }, text: { path: p.textPath }, ...data },
    sae: { m: 16, k: 2 },
    train: { epochs: 2, batchSize: 100, lr: 4e-3, ...train },
  });

  it("refuses to start a new run in another run's directory unless forced, naming what is there", async () => {
    const out = path.join(dir, 'taken');
    await new Trainer(config('shared'), { out }).run();
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const before = snapshot(out);
    const e = await expectSaeRejection(new Trainer(config('separate'), { out }).run(), 'ERR_STATE', /already holds a shared run/);
    expect(e.message).to.match(/checkpoint at step 22/).and.to.match(/final models \(shared\)/).and.to.match(/--resume/).and.to.match(/--force/);
    expect(snapshot(out)).to.deep.equal(before);

    const r = await new Trainer(config('separate'), { out, force: true }).run();
    expect(Object.keys(r.models).sort()).to.deep.equal(['image', 'text']);
    expect(readdirSync(path.join(out, 'final')).sort()).to.deep.equal(['image', 'text']);
    expect(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).method).to.equal('separate');
    expect(readFileSync(path.join(out, 'notes.txt'), 'utf8')).to.equal('mine');
    expect(readdirSync(out).filter((e) => e.includes('.tmp-') || e.includes('.old-'))).to.deep.equal([]);

    // An interrupted run: its checkpoint is not wiped by a new run.
    const cut = path.join(dir, 'interrupted');
    const ac = new AbortController();
    const t = new Trainer(config('posthoc'), { out: cut });
    t.on('progress', (q: { step: number }) => q.step === 5 && ac.abort());
    await expectSaeRejection(t.run({ signal: ac.signal }), 'ERR_ABORTED');
    const cp = snapshot(path.join(cut, 'checkpoint'));
    await expectSaeRejection(new Trainer(config('posthoc'), { out: cut }).run(), 'ERR_STATE', /a posthoc run \(config\.json\), a checkpoint at step 5/);
    expect(snapshot(path.join(cut, 'checkpoint'))).to.deep.equal(cp);

    // A directory with files of its own but no run is fine; they stay.
    const mine = path.join(dir, 'mine');
    mkdirSync(mine);
    writeFileSync(path.join(mine, 'README'), 'mine');
    await new Trainer(config('shared', { epochs: 1 }), { out: mine }).run();
    expect(readFileSync(path.join(mine, 'README'), 'utf8')).to.equal('mine');

    expectSaeError(() => new Trainer(config('shared'), { out, force: true, resume: true }), 'ERR_ARG', /give one of them/);
  });

  it("--force replaces only the run's own entries: a user's file in final/ stays, one inside the checkpoint or a final model is refused first", async () => {
    const out = path.join(dir, 'forced');
    await new Trainer(config('shared', { epochs: 1 }), { out }).run();
    writeFileSync(path.join(out, 'final', 'analysis.ipynb'), 'mine');
    await new Trainer(config('separate', { epochs: 1 }), { out, force: true }).run();
    expect(readFileSync(path.join(out, 'final', 'analysis.ipynb'), 'utf8')).to.equal('mine');
    expect(readdirSync(path.join(out, 'final')).sort()).to.deep.equal(['analysis.ipynb', 'image', 'text']);

    for (const inside of ['checkpoint', path.join('final', 'image')]) {
      writeFileSync(path.join(out, inside, 'my-notes.txt'), 'mine');
      const before = snapshot(out);
      await expectSaeRejection(new Trainer(config('shared', { epochs: 1 }), { out, force: true }).run(), 'ERR_IO', /holds files crossmodal-sae did not write \(my-notes\.txt\); move them away first/);
      expect(snapshot(out)).to.deep.equal(before);
      rmSync(path.join(out, inside, 'my-notes.txt'));
    }

    // Another kind of our directories is never a run directory, forced or not.
    const saeDir = path.join(out, 'final', 'image');
    for (const force of [false, true])
      await expectSaeRejection(new Trainer(config('shared', { epochs: 1 }), { out: saeDir, force }).run(), 'ERR_STATE', /is a crossmodal-sae SAE checkpoint, not a training run directory/);
    expect(readdirSync(saeDir).sort()).to.deep.equal(['cfg.json', 'sae_weights.safetensors']);
  });

  for (const method of ['shared', 'separate'] as const) {
    it(`${method}: lr 1e12 stops with ERR_DIVERGED at the failing step, keeps the last good checkpoint untouched, writes no non-finite metric`, async () => {
      const out = path.join(dir, `lr-${method}`);
      const t = new Trainer(config(method, { lr: 1e12, schedule: 'constant', checkpointEvery: 1 }), { out, logEvery: 1 });
      let lastCheckpoint: { step: number; files: Map<string, Buffer> } | null = null;
      t.on('checkpoint', (c: { step: number; dir: string }) => (lastCheckpoint = { step: c.step, files: snapshot(c.dir) }));
      const e = await expectSaeRejection(t.run(), 'ERR_DIVERGED', /training diverged at step \d+ of 22/);
      const step = Number(/at step (\d+)/.exec(e.message)![1]);
      expect(e.message).to.match(/lower the learning rate/i).and.to.match(/train\.lr is 1000000000000/).and.to.match(/check the inputs/);
      // The checkpoint on disk is the one written after the last good step, byte for byte.
      expect(lastCheckpoint, 'a checkpoint before the divergence').not.to.equal(null);
      const kept = lastCheckpoint!;
      expect(kept.step).to.equal(step - 1);
      expect(e.message).to.include(`last good checkpoint (step ${step - 1})`);
      expect(snapshot(path.join(out, 'checkpoint'))).to.deep.equal(kept.files);
      for (const name of method === 'shared' ? ['shared'] : ['image', 'text']) {
        using sae = await TopKSAE.load(path.join(out, 'checkpoint', name));
        expect(sae.status().step).to.equal(step - 1);
      }
      expect(existsSync(path.join(out, 'final'))).to.equal(false);
      const records = expectFiniteMetrics(out);
      expect(records.filter((r) => r.type === 'train').map((r) => r.step)).to.deep.equal(Array.from({ length: step - 1 }, (_, i) => i + 1));
      expect(records[records.length - 1]).to.include({ type: 'diverged', step });

      // What the message says to do: start again with a lower learning rate.
      const r = await new Trainer(config(method, { lr: 4e-3, schedule: 'constant' }), { out, force: true }).run();
      expect(r.steps).to.equal(22);
      expectFiniteMetrics(out);
    });
  }

  it('inputs that overflow the loss (MSE on 1e30, FVU on 1e-21) stop at step 1 with no checkpoint and no non-finite metric', async () => {
    const rng = new Rng(5);
    for (const [name, scale, loss] of [['huge', 1e30, 'mse'], ['tiny', 1e-21, 'fvu']] as const) {
      const x = { rows: 400, cols: 16, data: rng.normals(400 * 16, scale) };
      const y = { rows: 400, cols: 16, data: rng.normals(400 * 16, scale) };
      const image = path.join(dir, `${name}-image.npy`), text = path.join(dir, `${name}-text.npy`);
      await writeNpy(image, x);
      await writeNpy(text, y);
      for (const method of ['shared', 'posthoc'] as const) {
        const out = path.join(dir, `${name}-${method}`);
        const cfg = { ...config(method, { schedule: 'constant' }, { image: { path: image }, text: { path: text }, normalization: 'none' }), sae: { m: 16, k: 2, loss } };
        if (name === 'tiny') {
          // FVU on a batch whose variance underflows float32 is refused by the engine before any update.
          await expectSaeRejection(new Trainer(cfg, { out, logEvery: 1 }).run(), 'ERR_DEGENERATE_BATCH', /too small for the FVU loss/);
          expect(existsSync(path.join(out, 'checkpoint'))).to.equal(false);
          expectFiniteMetrics(out);
          continue;
        }
        const e = await expectSaeRejection(new Trainer(cfg, { out, logEvery: 1 }).run(), 'ERR_DIVERGED', /training diverged at step 1 of 6/);
        expect(e.message).to.match(/no checkpoint had been written/);
        expect(existsSync(path.join(out, 'checkpoint'))).to.equal(false);
        expect(expectFiniteMetrics(out).map((r) => r.type)).to.deep.equal(['diverged']);
      }
    }
  });

  it('output directories that cannot be one give ERR_IO at once (a file, a path under a file, /proc)', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    await expectSaeRejection(new Trainer(config('shared'), { out: file }).run(), 'ERR_IO', /a-file is a regular file/);
    await expectSaeRejection(new Trainer(config('shared'), { out: path.join(file, 'run') }).run(), 'ERR_IO', /a-file is a regular file/);
    if (existsSync('/proc/self')) await expectSaeRejection(new Trainer(config('shared'), { out: '/proc/cmsae-x/run' }).run(), 'ERR_IO', /\/proc\/cmsae-x/);
    expect(readFileSync(file, 'utf8')).to.equal('x');
  });
});
