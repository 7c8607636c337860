import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';

import type { AlignedPair } from '../../lib/index.js';
import type { ConceptCorpus } from '../../lib/concepts/types.js';
import { CodeSearch, denseTop } from '../../lib/serve/search.js';
import { createService } from '../../lib/serve/service.js';
import { Rng, randomCodes } from '../helpers/random.js';
import { randomMatrix, tinyPair } from './tiny-pair.js';

const D = 12;

/** Cosine of two sparse code rows, summed densely (the reference of CodeSearch). */
function codeCosine(ai: ArrayLike<number>, av: ArrayLike<number>, bi: ArrayLike<number>, bv: ArrayLike<number>, m: number): number {
  const a = new Float64Array(m), b = new Float64Array(m);
  for (let s = 0; s < ai.length; s++) a[ai[s]] += av[s];
  for (let s = 0; s < bi.length; s++) b[bi[s]] += bv[s];
  let dot = 0, na = 0, nb = 0;
  for (let l = 0; l < m; l++) {
    dot += a[l] * b[l];
    na += a[l] ** 2;
    nb += b[l] ** 2;
  }
  return dot / Math.max(Math.sqrt(na), 1e-12) / Math.max(Math.sqrt(nb), 1e-12);
}

describe('serve: corpus routes and search', () => {
  let pair: AlignedPair;
  let app: FastifyInstance;
  let corpus: ConceptCorpus;
  const rng = new Rng(8);
  before(async () => {
    pair = tinyPair({ d: D });
    const image = randomMatrix(rng, 30, D), text = randomMatrix(rng, 60, D);
    const imageOfText = Int32Array.from({ length: 60 }, (_, t) => t >> 1);
    corpus = { image, text, imageOfText, captions: Array.from({ length: 60 }, (_, t) => `caption ${t}`), imageRefs: Array.from({ length: 30 }, (_, i) => `img/${i}.png`), imageLabels: null };
    app = await createService({ pair, corpus, explorer: false });
  });
  after(async () => {
    await app.close();
    pair.dispose();
  });

  it('CodeSearch and denseTop equal a brute-force ranking (ties by row, awkward codes)', () => {
    const r = new Rng(1);
    for (const [rows, m, k] of [[50, 7, 3], [200, 33, 5], [5, 4, 4]]) {
      const c = randomCodes(r, rows, m, k, (g) => (g.next() < 0.2 ? 0 : Math.round(g.uniform(0, 3) * 2) / 2)); // empty slots and ties
      for (let p = 0; p < rows * k; p += 17) c.values[p] = 0;
      const s = new CodeSearch(c, m);
      for (let q = 0; q < 5; q++) {
        const qi = [q % m, (q + 1) % m, q % m], qv = [1, 0.5, 0.25];
        const want = Array.from({ length: rows }, (_, row) => ({ row, score: codeCosine(qi, qv, c.indices.subarray(row * k, (row + 1) * k), c.values.subarray(row * k, (row + 1) * k), m) }))
          .filter((h) => h.score > 0)
          .sort((a, b) => b.score - a.score || a.row - b.row)
          .slice(0, 7);
        const got = s.top(qi, qv, 7);
        expect(got.map((h) => h.row)).to.deep.equal(want.map((h) => h.row));
        got.forEach((h, i) => expect(h.score).to.be.closeTo(want[i].score, 1e-12));
      }
    }
    const x = new Float32Array([1, 0, 0, 1, 0.6, 0.8, -1, 0, 0.6, 0.8]);
    expect(denseTop(x, 2, new Float32Array([0.6, 0.8]), 3).map((h) => h.row)).to.deep.equal([2, 4, 1]);
  });

  it('POST /v1/search by embedding and by codes', async () => {
    const e = Array.from(rng.normals(D));
    const q = pair.encode('image', { rows: 1, cols: D, data: Float32Array.from(e) });
    const byEmb = (await app.inject({ method: 'POST', url: '/v1/search', payload: { modality: 'image', embedding: e, target: 'text', top: 5 } })).json();
    const byCodes = (await app.inject({ method: 'POST', url: '/v1/search', payload: { codes: { indices: Array.from(q.indices), values: Array.from(q.values) }, target: 'text', top: 5 } })).json();
    expect(byEmb.items).to.deep.equal(byCodes.items);
    const texts = pair.encode('text', corpus.text);
    const want = Array.from({ length: 60 }, (_, row) => ({ row, score: codeCosine(q.indices, q.values, texts.indices.subarray(row * 4, row * 4 + 4), texts.values.subarray(row * 4, row * 4 + 4), 24) }))
      .filter((h) => h.score > 0)
      .sort((a, b) => b.score - a.score || a.row - b.row)
      .slice(0, 5);
    expect(byEmb.items.map((h: { row: number }) => h.row)).to.deep.equal(want.map((h) => h.row));
    expect(byEmb.items[0].caption).to.equal(`caption ${want[0].row}`);
    expect(byEmb.items[0].image).to.equal(want[0].row >> 1);
    const img = (await app.inject({ method: 'POST', url: '/v1/search', payload: { modality: 'text', embedding: e, target: 'image', top: 3 } })).json();
    expect(img.items[0].ref).to.match(/^img\/\d+\.png$/);
    const bad = await app.inject({ method: 'POST', url: '/v1/search', payload: { codes: { indices: [99], values: [1] }, target: 'text' } });
    expect(bad.statusCode).to.equal(400);
    expect(bad.json().error.code).to.equal('ERR_RANGE');
  });

  it('POST /v1/steer with a corpus row retrieves images and captions by cosine', async () => {
    const r = (await app.inject({ method: 'POST', url: '/v1/steer', payload: { row: 3, concept: 2, strength: 5, top: 4 } })).json();
    expect(r.embedding).to.have.length(D);
    expect(r.retrieved.by).to.equal('embedding cosine');
    expect(r.retrieved.images).to.have.length(4);
    const scores = r.retrieved.captions.map((h: { score: number }) => h.score);
    expect(scores).to.deep.equal([...scores].sort((a, b) => b - a));
    expect(r.retrieved.captions[0].caption).to.match(/^caption \d+$/);
  });

  it('POST /v1/explain with corpus rows equals explaining their embeddings', async () => {
    const rows = (await app.inject({ method: 'POST', url: '/v1/explain', payload: { image: 4, text: 9 } })).json();
    const vecs = (await app.inject({ method: 'POST', url: '/v1/explain', payload: { image: Array.from(corpus.image.data.subarray(4 * D, 5 * D)), text: Array.from(corpus.text.data.subarray(9 * D, 10 * D)) } })).json();
    expect(rows).to.deep.equal(vecs);
  });

  it('GET /v1/corpus/images/:row and /v1/corpus/captions/:row; unknown rows are 404 ERR_RANGE', async () => {
    const img = (await app.inject('/v1/corpus/images/5')).json();
    expect(img).to.deep.include({ row: 5, ref: 'img/5.png' });
    expect(img.captions).to.deep.equal([{ row: 10, caption: 'caption 10' }, { row: 11, caption: 'caption 11' }]);
    expect((await app.inject('/v1/corpus/captions/11')).json()).to.deep.equal({ row: 11, caption: 'caption 11', image: 5 });
    for (const url of ['/v1/corpus/images/30', '/v1/corpus/captions/60']) {
      const r = await app.inject(url);
      expect(r.statusCode, url).to.equal(404);
      expect(r.json().error.code).to.equal('ERR_RANGE');
    }
    const info = (await app.inject('/v1/info')).json();
    expect(info.corpus).to.deep.equal({ images: 30, captions: 60, embeddings: true });
  });
});
