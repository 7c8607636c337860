/**
 * The run-directory layout and its one row rule: `cmsae align` (and every reader of a run) correlates exactly
 * the rows training trained on, for a seeded split and for separate validation files. The expected rows are
 * computed here from first principles (splitRows / all rows), not with trainingRows, and the training rows
 * are observed through what training wrote: the centring means of normalization.json (center+l2) and the
 * row count of its own alignment.
 */
import { expect } from 'chai';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, CorrelationAccumulator, PairedEmbeddings, TopKSAE, Trainer, alignLatents, type TrainConfigInput } from '../../lib/index.js';
import { readBatch, splitRows } from '../../lib/data/paired.js';
import { main } from '../../lib/cli/main.js';
import { alignmentRows, readRunConfig, readRunNormalizer, runOfModelDir, runPaths, trainingRows } from '../../lib/run/layout.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { writePlanted, type PlantedData } from '../helpers/paired-data.js';
import { tempDir } from '../helpers/tmp.js';

/** Runs the cmsae CLI in this process (its stdout captured). */
async function cmsae(args: string[]): Promise<{ code: number; stdout: string }> {
  const write = process.stdout.write.bind(process.stdout);
  let stdout = '';
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
  try {
    return { code: await main(args), stdout };
  } finally {
    process.stdout.write = write;
  }
}

/** Mean of the given rows of a [n, d] file, float64. */
function meanOf(file: string, rows: ArrayLike<number>, d: number): Float64Array {
  const buf = readFileSync(file);
  const header = buf.readUInt16LE(8) + 10;
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset + header, buf.byteOffset + buf.length));
  const mu = new Float64Array(d);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < d; j++) mu[j] += x[rows[i] * d + j] / rows.length;
  return mu;
}

/** The alignment of the run's final SAEs over exactly `rows`, computed without the library's row rule. */
async function expectedAlignment(runDir: string, p: PlantedData, rows: Int32Array) {
  using image = await TopKSAE.load(runPaths(runDir).final('image'));
  using text = await TopKSAE.load(runPaths(runDir).final('text'));
  const norm = await readRunNormalizer(runDir);
  using data = PairedEmbeddings.open(p.imagePath, p.textPath);
  using acc = new CorrelationAccumulator(image.m, text.m);
  acc.add(image.encode(readBatch(data, 'image', rows, norm)), text.encode(readBatch(data, 'text', rows, norm)));
  const r = acc.result({ minFires: 1 });
  return { n: r.n, perm: alignLatents(r, { signed: true }), aliveImage: r.aliveA, aliveText: r.aliveB };
}

function expectSamePair(a: AlignedPair, b: AlignedPair | { n: number; perm: Int32Array; aliveImage: Uint8Array; aliveText: Uint8Array }, what: string) {
  const sb = 'stats' in b ? b.stats : b;
  expect(a.stats.n, what).to.equal(sb.n);
  expect(Array.from(a.perm), what).to.deep.equal(Array.from(b.perm));
  expect(Array.from(a.stats.aliveImage), what).to.deep.equal(Array.from(sb.aliveImage));
  expect(Array.from(a.stats.aliveText), what).to.deep.equal(Array.from(sb.aliveText));
  if ('stats' in b) expect(Array.from(a.stats.matchedCorrelation), what).to.deep.equal(Array.from(b.stats.matchedCorrelation));
}

