import { expect } from 'chai';

import { conceptStats, type ConceptStats, type SparseCodes } from '../../lib/index.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { Rng, randomCodes } from '../helpers/random.js';
import { conceptStatsReference } from './reference.js';

/** Same arrays, bit for bit (NaN equals NaN). */
function expectSameStats(a: ConceptStats, b: ConceptStats, what: string): void {
  for (const key of Object.keys(b) as (keyof ConceptStats)[]) {
    const x = a[key], y = b[key];
    if (typeof y === 'number') expect(x, `${what}: ${key}`).to.equal(y);
    else expect(Array.from(x as ArrayLike<number>), `${what}: ${key}`).to.deep.equal(Array.from(y as ArrayLike<number>));
  }
}

async function compare(image: SparseCodes, text: SparseCodes, imageOfText: Int32Array | null, m: number, topN: number, partners: number, what: string): Promise<ConceptStats> {
  const got = await conceptStats({ image, text, imageOfText }, { m, topN, partners });
  const want = conceptStatsReference({ image, text, imageOfText }, { m, topN, partners });
  expectSameStats(got, want, what);
  return got;
}

describe('concept-index kernel against the TypeScript reference', function () {
  this.timeout(60_000);

  it('random codes, paired by row and with an image-of-text map (awkward m, k, N, P)', async () => {
    const rng = new Rng(11);
    for (const [rows, m, k, N, P] of [[50, 33, 5, 4, 3], [200, 64, 8, 12, 5], [7, 9, 3, 20, 9], [300, 130, 6, 1, 1]]) {
      const image = randomCodes(rng, rows, m, k), text = randomCodes(rng, rows, m, k);
      await compare(image, text, null, m, N, P, `paired ${rows}x${m} k=${k}`);
      // Three captions per image, in shuffled order, with a text k differing from the image k.
      const texts = rows * 3;
      const map = Int32Array.from({ length: texts }, () => rng.int(rows));
      await compare(image, randomCodes(rng, texts, m, k + 1), map, m, N, P, `mapped ${rows}->${texts}`);
    }
  });

  it('ties (equal values and equal correlations), dead latents and empty slots', async () => {
    const rng = new Rng(5);
    const rows = 120, m = 40, k = 4;
    // Values from {0, 1, 2}: many exact ties, zero slots are empty; latents >= 30 never appear (dead).
    const image = randomCodes(rng, rows, 30, k, (r) => r.int(3)), text = randomCodes(rng, rows, 30, k, (r) => r.int(3));
    const s = await compare(image, text, null, m, 6, 4, 'ties');
    for (let i = 30; i < m; i++) {
      expect(s.fireImage[i]).to.equal(0);
      expect(Number.isNaN(s.matched[i])).to.equal(true);
      expect(s.imagePartners[i * 4]).to.equal(-1);
      expect(s.topImageRows[i * 6]).to.equal(-1);
    }
    // Ties among top rows are broken by ascending row: two equal maxima come out in row order.
    for (let i = 0; i < 30; i++)
      for (let p = 1; p < 6 && s.topImageRows[i * 6 + p] >= 0; p++)
        if (s.topImageValues[i * 6 + p] === s.topImageValues[i * 6 + p - 1]) expect(s.topImageRows[i * 6 + p]).to.be.above(s.topImageRows[i * 6 + p - 1]);
    // Identical columns tie exactly: text latents 0 and 1 always fire together with the same value.
    const t2 = { ...text, indices: text.indices.slice(), values: text.values.slice() };
    for (let r = 0; r < rows; r++) {
      t2.indices[r * k] = 0, t2.indices[r * k + 1] = 1;
      t2.values[r * k] = t2.values[r * k + 1] = 1 + (r % 3);
      for (let sl = 2; sl < k; sl++) if (t2.indices[r * k + sl] <= 1) t2.values[r * k + sl] = 0;
    }
    const s2 = await compare(image, t2, null, m, 3, 2, 'tied partners');
    for (let i = 0; i < 30; i++) {
      const at = s2.imagePartners.subarray(i * 2, i * 2 + 2);
      if (at[0] === 1) throw new Error(`image latent ${i}: partner 1 listed before its exact tie 0`);
    }
  });

  it('N > rows, rows = 1, k = m, a latent that fires in every row with one value (zero variance)', async () => {
    const rng = new Rng(9);
    await compare(randomCodes(rng, 3, 10, 2), randomCodes(rng, 3, 10, 2), null, 10, 50, 20, 'N > rows');
    const one = await compare(randomCodes(rng, 1, 6, 3), randomCodes(rng, 1, 6, 3), null, 6, 4, 3, 'rows = 1');
    expect(Array.from(one.matched).every(Number.isNaN), 'one pair has no variance').to.equal(true);
    await compare(randomCodes(rng, 20, 8, 8), randomCodes(rng, 20, 8, 8), null, 8, 5, 8, 'k = m');
    const constant = randomCodes(rng, 30, 12, 3);
    for (let r = 0; r < 30; r++) (constant.indices[r * 3] = 0), (constant.values[r * 3] = 1.5);
    for (let r = 0; r < 30; r++) for (let s = 1; s < 3; s++) if (constant.indices[r * 3 + s] === 0) constant.indices[r * 3 + s] = 11;
    const c = await compare(constant, randomCodes(rng, 30, 12, 3), null, 12, 5, 3, 'constant latent');
    expect(Number.isNaN(c.matched[0])).to.equal(true);
  });

  it('refuses bad codes with typed errors (and the reference agrees on each)', async () => {
    const rng = new Rng(1);
    const good = () => randomCodes(rng, 10, 8, 2);
    const cases: [string, () => [SparseCodes, SparseCodes, Int32Array | null], string][] = [
      ['index out of range', () => { const c = good(); c.indices[3] = 8; return [c, good(), null]; }, 'ERR_RANGE'],
      ['negative index', () => { const c = good(); c.indices[0] = -1; return [good(), c, null]; }, 'ERR_RANGE'],
      ['NaN value', () => { const c = good(); c.values[5] = NaN; return [c, good(), null]; }, 'ERR_NONFINITE'],
      ['a latent twice in a row', () => { const c = good(); c.indices[1] = c.indices[0]; return [c, good(), null]; }, 'ERR_ARG'],
      ['rows differ without a map', () => [good(), randomCodes(rng, 11, 8, 2), null], 'ERR_SHAPE'],
      ['map outside the images', () => [good(), good(), Int32Array.from({ length: 10 }, (_, t) => (t === 4 ? 10 : t))], 'ERR_RANGE'],
      ['map of the wrong length', () => [good(), good(), new Int32Array(9)], 'ERR_SHAPE'],
    ];
    for (const [what, make, code] of cases) {
      const [image, text, map] = make();
      await expectSaeRejection(conceptStats({ image, text, imageOfText: map }, { m: 8, topN: 3, partners: 2 }), code);
      if (code !== 'ERR_SHAPE' || what !== 'map of the wrong length') {
        let refCode = '';
        try {
          conceptStatsReference({ image, text, imageOfText: map }, { m: 8, topN: 3, partners: 2 });
        } catch (e) {
          refCode = (e as { code: string }).code;
        }
        expect(refCode, what).to.equal(code);
      }
    }
    const c = good();
    await expectSaeRejection(conceptStats({ image: c, text: c, imageOfText: null }, { m: 8, topN: 0, partners: 2 }), 'ERR_ARG');
    await expectSaeRejection(conceptStats({ image: { ...c, values: new Float64Array(20) as unknown as Float32Array }, text: c, imageOfText: null }, { m: 8, topN: 2, partners: 2 }), 'ERR_ARG');
    await expectSaeRejection(conceptStats({ image: { ...c, rows: 11 }, text: c, imageOfText: null }, { m: 8, topN: 2, partners: 2 }), 'ERR_SHAPE');
  });
});
