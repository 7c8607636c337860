import { expect } from 'chai';
import path from 'node:path';

import { AlignedPair, ConceptIndex, buildConceptIndex, conceptIndexFor, loadConceptCorpus, loadEvalLabels, textConcepts } from '../../lib/index.js';
import { toyPair, type ToyPair } from './toy-pair.js';

describe('concept index on the toy dataset', function () {
  this.timeout(120_000);
  let tp: ToyPair;
  before(async () => {
    tp = await toyPair();
  });

  it('labels: for matched alive pairs whose top captions are dominated (>= 50%) by one object, the first label word is that object for >= 80%', async () => {
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
      // A two-word object ("traffic light") is a match when the first label word is one of its words.
      if (l.concepts[best[0]].split(' ').includes(c.words[0]?.word)) right++;
    }
    expect(dominated, 'concepts dominated by one object').to.be.at.least(10);
    expect(right / dominated, `${right}/${dominated} labels start with their object`).to.be.at.least(0.8);
  });

  it('conceptIndexFor saves beside the pair and reuses the index while its inputs are unchanged', async () => {
    const first = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir });
    expect(first.reused).to.equal(false);
    expect(first.dir).to.equal(path.join(path.dirname(tp.pairDir), 'concepts'));
    const again = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir });
    expect(again.reused).to.equal(true);
    expect(again.index.summaries()).to.deep.equal(first.index.summaries());
    const other = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir }, );
    expect(other.reused).to.equal(true);
    const wider = await conceptIndexFor(tp.pairDir, { toy: tp.toyDir }, { topN: 5 });
    expect(wider.reused, 'other options rebuild').to.equal(false);
    expect(wider.index.concept(0).topCaptions.length).to.be.at.most(5);
    const loaded = await ConceptIndex.load(wider.dir);
    expect(loaded.meta.topN).to.equal(5);
  });
});
