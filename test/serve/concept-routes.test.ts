import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';

import { buildConceptIndex, generateToy, loadConceptCorpus, writeToy, type AlignedPair } from '../../lib/index.js';
import type { ConceptIndex } from '../../lib/concepts/concept-index.js';
import { createService } from '../../lib/serve/service.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyPair } from './tiny-pair.js';

describe('serve: concept routes (a real concept index of a toy corpus)', () => {
  const tmp = tempDir('cmsae-serve-concepts-');
  let pair: AlignedPair;
  let app: FastifyInstance;
  let index: ConceptIndex;
  before(async () => {
    const toy = path.join(tmp.dir, 'toy');
    await writeToy(toy, generateToy({ d: 16, objects: 6, imageAttributes: 2, textAttributes: 2, trainPairs: 20, evalImages: 60, captionsPerImage: 2, zeroShotImages: 5, seed: 3 }));
    pair = tinyPair({ d: 16, m: 24, k: 4 });
    const corpus = await loadConceptCorpus({ toy });
    index = await buildConceptIndex(pair, corpus);
    app = await createService({ pair, concepts: index, explorer: false });
  });
  after(async () => {
    await app?.close();
    pair?.dispose();
    tmp.cleanup();
  });

  it('refuses a concept index built from another pair, and a corpus other than the one the index was built on', async () => {
    using other = tinyPair({ d: 16, m: 24, k: 4, seed: 9 }); // same shape, other weights
    await expectSaeRejection(createService({ pair: other, concepts: index, explorer: false }), 'ERR_STATE', /another aligned pair/);
    const corpus = await loadConceptCorpus({ toy: path.join(tmp.dir, 'toy') });
    const fewer = { ...corpus, text: { ...corpus.text, rows: corpus.text.rows - 2, data: corpus.text.data.subarray(0, (corpus.text.rows - 2) * corpus.text.cols) }, captions: corpus.captions.slice(0, -2), imageOfText: corpus.imageOfText && corpus.imageOfText.subarray(0, -2) };
    await expectSaeRejection(createService({ pair, concepts: index, corpus: fewer, explorer: false }), 'ERR_SHAPE', /the concept index was built on/);
    const same = await createService({ pair, concepts: index, corpus, explorer: false }); // the corpus it was built on
    await same.close();
  });

  it('GET /v1/concepts sorts, filters by label word and paginates', async () => {
    const all = (await app.inject('/v1/concepts?limit=500')).json();
    expect(all.total).to.equal(24);
    const corr = all.items.map((s: { correlation: number }) => s.correlation);
    expect(corr).to.deep.equal([...corr].sort((a: number, b: number) => b - a));
    const byId = (await app.inject('/v1/concepts?sort=id&limit=5&offset=5')).json();
    expect(byId.items.map((s: { id: number }) => s.id)).to.deep.equal([5, 6, 7, 8, 9]);
    const asc = (await app.inject('/v1/concepts?sort=decoderDistance&order=asc&limit=500')).json().items.map((s: { decoderDistance: number }) => s.decoderDistance);
    expect(asc).to.deep.equal([...asc].sort((a: number, b: number) => a - b));
    const labelled = all.items.find((s: { label: string }) => s.label !== '');
    if (labelled) {
      const word = labelled.label.split(/[^\p{L}\p{N}]+/u).filter(Boolean)[0];
      const hits = (await app.inject(`/v1/concepts?q=${encodeURIComponent(word)}&limit=500`)).json();
      expect(hits.items.map((s: { id: number }) => s.id)).to.include(labelled.id);
      for (const s of hits.items) expect(s.label.toLowerCase()).to.include(word.toLowerCase());
    }
    const alive = (await app.inject('/v1/concepts?alive=both&limit=500')).json();
    for (const s of alive.items) expect(s.alive).to.deep.equal({ image: true, text: true });
  });

  it('GET /v1/concepts?limit above 500 is 400 ERR_RANGE naming the maximum (never silently capped)', async () => {
    for (const limit of [501, 100000]) {
      const r = await app.inject(`/v1/concepts?limit=${limit}`);
      expect(r.statusCode, r.payload).to.equal(400);
      expect(r.json().error.code).to.equal('ERR_RANGE');
      expect(r.json().error.message).to.match(/500/);
    }
  });

  it('without an imageRoot option, images are served from the root the concept index records (none when it is gone)', async () => {
    const root = path.join(tmp.dir, 'images');
    mkdirSync(root);
    writeFileSync(path.join(root, 'a.png'), 'PNGDATA');
    const corpus = await loadConceptCorpus({ toy: path.join(tmp.dir, 'toy') });
    const withRoot = await buildConceptIndex(pair, corpus, { imageRoot: root });
    const served = await createService({ pair, concepts: withRoot, explorer: false });
    try {
      const r = await served.inject('/images/a.png');
      expect(r.statusCode, r.payload).to.equal(200);
      expect(r.payload).to.equal('PNGDATA');
    } finally {
      await served.close();
    }
    const other = path.join(tmp.dir, 'other-images'); // an explicit imageRoot wins over the recorded one
    mkdirSync(other);
    const explicit = await createService({ pair, concepts: withRoot, explorer: false, imageRoot: other });
    try {
      expect((await explicit.inject('/images/a.png')).statusCode).to.equal(404);
    } finally {
      await explicit.close();
    }
    const gone = await buildConceptIndex(pair, corpus, { imageRoot: path.join(tmp.dir, 'moved-away') });
    const none = await createService({ pair, concepts: gone, explorer: false });
    try {
      const r = await none.inject('/images/a.png');
      expect(r.statusCode).to.equal(404);
      expect(r.json().error.message).to.match(/serves no image files/);
    } finally {
      await none.close();
    }
  });

  it('GET /v1/concepts/:id has statistics, partners, top images and captions with their text', async () => {
    const id = index.summaries().find((s) => s.alive.image && s.alive.text)?.id ?? 0;
    const c = (await app.inject(`/v1/concepts/${id}`)).json();
    const want = index.concept(id);
    expect(c).to.deep.include({ id, label: want.label, decoderDistance: want.decoderDistance });
    expect(c.topCaptions.map((t: { row: number }) => t.row)).to.deep.equal(want.topCaptions.map((t) => t.row));
    for (const t of c.topCaptions) expect(t.caption).to.equal(index.captions([t.row])[0]);
    expect(c.topImages.map((t: { row: number }) => t.row)).to.deep.equal(want.topImages.map((t) => t.row));
    expect(c.imagePartners).to.deep.equal(want.imagePartners);
    const r = await app.inject('/v1/concepts/24');
    expect(r.statusCode).to.equal(404);
    expect(r.json().error.code).to.equal('ERR_RANGE');
  });

  it('encode answers the labels of the active concepts; heterogeneity gives one point per concept; search works on the index codes', async () => {
    const e = await app.inject({ method: 'POST', url: '/v1/encode', payload: { modality: 'text', embeddings: Array(16).fill(0.25) } });
    const labels = index.summaries().map((s) => s.label);
    const body = e.json();
    body.indices[0].forEach((j: number, s: number) => expect(body.labels[0][s]).to.equal(body.values[0][s] !== 0 ? labels[j] : ''));
    const h = (await app.inject('/v1/heterogeneity')).json();
    expect(h.points).to.have.length(24);
    const codes = index.codes('text');
    const q = { indices: Array.from(codes.indices.subarray(0, codes.k)), values: Array.from(codes.values.subarray(0, codes.k)) };
    const s = (await app.inject({ method: 'POST', url: '/v1/search', payload: { codes: q, target: 'text', top: 3 } })).json();
    if (q.values.some((v) => v > 0)) expect(s.items[0].score).to.be.closeTo(1, 1e-9); // caption 0 matches itself best (or ties, by row)
    const steer = (await app.inject({ method: 'POST', url: '/v1/steer', payload: { row: 0, concept: 1, strength: 1, top: 3 } })).json();
    expect(steer.retrieved.by).to.equal('code cosine');
    const ex = await app.inject({ method: 'POST', url: '/v1/explain', payload: { image: 0, text: 0 } });
    expect(ex.statusCode).to.equal(200);
  });
});
