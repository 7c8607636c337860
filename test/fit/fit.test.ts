/** The toy dataset and `fit` end to end: every method, every evaluation, reuse, bad inputs; the CLI on top. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { generateToy, writeToy } from '../../lib/eval/toy.js';
import { readManifest } from '../../lib/eval/inputs.js';
import { loadEvalLabels, textConcepts } from '../../lib/eval/labels.js';
import { fit, type FitEvent } from '../../lib/fit/fit.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');
const cmsae = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_THREADS: '2' } });

const SMALL = { d: 48, objects: 12, imageAttributes: 6, textAttributes: 6, trainPairs: 4000, evalImages: 240, captionsPerImage: 2, zeroShotImages: 240, templates: 3, externalDim: 24, seed: 3 };
const CONFIG = { sae: { m: 96, k: 4 }, train: { epochs: 4, batchSize: 128, lr: 2e-3 } };

describe('toy VLM-like dataset', () => {
  it('is deterministic by seed, plants cos(phi, psi) = alpha, and its captions name exactly the labeled concepts', async () => {
    const a = generateToy({ ...SMALL, alpha: 0.4 }), b = generateToy({ ...SMALL, alpha: 0.4 });
    expect(a.train.image.data).to.deep.equal(b.train.image.data);
    expect(a.eval.text.rows).to.equal(SMALL.evalImages * SMALL.captionsPerImage);
    expect(a.zeroShot.prompts.rows).to.equal(SMALL.objects * SMALL.templates);
    for (let c = 0; c < SMALL.objects; c++) {
      let dot = 0;
      for (let j = 0; j < SMALL.d; j++) dot += a.phi.data[c * SMALL.d + j] * a.psi.data[c * SMALL.d + j];
      expect(dot).to.be.closeTo(0.4, 1e-4);
    }
    const c = generateToy({ ...SMALL, seed: 4 });
    expect(c.train.image.data).to.not.deep.equal(a.train.image.data);
    const { dir, cleanup } = tempDir();
    try {
      const manifest = await writeToy(path.join(dir, 'toy'), a);
      const m = await readManifest(manifest);
      const l = await loadEvalLabels(m.eval!.labels!);
      // Matching concept names in the caption strings gives the "text" labels back.
      const fromCaptions = textConcepts({ ...l, text: null })!;
      expect(fromCaptions.map((s) => Array.from(s))).to.deep.equal(l.text!.map((s) => Array.from(s)));
    } finally {
      cleanup();
    }
  });
});

describe('fit end to end on the toy dataset', function () {
  this.timeout(600_000);
  const { dir, cleanup } = tempDir();
  after(cleanup);
  let manifest: string;
  before(async () => {
    manifest = await writeToy(path.join(dir, 'toy'), generateToy(SMALL));
  });

  it('trains all five methods, evaluates everything, writes results.json / results.md / figures / report.html; a rerun reuses it all', async () => {
    const out = path.join(dir, 'fit');
    const events: FitEvent[] = [];
    const r = await fit({ out, inputs: await readManifest(manifest), seeds: [0], config: CONFIG, steering: { sources: 30, minOffImages: 20 }, onEvent: (e) => e.type !== 'progress' && events.push(e) });
    for (const f of ['results.json', 'results.md', 'report.html', 'figures/figure7-steering.png', 'figures/figure8-monosemanticity.svg', 'figures/figure2-heterogeneity.svg']) expect(existsSync(path.join(out, f)), f).to.equal(true);
    const t = r.summary.table;
    // The paper's qualitative result on planted heterogeneity (alpha = 0.5): unaligned separate SAEs cannot
    // retrieve across modalities; post-hoc alignment restores it and beats the shared SAE.
    expect(t.separate.i2t.r10.mean).to.be.below(0.2);
    expect(t.posthoc.i2t.r10.mean).to.be.greaterThan(t.separate.i2t.r10.mean + 0.3);
    expect(t.posthoc.t2i.r10.mean).to.be.greaterThan(t.separate.t2i.r10.mean + 0.3);
    expect(t.posthoc.zsAccuracy.mean).to.be.greaterThan(t.separate.zsAccuracy.mean);
    // posthoc and separate are one training run: identical reconstruction.
    expect(t.posthoc.reconMse.mean).to.equal(t.separate.reconMse.mean);
    for (const m of ['shared', 'shared+iso', 'shared+group', 'separate', 'posthoc']) {
      expect(t[m].reconMse.mean, m).to.be.within(0, 1);
      expect(r.results[m][0].monosemanticity!.image.latents, m).to.be.greaterThan(0);
      expect(r.results[m][0].steering!.perAlpha).to.have.length(6);
    }
    // Steering through the aligned index works better than through unaligned indices.
    const at = (m: string) => r.summary.steering[m].find((p) => p.alpha === 1)!.mapImg.mean;
    expect(at('posthoc')).to.be.greaterThan(at('separate'));
    const h = r.heterogeneity!.seeds[0];
    expect(h.bins.reduce((a, b) => a + b.pairs, 0)).to.be.greaterThan(0);
    // Figure 2 says where it came from: by default the Table 1 posthoc run, not App. D.1's.
    expect(r.heterogeneity!.protocol).to.equal('table1');
    expect(r.heterogeneity!.run).to.include({ k: 4, epochs: 4, setting: '', sharedWith: 'train/posthoc' });
    expect(readFileSync(path.join(out, 'results.md'), 'utf8')).to.match(/## Table 1 \(Top-K, K = 4\)[\s\S]*From protocol 'table1': the Table 1 post-hoc run itself \(train\/posthoc: .*K = 4, 4 epochs.*not the paper's App\. D\.1 run/);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).to.match(/Figure 2: cross-modal feature heterogeneity<\/h2><p>From protocol &#39;table1&#39;|From protocol 'table1'/);
    // Steering flags concepts whose slots are dead, and the summary counts them per method.
    for (const m of ['shared', 'posthoc', 'separate']) {
      const st = r.results[m][0].steering!;
      const dead = new Set(st.perConcept.filter((c) => !c.imageSlotAlive).map((c) => c.concept));
      expect([...dead].sort(), m).to.deep.equal([...st.concepts.deadImageSlot].sort());
      expect(r.summary.steeringSlots[m].deadImageSlot.mean, m).to.equal(dead.size);
      expect(r.summary.steeringSlots[m].evaluated.mean, m).to.equal(st.concepts.evaluated);
    }
    expect(r.results.posthoc[0].steering!.perConcept.every((c) => c.imageSlotAliveTrain !== null)).to.equal(true); // the pair's alive masks
    expect(r.results.separate[0].steering!.perConcept.every((c) => c.imageSlotAliveTrain === null)).to.equal(true);
    expect(readFileSync(path.join(out, 'eval', 'posthoc', 'seed-0', 'steering.csv'), 'utf8').split('\n')[0]).to.match(/,image_slot_alive,text_slot_alive,/);
    const json = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.settings[0].summary.table.posthoc.i2t.r1.n).to.equal(1);
    expect(readFileSync(path.join(out, 'results.md'), 'utf8')).to.match(/\+ Post-hoc Alignment \(Ours\)/);
    expect(existsSync(path.join(out, 'eval', 'posthoc', 'seed-0', 'steering.csv'))).to.equal(true);
    expect(events.filter((e) => e.type === 'train' && e.status === 'done')).to.have.length(4); // separate shares posthoc's run

    const again: FitEvent[] = [];
    const r2 = await fit({ out, inputs: await readManifest(manifest), seeds: [0], config: CONFIG, steering: { sources: 30, minOffImages: 20 }, onEvent: (e) => e.type !== 'progress' && again.push(e) });
    expect(again.filter((e) => e.type === 'train').every((e) => e.type === 'train' && e.status === 'reused')).to.equal(true);
    expect(again.filter((e) => e.type === 'eval').every((e) => e.type === 'eval' && e.status === 'reused')).to.equal(true);
    expect(r2.summary.table.posthoc.i2t.r1.mean).to.equal(t.posthoc.i2t.r1.mean);
    // A changed evaluation option recomputes only that evaluation.
    const third: FitEvent[] = [];
    await fit({ out, inputs: await readManifest(manifest), methods: ['posthoc'], seeds: [0], config: CONFIG, steering: { sources: 10, minOffImages: 20 }, onEvent: (e) => e.type !== 'progress' && third.push(e) });
    const recomputed = third.filter((e) => e.type === 'eval' && e.status === 'done').map((e) => (e as { evaluation: string }).evaluation);
    expect(recomputed).to.deep.equal(['steering']);
    // Touching an input file recomputes exactly the evaluations that read it.
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(dir, 'toy', 'zeroshot_images.npy'), later, later);
    const fourth: FitEvent[] = [];
    await fit({ out, inputs: await readManifest(manifest), methods: ['posthoc'], seeds: [0], config: CONFIG, steering: { sources: 10, minOffImages: 20 }, onEvent: (e) => e.type !== 'progress' && fourth.push(e) });
    expect(fourth.filter((e) => e.type === 'eval' && e.status === 'done').map((e) => (e as { evaluation: string }).evaluation)).to.deep.equal(['reconstruction', 'zeroshot']);
    // Other training data (same path, new mtime) is never silently reused.
    utimesSync(path.join(dir, 'toy', 'train_text.npy'), later, later);
    await expectSaeRejection(fit({ out, inputs: await readManifest(manifest), methods: ['posthoc'], seeds: [0], config: CONFIG }), 'ERR_STATE', /other training data/);
    // A different training configuration in the same directory is refused unless forced.
    await expectSaeRejection(fit({ out, inputs: await readManifest(manifest), methods: ['shared'], seeds: [0], config: { ...CONFIG, sae: { m: 64, k: 4 } } }), 'ERR_STATE', /different configuration/);
  });

  it('bad inputs fail before training with typed errors', async () => {
    const inputs = await readManifest(manifest);
    const labels = path.join(dir, 'labels-short.json');
    writeFileSync(labels, JSON.stringify({ imageOfText: [0, 1, 2] }));
    await expectSaeRejection(fit({ out: path.join(dir, 'bad1'), inputs: { ...inputs, eval: { ...inputs.eval!, labels: [labels] } }, config: CONFIG }), 'ERR_SHAPE', /one entry per caption/);
    const zl = path.join(dir, 'zs-labels.json');
    writeFileSync(zl, JSON.stringify({ labels: [0, 1] }));
    await expectSaeRejection(fit({ out: path.join(dir, 'bad2'), inputs: { ...inputs, zeroShot: { ...inputs.zeroShot!, labels: zl } }, config: CONFIG }), 'ERR_SHAPE', /labels for/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad3'), inputs: { ...inputs, zeroShot: { ...inputs.zeroShot!, templates: 7 } }, config: CONFIG }), 'ERR_ARG', /says 3 templates/);
    const zl2 = path.join(dir, 'zs-labels-plain.json');
    writeFileSync(zl2, JSON.stringify(Array.from({ length: SMALL.zeroShotImages }, () => 0)));
    await expectSaeRejection(fit({ out: path.join(dir, 'bad3b'), inputs: { ...inputs, zeroShot: { ...inputs.zeroShot!, labels: zl2, templates: 7 } }, config: CONFIG }), 'ERR_SHAPE', /multiple of 7/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad3c'), inputs: { ...inputs, zeroShot: { ...inputs.zeroShot!, prompts: path.join(dir, 'toy', 'eval_image_external.npy') } }, config: CONFIG }), 'ERR_SHAPE', /columns/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad4'), inputs, methods: ['nope' as never], config: CONFIG }), 'ERR_ARG', /unknown method/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad5'), inputs, config: { sae: { k: 0 } } }), 'ERR_ARG', /sae.k/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad6'), inputs, config: CONFIG, steering: { sources: 0 } }), 'ERR_ARG', /sources/);
    await expectSaeRejection(fit({ out: path.join(dir, 'bad7'), inputs, config: CONFIG, zeroShot: { maxFireRate: 2 } }), 'ERR_ARG', /maxFireRate/);
    expect(existsSync(path.join(dir, 'bad1', 'train'))).to.equal(false);
  });

  it('cmsae toy + cmsae fit + cmsae eval from the command line', () => {
    const toy = path.join(dir, 'cli-toy');
    const t = cmsae(['toy', '--out', toy, '--d', '32', '--objects', '8', '--train-pairs', '2000', '--eval-images', '120', '--zero-shot-images', '100', '--seed', '5']);
    expect(t.status, t.stderr).to.equal(0);
    const out = path.join(dir, 'cli-fit');
    const f = cmsae(['fit', '--dataset', path.join(toy, 'dataset.json'), '--methods', 'shared,posthoc', '--m', '64', '--k', '4', '--epochs', '2', '--batch-size', '128', '--steering-sources', '20', '--steering-dead-slots', 'skip', '--heterogeneity-protocol', 'd1', '--heterogeneity-epochs', '3', '--quiet', '--out', out]);
    expect(f.status, f.stderr).to.equal(0);
    expect(f.stdout).to.match(/## Table 1 \(Top-K, K = 4\)/);
    expect(f.stdout).to.match(/\| Shared SAE \|/);
    expect(f.stdout).to.match(/Figure 2 from protocol 'd1' \(the paper's App\. D\.1\): .*K = 8, 3 epochs.*\(train\/figure2-d1\)/); // K 8 by default
    expect(existsSync(path.join(out, 'train', 'figure2-d1', 'posthoc', 'seed-0', 'final', 'pair', 'alignment.json'))).to.equal(true);
    const steering = JSON.parse(readFileSync(path.join(out, 'eval', 'posthoc', 'seed-0', 'steering.json'), 'utf8')).result;
    expect(steering.deadSlots).to.equal('skip');
    expect(steering.concepts.deadImageSlot).to.deep.equal([]);
    expect(f.stdout).to.match(/report\.html/);
    const run = path.join(out, 'train', 'posthoc', 'seed-0');
    const e = cmsae(['eval', 'retrieval', '--model', run, '--image', path.join(toy, 'eval_image.npy'), '--text', path.join(toy, 'eval_text.npy'), '--labels', path.join(toy, 'eval_labels.json')]);
    expect(e.status, e.stderr).to.equal(0);
    const fromFit = JSON.parse(readFileSync(path.join(out, 'eval', 'posthoc', 'seed-0', 'retrieval.json'), 'utf8')).result;
    expect(JSON.parse(e.stdout).imageToText).to.deep.equal(fromFit.imageToText);
    const h = cmsae(['eval', 'heterogeneity', '--run', run]);
    expect(h.status, h.stderr).to.equal(0);
    expect(JSON.parse(h.stdout).bins).to.have.length(5);
    // Bad usage and bad input: exit 2 and 1 with a one-line typed message.
    const u = cmsae(['fit', '--out', out]);
    expect(u.status).to.equal(2);
    expect(u.stderr).to.match(/ERR_ARG: fit needs training embeddings/);
    const z = cmsae(['eval', 'zeroshot', '--model', run, '--prompts', path.join(toy, 'eval_image.npy'), '--templates', '7', '--images', path.join(toy, 'zeroshot_images.npy'), '--labels', path.join(toy, 'zeroshot_labels.json')]);
    expect(z.status).to.equal(2); // ERR_ARG is a usage error
    expect(z.stderr).to.match(/cmsae: ERR_ARG: .*says 4 templates/); // the toy's labels file says 4
    const z2 = cmsae(['eval', 'zeroshot', '--model', run, '--prompts', path.join(toy, 'eval_image.npy'), '--images', path.join(toy, 'zeroshot_images.npy'), '--labels', path.join(toy, 'zeroshot_labels.json')]);
    expect(z2.status).to.equal(1);
    expect(z2.stderr).to.match(/cmsae: ERR_SHAPE/);
    const t2 = cmsae(['toy', '--out', path.join(dir, 'bad-toy'), '--eval-images', '2.5']);
    expect(t2.status).to.equal(2);
    expect(t2.stderr).to.match(/evalImages must be an integer/);
  });
});
