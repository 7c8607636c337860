import { existsSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { AlignedPair } from '../../lib/index.js';
import { DEMO_TRAIN, prepareDemoPair } from '../../lib/serve/demo.js';
import { tempDir } from '../helpers/tmp.js';

describe('serve --demo: toy dataset and posthoc pair, reused on a rerun', function () {
  this.timeout(180_000);
  const tmp = tempDir('cmsae-serve-demo-');
  after(() => tmp.cleanup());

  it('builds the toy dataset and an aligned pair, then reuses both', async () => {
    const out = path.join(tmp.dir, 'demo');
    const first: string[] = [], second: string[] = [];
    const p = await prepareDemoPair(out, (l) => first.push(l));
    expect(first.join('\n')).to.match(/wrote the toy dataset/).and.match(/trained and aligned/);
    expect(existsSync(path.join(p.toy, 'eval_labels.json'))).to.equal(true);
    using pair = await AlignedPair.load(p.pair);
    expect(pair.image.m).to.equal(DEMO_TRAIN.sae.m / 2);
    expect(pair.image.k).to.equal(DEMO_TRAIN.sae.k);
    await prepareDemoPair(out, (l) => second.push(l));
    expect(second).to.deep.equal([`demo: reusing the toy dataset in ${p.toy}`, `demo: reusing the aligned pair in ${p.pair}`]);
  });
});
