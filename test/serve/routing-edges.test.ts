import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';

import type { AlignedPair } from '../../lib/index.js';
import { conceptService } from '../../lib/serve/plugin.js';
import { createService } from '../../lib/serve/service.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyPair } from './tiny-pair.js';

const D = 12;
const TOKEN = 'sekrit-token-1';

function expectError(r: { statusCode: number; payload: string; json(): { error: { code: string; message: string } } }, status: number, code: string, message?: RegExp): void {
  expect(r.statusCode, r.payload).to.equal(status);
  expect(r.json().error.code).to.equal(code);
  if (message) expect(r.json().error.message).to.match(message);
}

const hostApp = () => Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });

describe('serve: routing, auth and media-type edges', () => {
  let pair: AlignedPair;
  const tmp = tempDir('cmsae-serve-edges-');
  const v = Array.from(new Rng(4).normals(D));
  const raw = Buffer.from(Float32Array.from(v).buffer);
  before(() => {
    pair = tinyPair({ d: D });
  });
  after(() => {
    pair.dispose();
    tmp.cleanup();
  });

  it('under a prefix with a token, /sae/healthz needs no token and the other routes do', async () => {
    const host = hostApp();
    try {
      await host.register(conceptService, { prefix: '/sae', pair, token: TOKEN, explorer: false });
      const h = await host.inject('/sae/healthz');
      expect(h.statusCode, h.payload).to.equal(200);
      expect(h.json()).to.deep.equal({ ok: true });
      expectError(await host.inject('/sae/v1/info'), 401, 'ERR_UNAUTHORIZED');
      expectError(await host.inject('/sae/metrics'), 401, 'ERR_UNAUTHORIZED');
      expect((await host.inject({ url: '/sae/v1/info', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).to.equal(200);
    } finally {
      await host.close();
    }
  });

  it('the bearer scheme is case-insensitive; the token itself is not', async () => {
    const app = await createService({ pair, token: TOKEN, explorer: false });
    try {
      for (const authorization of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer ${TOKEN}`]) expect((await app.inject({ url: '/v1/info', headers: { authorization } })).statusCode, authorization).to.equal(200);
      for (const authorization of [`Bearer ${TOKEN.toUpperCase()}`, `Bearer ${TOKEN}x`, `Bearer${TOKEN}`, `Basic ${TOKEN}`, 'Bearer ', `Bearer ${TOKEN} extra`])
        expectError(await app.inject({ url: '/v1/info', headers: { authorization } }), 401, 'ERR_UNAUTHORIZED');
    } finally {
      await app.close();
    }
  });

  it('a raw float32 body on a route other than /v1/encode is 415 ERR_UNSUPPORTED_MEDIA', async () => {
    const app = await createService({ pair, explorer: false });
    try {
      const headers = { 'content-type': 'application/octet-stream', 'x-shape': `1,${D}` };
      for (const url of ['/v1/decode', '/v1/steer', '/v1/explain', '/v1/search'])
        expectError(await app.inject({ method: 'POST', url, payload: raw, headers }), 415, 'ERR_UNSUPPORTED_MEDIA', /application\/json only/);
      const ok = await app.inject({ method: 'POST', url: '/v1/encode?modality=image', payload: raw, headers });
      expect(ok.statusCode, ok.payload).to.equal(200);
    } finally {
      await app.close();
    }
  });

  it('unknown API paths are 404 "no route", known paths with another method 405 with Allow, even with the explorer on', async () => {
    const app = await createService({ pair });
    try {
      expectError(await app.inject('/v1/nope'), 404, 'ERR_NOT_FOUND', /^no route GET \/v1\/nope$/);
      expectError(await app.inject('/v1/concepts/3/extra'), 404, 'ERR_NOT_FOUND', /^no route GET/);
      expectError(await app.inject({ method: 'POST', url: '/v1/nope' }), 404, 'ERR_NOT_FOUND', /^no route POST/);
      const get = await app.inject('/v1/encode?x=1');
      expectError(get, 405, 'ERR_METHOD_NOT_ALLOWED', /GET \/v1\/encode .*POST/);
      expect(get.headers.allow).to.equal('POST');
      const post = await app.inject({ method: 'POST', url: '/metrics', payload: {} });
      expectError(post, 405, 'ERR_METHOD_NOT_ALLOWED');
      expect(post.headers.allow).to.match(/GET/);
      expectError(await app.inject({ method: 'DELETE', url: '/v1/concepts/3' }), 405, 'ERR_METHOD_NOT_ALLOWED');
      // The explorer's files are still served, and its own misses stay its own.
      expect((await app.inject('/index.html')).statusCode).to.equal(200);
      expectError(await app.inject('/nope.html'), 404, 'ERR_NOT_FOUND', /no file/);
    } finally {
      await app.close();
    }
    const host = hostApp(); // no swagger: /sae/openapi.json is not a route, and not an explorer file either
    try {
      await host.register(conceptService, { prefix: '/sae', pair });
      expectError(await host.inject('/sae/openapi.json'), 404, 'ERR_NOT_FOUND', /^no route GET \/sae\/openapi\.json$/);
      expectError(await host.inject('/sae/v1/nope'), 404, 'ERR_NOT_FOUND', /^no route GET \/sae\/v1\/nope$/);
      expectError(await host.inject('/sae/v1/encode'), 405, 'ERR_METHOD_NOT_ALLOWED');
    } finally {
      await host.close();
    }
  });

  it('under a prefix, /sae redirects (308) to /sae/ when the explorer is on', async () => {
    const host = hostApp();
    try {
      await host.register(conceptService, { prefix: '/sae', pair });
      const r = await host.inject('/sae');
      expect(r.statusCode).to.equal(308);
      expect(r.headers.location).to.equal('/sae/');
      expect((await host.inject('/sae?c=3')).headers.location).to.equal('/sae/?c=3');
      const page = await host.inject('/sae/');
      expect(page.statusCode).to.equal(200);
      expect(page.headers['content-type']).to.match(/text\/html/);
    } finally {
      await host.close();
    }
    const off = hostApp();
    try {
      await off.register(conceptService, { prefix: '/sae', pair, explorer: false });
      expect((await off.inject('/sae')).statusCode).to.equal(404);
    } finally {
      await off.close();
    }
  });

  it('steer: strength null is ERR_NONFINITE naming strength; an overflowing strength names it and the range', async () => {
    const app = await createService({ pair, explorer: false });
    try {
      const steer = (strength: unknown) => app.inject({ method: 'POST', url: '/v1/steer', payload: { embedding: v, concept: 2, strength } });
      expectError(await steer(null), 400, 'ERR_NONFINITE', /strength/);
      expectError(await steer(1e308), 400, 'ERR_NONFINITE', /strength 1e\+308 .*\|strength\| <= \d/);
      expectError(await steer(-1e308), 400, 'ERR_NONFINITE', /strength/);
      expectError(await steer('1'), 400, 'ERR_ARG');
      expect((await steer(2)).statusCode).to.equal(200);
    } finally {
      await app.close();
    }
  });

  it('with CORS, binary encode answers expose x-shape to the browser', async () => {
    const app = await createService({ pair, explorer: false, cors: true });
    try {
      const r = await app.inject({ method: 'POST', url: '/v1/encode?modality=text', payload: raw, headers: { 'content-type': 'application/octet-stream', 'x-shape': `1,${D}`, accept: 'application/octet-stream', origin: 'http://a.example' } });
      expect(r.statusCode).to.equal(200);
      expect(r.headers['x-shape']).to.equal('1,4');
      expect(String(r.headers['access-control-expose-headers']).toLowerCase().split(/\s*,\s*/)).to.include('x-shape');
    } finally {
      await app.close();
    }
  });

  it('the image root must be a directory at startup (ERR_IO), for createService and the plugin; an empty CORS list is refused', async () => {
    const file = path.join(tmp.dir, 'a-file');
    writeFileSync(file, 'x');
    await expectSaeRejection(createService({ pair, explorer: false, imageRoot: path.join(tmp.dir, 'nonexistent') }), 'ERR_IO', /does not exist/);
    await expectSaeRejection(createService({ pair, explorer: false, imageRoot: file }), 'ERR_IO', /not a directory/);
    const host = hostApp();
    try {
      const registered = (async () => {
        await host.register(conceptService, { prefix: '/sae', pair, imageRoot: file });
      })();
      await expectSaeRejection(registered, 'ERR_IO', /not a directory/);
    } finally {
      await host.close().catch(() => undefined);
    }
    await expectSaeRejection(createService({ pair, explorer: false, cors: [] }), 'ERR_ARG', /cors/);
  });

  it('GET /openapi.json documents the raw float32 request and answer of /v1/encode and its x-shape / x-modality headers', async () => {
    const app = await createService({ pair, explorer: false });
    try {
      const doc = (await app.inject('/openapi.json')).json();
      const op = doc.paths['/v1/encode'].post;
      const headers = op.parameters.filter((p: { in: string }) => p.in === 'header').map((p: { name: string }) => p.name);
      expect(headers).to.include.members(['x-shape', 'x-modality']);
      expect(op.parameters.find((p: { name: string }) => p.name === 'x-modality').schema.enum).to.deep.equal(['image', 'text']);
      expect(op.requestBody.content['application/octet-stream'].schema).to.include({ type: 'string', format: 'binary' });
      expect(op.requestBody.content['application/json'].schema.required).to.deep.equal(['modality', 'embeddings']);
      const ok = op.responses['200'];
      expect(ok.content['application/octet-stream'].schema).to.include({ type: 'string', format: 'binary' });
      expect(ok.content['application/json'].schema.properties).to.have.keys('rows', 'k', 'indices', 'values', 'labels');
      expect(ok.headers).to.have.key('x-shape');
      expect(doc.paths['/v1/steer'].post.requestBody.content['application/json'].schema.properties.strength).to.include({ type: 'number', nullable: true });
    } finally {
      await app.close();
    }
  });
});
