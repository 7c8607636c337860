import { expect } from 'chai';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { TopKSAE, type Matrix } from '../../lib/index.js';
import { native, nativePath } from '../../lib/native/load.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

describe('async API', () => {
  const rng = new Rng(3);
  const d = 256, m = 4096, k = 16, B = 2048;
  const x: Matrix = { rows: B, cols: d, data: rng.normals(B * d) };

  it('encodeAsync keeps the event loop free: the loop turns before it settles (no clock involved)', async () => {
    const sae = TopKSAE.create({ d, m, k, device: 'cpu' });
    const p = sae.encodeAsync(x);
    let settled = false;
    void p.then(() => (settled = true));
    await new Promise((r) => setImmediate(r)); // a full event-loop turn (a sync encode behind a Promise would have settled)
    const turnedFirst = !settled;
    const codes = await p;
    expect(turnedFirst, 'the event loop turned before the encode settled').to.equal(true);
    const sync = sae.encode(x);
    expect(Array.from(codes.indices)).to.deep.equal(Array.from(sync.indices));
    expect(Array.from(codes.values)).to.deep.equal(Array.from(sync.values));
    sae.dispose();
  });

  it('stepAsync equals step, queued calls run in order, and sync calls during async work throw ERR_BUSY', async () => {
    const a = TopKSAE.create({ d: 32, m: 128, k: 4, seed: 9 });
    const b = TopKSAE.create({ d: 32, m: 128, k: 4, seed: 9 });
    const batches = Array.from({ length: 6 }, () => ({ rows: 64, cols: 32, data: rng.normals(64 * 32) }));
    const syncLosses = batches.map((xb) => a.step(xb, { lr: 1e-2 }).loss);
    const pending = batches.map((xb) => b.stepAsync(xb, { lr: 1e-2 }));
    let busy: unknown;
    try {
      b.encode(batches[0]);
    } catch (e) {
      busy = e;
    }
    expect((busy as { code?: string })?.code).to.equal('ERR_BUSY');
    const asyncLosses = (await Promise.all(pending)).map((r) => r.loss);
    expect(asyncLosses).to.deep.equal(syncLosses);
    expect(Array.from(b.getWeights().W_dec.data)).to.deep.equal(Array.from(a.getWeights().W_dec.data));
    a.dispose();
    b.dispose();
  });

  it('dispose while async work is queued frees after it finishes; the pending promises still resolve', async () => {
    const sae = TopKSAE.create({ d: 32, m: 128, k: 4 });
    const xb = { rows: 64, cols: 32, data: rng.normals(64 * 32) };
    const p1 = sae.stepAsync(xb, { lr: 1e-3 });
    const p2 = sae.encodeAsync(xb);
    sae.dispose();
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(Number.isFinite(r1.loss) && r1.loss > 0, `loss ${r1.loss}`).to.equal(true);
    expect(r2.rows).to.equal(64);
    expect(sae.disposed).to.equal(true);
  });

  it('save() takes its turn in the queue: work queued before it is saved, a stepAsync right after it waits (no ERR_BUSY)', async () => {
    const { dir, cleanup } = tempDir();
    try {
      using sae = TopKSAE.create({ d: 16, m: 48, k: 3, seed: 4 });
      const xb = { rows: 32, cols: 16, data: rng.normals(32 * 16) };
      const before = sae.stepAsync(xb, { lr: 1e-2 }); // queued before the save: its update is in the checkpoint
      const saved = sae.save(path.join(dir, 'a'));
      const after = sae.stepAsync(xb, { lr: 1e-2 }); // queued after: runs once the save has read the state
      expectSaeError(() => sae.encode(xb), 'ERR_BUSY'); // sync calls still cannot overtake queued work
      await Promise.all([before, saved, after]);
      expect(sae.status().step).to.equal(2);
      using back = await TopKSAE.load(path.join(dir, 'a'));
      expect(back.status().step).to.equal(1);
      using replay = TopKSAE.create({ d: 16, m: 48, k: 3, seed: 4 });
      replay.step(xb, { lr: 1e-2 });
      expect(back.getWeights().W_dec.data).to.deep.equal(replay.getWeights().W_dec.data);
      // dispose() right after save(): the save still completes, then the SAE is freed.
      const other = TopKSAE.create({ d: 16, m: 48, k: 3, seed: 4 });
      const p = other.save(path.join(dir, 'b'));
      other.dispose();
      await p;
      using b = await TopKSAE.load(path.join(dir, 'b'));
      expect(b.status().step).to.equal(0);
      expect(other.disposed).to.equal(true);
      await expectSaeRejection(other.save(path.join(dir, 'c')), 'ERR_DISPOSED');
    } finally {
      cleanup();
    }
  });

  it('inputs stay valid while a worker runs even if the caller drops them (pinned across GC)', async () => {
    const sae = TopKSAE.create({ d: 64, m: 512, k: 8, seed: 2 });
    const data = rng.normals(512 * 64);
    const expected = sae.encode({ rows: 512, cols: 64, data });
    const p = sae.encodeAsync({ rows: 512, cols: 64, data: data.slice() });
    const big: Float32Array[] = [];
    for (let i = 0; i < 20; i++) big.push(new Float32Array(1 << 18)); // churn the heap
    (globalThis as { gc?: () => void }).gc?.();
    const got = await p;
    expect(Array.from(got.indices)).to.deep.equal(Array.from(expected.indices));
    sae.dispose();
  });

  it('the addon loads and trains inside several worker_threads at once', async () => {
    native(); // make sure the addon is built and loadable here first
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData);
      const sae = new a.NativeSae({ d: 16, m: 64, k: 4 });
      sae.init(1, false);
      const x = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i * 1.7));
      sae.stepAsync(x, null, 32, 1e-3).then((r) => { sae.dispose(); parentPort.postMessage(r.loss); },
                                           (e) => parentPort.postMessage('error: ' + e.message));`;
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<unknown>((resolve, reject) => {
            const w = new Worker(src, { eval: true, workerData: nativePath() });
            w.once('message', (v) => {
              resolve(v);
              void w.terminate();
            });
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) expect(Number.isFinite(r), `loss ${String(r)}`).to.equal(true); // a Set of NaNs has size 1
    expect(new Set(results).size).to.equal(1);
  });
});
