import { expect } from 'chai';
import { readFileSync, writeFileSync, mkdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, ConceptIndex, buildConceptIndex, conceptIndexFor, loadConceptCorpus, writeNpy } from '../../lib/index.js';
import { kindOfDirectory } from '../../lib/io/atomic.js';
import { cmsaeInProcess } from '../helpers/cli-run.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { toyPair, type ToyPair } from './toy-pair.js';

describe('concept index: storage, corpus formats, CLI', function () {
  this.timeout(120_000);
  let tp: ToyPair;
  let saved: string;
  let index: ConceptIndex;
  before(async () => {
    tp = await toyPair();
    using pair = await AlignedPair.load(tp.pairDir);
    index = await buildConceptIndex(pair, await loadConceptCorpus({ toy: tp.toyDir }), { topN: 7, partners: 3 });
    saved = path.join(tp.root, 'saved-index');
    await index.save(saved);
  });

  it('save/load round trip: every concept, caption, label and code comes back; the directory is a concept index', async () => {
    const back = await ConceptIndex.load(saved);
    expect(kindOfDirectory(saved)).to.equal('concept-index');
    expect(back.meta).to.deep.equal(index.meta);
    for (let i = 0; i < index.m; i++) expect(JSON.stringify(back.concept(i)), `concept ${i}`).to.equal(JSON.stringify(index.concept(i)));
    expect(back.captions()).to.deep.equal(index.captions());
    expect(back.captions([3, 0])).to.deep.equal(index.captions([3, 0]));
    expect(back.imageLabels(0)).to.deep.equal(index.imageLabels(0)).and.not.equal(null);
    expect(back.imageRef(0)).to.equal(null);
    expect(Array.from(back.imageOfText()!)).to.deep.equal(Array.from(index.imageOfText()!));
    for (const side of ['image', 'text'] as const) {
      expect(Array.from(back.codes(side).indices)).to.deep.equal(Array.from(index.codes(side).indices));
      expect(Array.from(back.codes(side).values)).to.deep.equal(Array.from(index.codes(side).values));
    }
    expect(back.textsOfImage(1)).to.deep.equal([3, 4, 5]);
  });

  it('unknown ids and rows are ERR_RANGE; a bad side ERR_ARG', () => {
    expectSaeError(() => index.concept(index.m), 'ERR_RANGE');
    expectSaeError(() => index.concept(-1), 'ERR_RANGE');
    expectSaeError(() => index.concept(1.5), 'ERR_RANGE');
    expectSaeError(() => index.captions([1e9]), 'ERR_RANGE');
    expectSaeError(() => index.imageRef(-1), 'ERR_RANGE');
    expectSaeError(() => index.codes('audio' as 'image'), 'ERR_ARG');
  });

  it('corrupted, edited, truncated, missing and foreign files are refused with codes', async () => {
    const copy = (name: string) => {
      const d = path.join(tp.root, name);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d);
      for (const f of ['index.json', 'index.safetensors', 'corpus.json', 'codes.safetensors']) writeFileSync(path.join(d, f), readFileSync(path.join(saved, f)));
      return d;
    };
    const flip = copy('flip');
    const b = readFileSync(path.join(flip, 'codes.safetensors'));
    b[b.length - 3] ^= 0x10;
    writeFileSync(path.join(flip, 'codes.safetensors'), b);
    await expectSaeRejection(ConceptIndex.load(flip), 'ERR_FORMAT', /checksum/);
    const edited = copy('edited');
    const j = JSON.parse(readFileSync(path.join(edited, 'index.json'), 'utf8'));
    j.labels[0] = 'edited';
    writeFileSync(path.join(edited, 'index.json'), JSON.stringify(j));
    await expectSaeRejection(ConceptIndex.load(edited), 'ERR_FORMAT', /corrupt or was edited/);
    const trunc = copy('trunc');
    writeFileSync(path.join(trunc, 'index.json'), readFileSync(path.join(trunc, 'index.json')).subarray(0, 100));
    await expectSaeRejection(ConceptIndex.load(trunc), 'ERR_FORMAT');
    const missing = copy('missing');
    unlinkSync(path.join(missing, 'corpus.json'));
    await expectSaeRejection(ConceptIndex.load(missing), 'ERR_IO', /missing/);
    await expectSaeRejection(ConceptIndex.load(tp.pairDir), 'ERR_IO', /concept index/);
    const foreign = path.join(tp.root, 'foreign');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(path.join(foreign, 'index.json'), JSON.stringify({ kind: 'something-else', format_version: 1 }));
    await expectSaeRejection(ConceptIndex.load(foreign), 'ERR_FORMAT');
    // A save never replaces a directory that is not a concept index (here: the pair itself, or a user's folder).
    await expectSaeRejection(index.save(tp.pairDir), 'ERR_IO');
    await expectSaeRejection(index.save(foreign), 'ERR_IO');
    await expectSaeRejection(ConceptIndex.load(''), 'ERR_ARG');
  });

  it('corpus formats: .txt and .jsonl captions, an image-of-text array, image refs; bad corpora are refused', async () => {
    const dir = path.join(tp.root, 'corpus');
    mkdirSync(dir, { recursive: true });
    const toy = await loadConceptCorpus({ toy: tp.toyDir });
    const img = path.join(dir, 'img.npy'), txt = path.join(dir, 'txt.npy');
    await writeNpy(img, toy.image);
    await writeNpy(txt, toy.text);
    writeFileSync(path.join(dir, 'caps.txt'), toy.captions.join('\n') + '\n');
    writeFileSync(path.join(dir, 'map.json'), JSON.stringify(Array.from(toy.imageOfText!)));
    writeFileSync(path.join(dir, 'caps.jsonl'), toy.captions.map((c, t) => JSON.stringify({ caption: c, image: toy.imageOfText![t] })).join('\n'));
    writeFileSync(path.join(dir, 'refs.txt'), Array.from({ length: toy.image.rows }, (_, i) => `img/${i}.jpg`).join('\n'));
    const a = await loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'caps.txt'), imageOfText: path.join(dir, 'map.json'), imageRefs: path.join(dir, 'refs.txt') });
    expect(a.captions).to.deep.equal(toy.captions);
    expect(Array.from(a.imageOfText!)).to.deep.equal(Array.from(toy.imageOfText!));
    expect(a.imageRefs![2]).to.equal('img/2.jpg');
    const b = await loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'caps.jsonl') });
    expect(Array.from(b.imageOfText!)).to.deep.equal(Array.from(toy.imageOfText!));
    // Without a map, 600 images and 1800 captions cannot pair by row.
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'caps.txt') }), 'ERR_SHAPE');
    writeFileSync(path.join(dir, 'short.txt'), 'one caption\n');
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'short.txt'), imageOfText: path.join(dir, 'map.json') }), 'ERR_SHAPE');
    writeFileSync(path.join(dir, 'abs.json'), JSON.stringify(Array.from({ length: toy.image.rows }, () => '/etc/passwd')));
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'caps.jsonl'), imageRefs: path.join(dir, 'abs.json') }), 'ERR_FORMAT', /relative/);
    for (const [name, ref, why] of [['up.json', 'img/../../etc/passwd', /climbs out/], ['js.json', 'javascript:alert(1)', /scheme javascript:/], ['win.json', 'C:\\x.jpg', /absolute/]] as const) {
      writeFileSync(path.join(dir, name), JSON.stringify(Array.from({ length: toy.image.rows }, (_, i) => (i === 3 ? ref : `img/${i}.jpg`))));
      await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'caps.jsonl'), imageRefs: path.join(dir, name) }), 'ERR_FORMAT', why);
    }
    writeFileSync(path.join(dir, 'gap.jsonl'), '{"caption": "a dog", "image": 0}\n{"caption": "a cat"}\n{"caption": "a car", "image": 1}\n');
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'gap.jsonl') }), 'ERR_FORMAT', /gap\.jsonl:2 has no "image"/);
    writeFileSync(path.join(dir, 'neg.jsonl'), '{"caption": "a dog", "image": -1}\n');
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'neg.jsonl') }), 'ERR_FORMAT', /neg\.jsonl:1 has "image": -1/);
    writeFileSync(path.join(dir, 'bad.jsonl'), '{"caption": 3}\n');
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt, captions: path.join(dir, 'bad.jsonl') }), 'ERR_FORMAT');
    await expectSaeRejection(loadConceptCorpus({ toy: tp.toyDir, image: img }), 'ERR_ARG');
    await expectSaeRejection(loadConceptCorpus({ image: img, text: txt } as never), 'ERR_ARG');
    await expectSaeRejection(loadConceptCorpus({ images: img } as never), 'ERR_ARG');
    await expectSaeRejection(loadConceptCorpus({ image: path.join(dir, 'nope.npy'), text: txt, captions: path.join(dir, 'caps.txt') }), 'ERR_IO');
    using pair = await AlignedPair.load(tp.pairDir);
    await expectSaeRejection(buildConceptIndex(pair, a, { topN: 0 }), 'ERR_ARG');
    await expectSaeRejection(buildConceptIndex(pair, a, { top: 3 } as never), 'ERR_ARG');
    await expectSaeRejection(buildConceptIndex(pair, { ...a, captions: a.captions.slice(1) }), 'ERR_SHAPE');
    await expectSaeRejection(buildConceptIndex(pair, { ...a, image: { rows: 1, cols: 3, data: new Float32Array(3) } }), 'ERR_SHAPE');
  });

  it('cmsae concepts: builds, prints a table and where it saved, reuses; bad flags exit 2', async () => {
    const out = path.join(tp.root, 'cli-index');
    const r = await cmsaeInProcess(['concepts', '--pair', tp.pairDir, '--toy', tp.toyDir, '--out', out, '--top-n', '6']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/label/).and.match(new RegExp(`saved the index .* to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const again = await cmsaeInProcess(['concepts', '--pair', tp.pairDir, '--toy', tp.toyDir, '--out', out, '--top-n', '6', '--json']);
    expect(again.status, again.stderr).to.equal(0);
    const j = JSON.parse(again.stdout);
    expect(j.reused).to.equal(true);
    expect(j.concepts).to.have.length(index.m);
    expect((await ConceptIndex.load(out)).meta.topN).to.equal(6);
    expect((await cmsaeInProcess(['concepts', '--pair', tp.pairDir])).status).to.equal(2);
    expect((await cmsaeInProcess(['concepts', '--pair', tp.pairDir, '--toy', tp.toyDir, '--top-n', '0'])).status).to.equal(2);
    expect((await cmsaeInProcess(['concepts', '--pair', path.join(tp.root, 'nope'), '--toy', tp.toyDir])).status).to.not.equal(0);
    const first = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir }, { out, topN: 6 });
    expect(first.reused).to.equal(true);
  });
});
