import { expect } from 'chai';

import type { AlignedPair } from '../../lib/index.js';
import { MicroBatcher } from '../../lib/serve/batcher.js';
import { createService } from '../../lib/serve/service.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tinyPair } from './tiny-pair.js';

const D = 16;

describe('serve: micro-batching', () => {
  let pair: AlignedPair;
  before(() => {
    pair = tinyPair({ d: D, m: 40, k: 6 });
  });
  after(() => pair.dispose());

  it('concurrent requests are batched and get bit for bit what each gets alone', async () => {
    const rng = new Rng(11);
    const reqs = Array.from({ length: 40 }, (_, i) => ({
      modality: i % 3 === 0 ? 'text' : 'image',
      embeddings: Array.from({ length: 1 + (i % 4) }, () => Array.from(rng.normals(D))),
    }));
    const alone = await createService({ pair, explorer: false, maxBatchRows: 1 });
    const batched = await createService({ pair, explorer: false, maxBatchRows: 64, maxWaitMs: 20 });
    try {
      const single: string[] = [];
      for (const r of reqs) single.push((await alone.inject({ method: 'POST', url: '/v1/encode', payload: r })).payload);
      const together = await Promise.all(reqs.map((r) => batched.inject({ method: 'POST', url: '/v1/encode', payload: r })));
      expect(together.map((r) => r.payload)).to.deep.equal(single);
      // Decode too: the codes of each answer, decoded together and alone.
      const dreqs = together.map((r, i) => ({ modality: reqs[i].modality, indices: r.json().indices, values: r.json().values }));
      const dSingle: string[] = [];
      for (const r of dreqs) dSingle.push((await alone.inject({ method: 'POST', url: '/v1/decode', payload: r })).payload);
      const dTogether = await Promise.all(dreqs.map((r) => batched.inject({ method: 'POST', url: '/v1/decode', payload: r })));
      expect(dTogether.map((r) => r.payload)).to.deep.equal(dSingle);
      // The batched service really gathered requests: some native call held more than one request.
      const m = (await batched.inject('/metrics')).payload;
      const count = Number(/cmsae_batch_requests_count\{op="encode_image"\} (\d+)/.exec(m)?.[1]);
      const imageRequests = reqs.filter((r) => r.modality === 'image').length;
      expect(count).to.be.greaterThan(0).and.lessThan(imageRequests);
      const aloneCount = Number(/cmsae_batch_requests_count\{op="encode_image"\} (\d+)/.exec((await alone.inject('/metrics')).payload)?.[1]);
      expect(aloneCount).to.equal(imageRequests);
    } finally {
      await alone.close();
      await batched.close();
    }
  });

  it('a full queue answers 503 with Retry-After and the code ERR_BUSY; the queued requests still succeed', async () => {
    const app = await createService({ pair, explorer: false, maxBatchRows: 4, maxWaitMs: 200, maxQueueRows: 6 });
    try {
      const rng = new Rng(2);
      const body = () => ({ modality: 'image', embeddings: [Array.from(rng.normals(D)), Array.from(rng.normals(D))] });
      const rs = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/v1/encode', payload: body() })));
      const codes = rs.map((r) => r.statusCode);
      expect(codes.filter((c) => c === 200)).to.have.length(3);
      const busy = rs.filter((r) => r.statusCode === 503);
      expect(busy).to.have.length(2);
      for (const r of busy) {
        expect(r.headers['retry-after']).to.equal('1');
        expect(r.json().error.code).to.equal('ERR_BUSY');
      }
      // A request larger than the whole queue can never run: 400, not 503.
      const big = await app.inject({ method: 'POST', url: '/v1/encode', payload: { modality: 'image', embeddings: Array.from({ length: 7 }, () => Array.from(rng.normals(D))) } });
      expect(big.statusCode).to.equal(400);
      expect(big.json().error.code).to.equal('ERR_RANGE');
      expect((await app.inject({ method: 'POST', url: '/v1/encode', payload: body() })).statusCode).to.equal(200);
    } finally {
      await app.close();
    }
  });

  it('close() drains: requests waiting in a batch window are answered before it resolves', async () => {
    const app = await createService({ pair, explorer: false, maxBatchRows: 1000, maxWaitMs: 5000 });
    const rng = new Rng(4);
    const pending = Array.from({ length: 6 }, () => app.inject({ method: 'POST', url: '/v1/encode', payload: { modality: 'text', embeddings: Array.from(rng.normals(D)) } }));
    // Wait until all six sit in the batch window (the queue-depth gauge says so), then close.
    for (let i = 0; i < 500; i++) {
      const m = (await app.inject('/metrics')).payload;
      if (/cmsae_queue_rows\{op="encode_text"\} 6/.test(m)) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const t0 = Date.now();
    await app.close();
    const rs = await Promise.all(pending);
    expect(rs.map((r) => r.statusCode)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    for (const r of rs) expect(r.json().indices[0]).to.have.length(6);
    expect(Date.now() - t0).to.be.lessThan(4000); // drained at once, not after the 5 s window (a bound, not a timing claim)
  });

  it('MicroBatcher: a failing batch fails each of its requests; later batches still run', async () => {
    let calls = 0;
    const b = new MicroBatcher<number, number>('test', (xs) => {
      calls++;
      if (xs.includes(-1)) throw new Error('boom');
      return xs.map((x) => x * 2);
    }, { maxBatchRows: 10, maxWaitMs: 0, maxQueueRows: 100 });
    const bad = await Promise.allSettled([b.submit(1, 1), b.submit(-1, 1)]);
    expect(bad.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect(await Promise.all([b.submit(3, 1), b.submit(4, 1)])).to.deep.equal([6, 8]);
    expect(calls).to.equal(2);
    await b.drain();
    await expectSaeRejection(b.submit(1, 1), 'ERR_BUSY', /shutting down/);
  });
});
