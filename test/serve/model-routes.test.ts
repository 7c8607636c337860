import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';

import type { AlignedPair } from '../../lib/index.js';
import { conceptService } from '../../lib/serve/plugin.js';
import { createService } from '../../lib/serve/service.js';
import { Rng } from '../helpers/random.js';
import { tinyPair } from './tiny-pair.js';

const D = 12;

describe('serve: pair routes (fastify.inject)', () => {
  let pair: AlignedPair;
  let app: FastifyInstance;
  const rng = new Rng(5);
  const vec = () => Array.from(rng.normals(D));

  before(async () => {
    pair = tinyPair({ d: D });
    app = await createService({ pair, explorer: false });
  });
  after(async () => {
    await app.close();
    pair.dispose();
  });

  it('GET /healthz and /v1/info describe the pair', async () => {
    expect((await app.inject('/healthz')).json()).to.deep.equal({ ok: true });
    const info = (await app.inject('/v1/info')).json();
    expect(info).to.include({ d: D, m: 24, normalization: 'l2' });
    expect(info.k).to.deep.equal({ image: 4, text: 4 });
    expect(info.modalities).to.deep.equal(['image', 'text']);
    expect(info.batching.maxBatchRows).to.equal(256);
    expect(info.concepts).to.equal(null);
  });

  it('conceptService registers under a prefix in another fastify app (prefix is fastify\'s option, not refused as ours)', async () => {
    const host = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
    try {
      await host.register(conceptService, { prefix: '/sae', pair, explorer: false });
      expect((await host.inject('/sae/healthz')).json()).to.deep.equal({ ok: true });
      expect((await host.inject('/sae/v1/info')).json()).to.include({ d: D, m: 24 });
      expect((await host.inject('/v1/info')).statusCode).to.equal(404);
      const bad = await host.inject({ method: 'POST', url: '/sae/v1/encode', payload: { modality: 'text', embeddings: [1, 2] } });
      expect(bad.statusCode).to.equal(400);
      expect(bad.json().error.code).to.equal('ERR_SHAPE');
    } finally {
      await host.close();
    }
  });

  it('POST /v1/encode (JSON, one row and several) equals the library encode', async () => {
    const rows = [vec(), vec(), vec()];
    const want = pair.encode('text', { rows: 3, cols: D, data: Float32Array.from(rows.flat()) });
    const one = (await app.inject({ method: 'POST', url: '/v1/encode', payload: { modality: 'text', embeddings: rows[0] } })).json();
    expect(one.rows).to.equal(1);
    expect(one.indices[0]).to.deep.equal(Array.from(want.indices.subarray(0, 4)));
    expect(one.values[0]).to.deep.equal(Array.from(want.values.subarray(0, 4)));
    const many = (await app.inject({ method: 'POST', url: '/v1/encode', payload: { modality: 'text', embeddings: rows } })).json();
    expect(many.indices.flat()).to.deep.equal(Array.from(want.indices));
    expect(many.values.flat()).to.deep.equal(Array.from(want.values));
    expect(many.labels).to.equal(undefined);
  });

  it('POST /v1/encode with a raw float32 body, answered in JSON or binary', async () => {
    const x = Float32Array.from([...vec(), ...vec()]);
    const want = pair.encode('image', { rows: 2, cols: D, data: x });
    const body = Buffer.from(x.buffer);
    const json = (await app.inject({ method: 'POST', url: '/v1/encode?modality=image', headers: { 'content-type': 'application/octet-stream', 'x-shape': `2,${D}` }, payload: body })).json();
    expect(json.values.flat()).to.deep.equal(Array.from(want.values));
    const bin = await app.inject({ method: 'POST', url: '/v1/encode', headers: { 'content-type': 'application/octet-stream', 'x-shape': `2,${D}`, 'x-modality': 'image', accept: 'application/octet-stream' }, payload: body });
    expect(bin.headers['x-shape']).to.equal('2,4');
    const raw = bin.rawPayload;
    const idx = new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 32));
    const val = new Float32Array(raw.buffer.slice(raw.byteOffset + 32, raw.byteOffset + 64));
    expect(Array.from(idx)).to.deep.equal(Array.from(want.indices));
    expect(Array.from(val)).to.deep.equal(Array.from(want.values));
  });

  it('POST /v1/decode equals the library decode', async () => {
    const c = pair.encode('image', { rows: 1, cols: D, data: Float32Array.from(vec()) });
    const want = pair.image.decode(c);
    const r = (await app.inject({ method: 'POST', url: '/v1/decode', payload: { modality: 'image', indices: [Array.from(c.indices)], values: [Array.from(c.values)] } })).json();
    expect(r.embeddings[0]).to.deep.equal(Array.from(want.data));
  });

  it('POST /v1/steer adds strength / |W_dec[c]| on the concept and decodes', async () => {
    const e = vec();
    const c = pair.encode('image', { rows: 1, cols: D, data: Float32Array.from(e) });
    const W = pair.image.getWeights().W_dec;
    const norm = Math.sqrt(W.data.subarray(5 * D, 6 * D).reduce((s, v) => s + v * v, 0));
    const steered = { rows: 1, k: 5, indices: Int32Array.from([...c.indices, 5]), values: Float32Array.from([...c.values, 2 / norm]) };
    const want = pair.image.decode(steered);
    const r = (await app.inject({ method: 'POST', url: '/v1/steer', payload: { embedding: e, concept: 5, strength: 2 } })).json();
    expect(r.embedding).to.deep.equal(Array.from(want.data));
    expect(r.retrieved).to.equal(undefined);
  });

  it('POST /v1/explain: shared concepts and shares that sum to 1', async () => {
    const e = vec();
    const r = (await app.inject({ method: 'POST', url: '/v1/explain', payload: { image: e, text: e } })).json();
    const a = pair.encode('image', { rows: 1, cols: D, data: Float32Array.from(e) });
    const t = pair.encode('text', { rows: 1, cols: D, data: Float32Array.from(e) });
    const shared = [...a.indices].filter((i, s) => a.values[s] !== 0 && [...t.indices].some((j, u) => j === i && t.values[u] !== 0));
    expect(r.concepts.map((c: { id: number }) => c.id).sort()).to.deep.equal(shared.sort());
    if (shared.length) expect(r.concepts.reduce((s: number, c: { share: number }) => s + c.share, 0)).to.be.closeTo(1, 1e-9);
    expect(r.score).to.be.within(0, 1.000001);
  });

  it('GET /metrics is Prometheus text with requests, latency, batch sizes and queue depth', async () => {
    const text = (await app.inject('/metrics')).payload;
    for (const name of ['cmsae_http_requests_total', 'cmsae_http_request_duration_seconds_bucket', 'cmsae_batch_rows_bucket', 'cmsae_queue_rows', 'cmsae_process_resident_memory_bytes'])
      expect(text, name).to.include(name);
    expect(text).to.match(/cmsae_http_requests_total\{method="POST",route="\/v1\/encode",status="200"\} [1-9]/);
  });

  it('GET /openapi.json documents every /v1 route', async () => {
    const doc = (await app.inject('/openapi.json')).json();
    expect(doc.openapi).to.match(/^3\./);
    for (const p of ['/v1/info', '/v1/encode', '/v1/decode', '/v1/steer', '/v1/explain', '/v1/concepts', '/v1/concepts/{id}', '/v1/search', '/v1/heterogeneity', '/healthz', '/metrics'])
      expect(doc.paths, p).to.have.property(p);
  });
});
