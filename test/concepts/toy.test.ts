import { expect } from 'chai';
import path from 'node:path';

import { AlignedPair, CaptionVocabulary, ConceptIndex, buildConceptIndex, conceptIndexFor, labelOf, loadConceptCorpus, loadEvalLabels, textConcepts } from '../../lib/index.js';
import { toyPair, type ToyPair } from './toy-pair.js';

describe('concept index on the toy dataset', function () {
  this.timeout(120_000);
  let tp: ToyPair;
  before(async () => {
    tp = await toyPair();
  });

  it('labels: for matched alive pairs whose top captions are dominated (>= 50%) by one object, the first term of the label is the name of that object for >= 80%', async () => {
    const corpus = await loadConceptCorpus({ toy: tp.toyDir });
    using pair = await AlignedPair.load(tp.pairDir);
    const index = await buildConceptIndex(pair, corpus);
    const l = await loadEvalLabels([path.join(tp.toyDir, 'eval_labels.json')]);
    const said = textConcepts(l)!; // ground truth: the objects each caption mentions
    let dominated = 0, right = 0;
    for (const s of index.summaries()) {
      if (!(s.alive.image && s.alive.text)) continue;
      const c = index.concept(s.id);
      const counts = new Map<number, number>();
      for (const t of c.topCaptions) for (const o of said[t.row]) counts.set(o, (counts.get(o) ?? 0) + 1);
      const [best] = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      if (!best || best[1] < 0.5 * c.topCaptions.length) continue;
      dominated++;
      // The label's first term is the object's name, two-word names ("traffic light") included.
      if (c.label.split(' / ')[0] === l.concepts[best[0]]) right++;
    }
    expect(dominated, 'concepts dominated by one object').to.be.at.least(10);
    expect(right / dominated, `${right}/${dominated} labels start with their object`).to.be.at.least(0.8);
  });

  it('labels grow a word into the phrase it always stands in, never across a varying neighbour', () => {
    const fillers = Array.from({ length: 120 }, (_, i) => ['a photo of a dog', 'a cat and a bench', 'a photo of a car on a street'][i % 3]);
    // rows 0-5: "traffic light" captions; row 6: "red light"; the rest are about other things.
    const v = new CaptionVocabulary([...Array.from({ length: 6 }, (_, i) => (i % 2 ? 'a traffic light and a dog' : 'a photo of a traffic light')), 'a red light on a car', ...fillers]);
    const rows = [0, 1, 2, 3, 4, 5];
    expect(v.label(rows, v.distinctive(rows)).split(' / ')[0]).to.equal('traffic light');
    // With row 6, "light" has no constant left neighbour: it stays a word ("traffic" may still be a term of its own).
    const mixed = [0, 2, 4, 6];
    const terms = v.label(mixed, v.distinctive(mixed)).split(' / ');
    expect(terms).to.include('light');
    expect(terms).to.not.include('traffic light');
    // "photo" stands before "traffic light" in rows 0, 2 and 4 but is not distinctive: never part of a phrase.
    expect(v.label([0, 2, 4], v.distinctive([0, 2, 4]))).to.not.match(/photo/);
    expect(labelOf([{ word: 'light', z: 3 }, { word: 'traffic', z: 3 }], (w) => (w === 'light' ? ['traffic', 'light'] : [w]))).to.equal('traffic light');
    expect(labelOf([{ word: 'dog', z: 3 }, { word: 'cat', z: 1 }, { word: 'bench', z: 2 }])).to.equal('dog / bench');
  });

  it('conceptIndexFor saves beside the pair and reuses the index while its inputs are unchanged', async () => {
    const first = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir });
    expect(first.reused).to.equal(false);
    expect(first.dir).to.equal(path.join(path.dirname(tp.pairDir), 'concepts'));
    const again = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir });
    expect(again.reused).to.equal(true);
    expect(again.index.summaries()).to.deep.equal(first.index.summaries());
    const respelled = path.relative(process.cwd(), tp.toyDir) + '/./';
    expect((await conceptIndexFor(tp.pairDir, { toy: respelled })).reused, 'the same files spelled another way').to.equal(true);
    const rooted = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir }, { imageRoot: tp.toyDir });
    expect(rooted.reused, 'another image root rebuilds').to.equal(false);
    expect(rooted.index.meta.imageRoot).to.equal(path.resolve(tp.toyDir));
    const wider = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir }, { topN: 5 });
    expect(wider.reused, 'other options rebuild').to.equal(false);
    expect(wider.index.concept(0).topCaptions.length).to.be.at.most(5);
    const loaded = await ConceptIndex.load(wider.dir);
    expect(loaded.meta.topN).to.equal(5);
  });
});