describe('run layout: one row rule for training, alignment and every reader of a run', function () {
  this.timeout(120_000);
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const n = 1200, d = 16;
  let p: PlantedData;
  let valImage: string, valText: string;
  before(async () => {
    p = await writePlanted(dir, { n, d, C: 10, active: 2, seed: 11 });
    mkdirSync(path.join(dir, 'val'));
    const v = await writePlanted(path.join(dir, 'val'), { n: 200, d, C: 10, active: 2, seed: 12 });
    valImage = v.imagePath;
    valText = v.textPath;
  });

  const config = (data: Partial<TrainConfigInput['data']>): TrainConfigInput => ({
    method: 'posthoc',
    data: { image: { path: p.imagePath }, text: { path: p.textPath }, normalization: 'center+l2', valFraction: 0.2, ...data },
    sae: { m: 32, k: 2 },
    train: { epochs: 1, batchSize: 100, lr: 3e-3, seed: 3 },
  });

  const cases = [
    { name: 'a seeded split (valFraction 0.2)', data: {}, expected: () => splitRows(n, 0.2, 3).train },
    { name: 'separate validation files', data: () => ({ valImage: { path: valImage }, valText: { path: valText } }), expected: () => Int32Array.from({ length: n }, (_, i) => i) },
  ];
  for (const c of cases)
    it(`cmsae align uses exactly the rows training used: ${c.name}`, async () => {
      const run = path.join(dir, `run-${c.name.replace(/\W+/g, '-')}`);
      const t = new Trainer(config(typeof c.data === 'function' ? c.data() : c.data), { out: run });
      let scanned = -1;
      t.on('scan', (e: { rows: number }) => (scanned = e.rows));
      await t.run();
      const expected = c.expected();
      expect(expected.length).to.equal(c.name.startsWith('a seeded') ? 960 : n);
      // What training saw: its scan and its centring means (normalization.json) are over exactly these rows.
      expect(scanned).to.equal(expected.length);
      const norm = JSON.parse(readFileSync(runPaths(run).normalization, 'utf8')) as { mean: Record<string, number[]> };
      const mu = meanOf(p.imagePath, expected, d);
      norm.mean.image.forEach((v, j) => expect(v).to.be.closeTo(mu[j], 1e-5));
      const wrong = meanOf(p.imagePath, c.name.startsWith('a seeded') ? Int32Array.from({ length: n }, (_, i) => i) : splitRows(n, 0.2, 3).train, d);
      expect(norm.mean.image.some((v, j) => Math.abs(v - wrong[j]) > 1e-4)).to.equal(true); // the check can tell them apart
      // The layout's rule gives the same rows.
      const cfg = await readRunConfig(run);
      expect(Array.from(trainingRows(cfg, n))).to.deep.equal(Array.from(expected));
      expect(Array.from(alignmentRows(cfg, n))).to.deep.equal(Array.from(expected));
      expect(Array.from(alignmentRows(cfg, n, 300))).to.deep.equal(Array.from(expected.subarray(0, 300)));
      // cmsae align re-aligns over the same rows: identical to training's own alignment and to one computed here.
      const out = path.join(dir, `realigned-${c.name.replace(/\W+/g, '-')}`);
      const a = await cmsae(['align', '--run', run, '--out', out]);
      expect(a.code).to.equal(0);
      expect(a.stdout).to.match(new RegExp(`on ${expected.length} pairs`));
      using realigned = await AlignedPair.load(out);
      using trained = await AlignedPair.load(runPaths(run).final('pair'));
      expectSamePair(realigned, trained, 'cmsae align vs training');
      expectSamePair(realigned, await expectedAlignment(run, p, expected), 'cmsae align vs the expected rows');
      // --samples takes the first rows of the same training rows, in file order.
      const out300 = `${out}-300`;
      expect((await cmsae(['align', '--run', run, '--samples', '300', '--out', out300])).code).to.equal(0);
      using first300 = await AlignedPair.load(out300);
      expectSamePair(first300, await expectedAlignment(run, p, expected.slice(0, 300)), '--samples 300');
    });

  it('runPaths and runOfModelDir name the layout; a half-given validation pair is refused before anything runs', async () => {
    const pth = runPaths('/r');
    expect([pth.config, pth.normalization, pth.metrics, pth.checkpointState, pth.final('pair'), pth.checkpointModel('image')]).to.deep.equal([
      '/r/config.json',
      '/r/normalization.json',
      '/r/metrics.jsonl',
      '/r/checkpoint/state.json',
      '/r/final/pair',
      '/r/checkpoint/image',
    ]);
    const run = path.join(dir, 'run-a-seeded-split-valFraction-0-2-');
    expect(runOfModelDir(runPaths(run).final('image'))).to.equal(path.resolve(run));
    expect(runOfModelDir(path.join(dir, 'nowhere', 'final', 'image'))).to.equal(null);
    await expectSaeRejection(
      (async () => new Trainer(config({ valImage: { path: valImage } }), { out: path.join(dir, 'half') }))(),
      'ERR_ARG',
      /data\.valText: data\.valImage is given without it: give both validation files/,
    );
  });
});
