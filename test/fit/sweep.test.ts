/**
 * `fit` sweeps (the paper's Table 2: K; Table 4: BatchTop-K for Top-K) and Figure 2's App. D.1 protocol, on a
 * tiny toy dataset: layout, tables, reuse of every stage, and which protocol the report says it used.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { generateToy, writeToy } from '../../lib/eval/toy.js';
import { readManifest, type FitInputs } from '../../lib/eval/inputs.js';
import { fit, type FitEvent, type FitOptions } from '../../lib/fit/fit.js';
import { fitSettings } from '../../lib/fit/settings.js';
import { readRunConfig } from '../../lib/run/layout.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');

const TINY = { d: 32, objects: 8, imageAttributes: 4, textAttributes: 4, trainPairs: 2000, evalImages: 120, captionsPerImage: 2, zeroShotImages: 60, templates: 2, externalDim: 16, seed: 7 };
const CONFIG = { sae: { m: 48 }, train: { epochs: 2, batchSize: 128, lr: 3e-3 } };

describe('fit sweeps K and the activation (Tables 2 and 4) and trains Figure 2 by App. D.1', function () {
  this.timeout(600_000);
  const { dir, cleanup } = tempDir();
  after(cleanup);
  let inputs: FitInputs;
  before(async () => {
    inputs = await readManifest(await writeToy(path.join(dir, 'toy'), generateToy(TINY)));
  });
  const base = (out: string, extra: Partial<FitOptions> = {}): FitOptions => ({
    out,
    inputs,
    methods: ['shared', 'separate', 'posthoc'],
    seeds: [0],
    config: CONFIG,
    evaluations: ['reconstruction', 'retrieval', 'heterogeneity'],
    ...extra,
  });
  const collect = (events: FitEvent[]) => (e: FitEvent) => e.type !== 'progress' && events.push(e);

  it('a K x activation sweep trains one run per setting, writes the tables section by section, and a rerun (or a sub-sweep) reuses every stage', async () => {
    const out = path.join(dir, 'sweep');
    const events: FitEvent[] = [];
    const sweep = { k: [2, 4], activation: ['topk', 'batchtopk'] as const };
    const r = await fit(base(out, { sweep: { k: sweep.k, activation: [...sweep.activation] }, onEvent: collect(events) }));
    expect(r.settings.map((s) => s.id)).to.deep.equal(['k2-topk', 'k2-batchtopk', 'k4-topk', 'k4-batchtopk']);
    expect(r.settings.map((s) => s.label)).to.deep.equal(['Top-K, K = 2', 'BatchTop-K, K = 2', 'Top-K, K = 4', 'BatchTop-K, K = 4']);
    for (const s of r.settings)
      for (const method of ['shared', 'posthoc']) {
        const cfg = await readRunConfig(path.join(out, 'train', s.id, method, 'seed-0'));
        expect(cfg.sae, `${s.id}/${method}`).to.include({ k: s.k, activation: s.activation, m: 48 });
      }
    // 4 settings x 2 training runs (separate is posthoc's run); no Figure 2 run of its own under 'table1'.
    expect(events.filter((e) => e.type === 'train' && e.status === 'done')).to.have.length(8);
    expect(existsSync(path.join(out, 'train', 'posthoc'))).to.equal(false);
    const mse = (id: string, m: string) => r.settings.find((s) => s.id === id)!.summary.table[m].reconMse.mean;
    for (const m of ['shared', 'posthoc']) {
      for (const id of ['k2-topk', 'k2-batchtopk', 'k4-topk', 'k4-batchtopk']) expect(mse(id, m), `${id} ${m}`).to.be.within(0, 1);
      expect(mse('k4-topk', m), m).to.be.below(mse('k2-topk', m)); // more active latents reconstruct better
    }
    expect(mse('k2-batchtopk', 'posthoc')).to.not.equal(mse('k2-topk', 'posthoc'));
    expect(r.settings.find((s) => s.id === 'k4-topk')!.summary.table.separate.reconMse.mean).to.equal(mse('k4-topk', 'posthoc'));
    const md = readFileSync(path.join(out, 'results.md'), 'utf8');
    expect(md).to.match(/## Tables 2 and 4: effect of the sparsity level K and of the sparsifying activation function/);
    const sections = [...md.matchAll(/^### (.+)$/gm)].map((x) => x[1]);
    expect(sections).to.deep.equal(['Top-K, K = 2', 'BatchTop-K, K = 2', 'Top-K, K = 4', 'BatchTop-K, K = 4']);
    expect(md.match(/^\| \+ Post-hoc Alignment \(Ours\) \|/gm)).to.have.length(4);
    expect(md).to.match(/protocol 'table1': the Table 1 post-hoc run itself \(train\/k2-topk\/posthoc: .*K = 2, 2 epochs/);
    const json = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.settings.map((s: { id: string }) => s.id)).to.deep.equal(r.settings.map((s) => s.id));
    expect(json.settings[3].summary.table.posthoc.reconMse.mean).to.equal(mse('k4-batchtopk', 'posthoc'));
    expect(json.heterogeneity.protocol).to.equal('table1');
    expect(json.heterogeneity.run).to.include({ k: 2, activation: 'topk', epochs: 2, setting: 'k2-topk', latentsPerModality: 24 });
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).to.match(/<h3>BatchTop-K, K = 4<\/h3>/);

    const again: FitEvent[] = [];
    await fit(base(out, { sweep: { k: sweep.k, activation: [...sweep.activation] }, onEvent: collect(again) }));
    expect(again.filter((e) => e.type === 'train' || e.type === 'eval').every((e) => 'status' in e && e.status === 'reused')).to.equal(true);
    // Table 2 alone (Top-K only) is a sub-sweep: the same runs and evaluations, read back; Figure 2 now comes
    // from the first setting's run (K = 4), computed once.
    const sub: FitEvent[] = [];
    const t2 = await fit(base(out, { sweep: { k: [4, 2] }, onEvent: collect(sub) }));
    expect(t2.settings.map((s) => s.id)).to.deep.equal(['k4-topk', 'k2-topk']);
    const notReused = sub.filter((e) => (e.type === 'train' || e.type === 'eval') && e.status !== 'reused');
    expect(notReused.map((e) => (e.type === 'eval' ? `${e.setting}/${e.evaluation}:${e.status}` : 'train'))).to.deep.equal(['k4-topk/heterogeneity:start', 'k4-topk/heterogeneity:done']);
    expect(t2.heterogeneity!.run).to.include({ k: 4, setting: 'k4-topk' });
    expect(readFileSync(path.join(out, 'results.md'), 'utf8')).to.match(/## Table 2: effect of the sparsity level K \(Top-K\)/);
    const t4 = await fit(base(out, { sweep: { k: [2], activation: ['batchtopk', 'topk'] }, evaluations: ['reconstruction'] }));
    expect(t4.settings.map((s) => s.id)).to.deep.equal(['k2-batchtopk', 'k2-topk']);
    expect(readFileSync(path.join(out, 'results.md'), 'utf8')).to.match(/## Table 4: effect of the sparsifying activation function \(K = 2\)/);
    expect(t4.heterogeneity).to.equal(null);
  });

  it("Figure 2 by App. D.1 ('d1'): its own run unless a fit run has its configuration; the report names the protocol", async () => {
    const out = path.join(dir, 'd1');
    // D.1 with K = 2 and the fit's 2 epochs is exactly the K = 2 posthoc run: reused, nothing extra trained.
    const events: FitEvent[] = [];
    const r = await fit(base(out, { sweep: { k: [2, 4] }, heterogeneity: { protocol: 'd1', k: 2, epochs: 2 }, onEvent: collect(events) }));
    expect(r.heterogeneity!.run).to.include({ k: 2, epochs: 2, activation: 'topk', setting: 'k2-topk', sharedWith: 'train/k2-topk/posthoc' });
    expect(events.filter((e) => e.type === 'train' && e.status === 'done')).to.have.length(4);
    expect(existsSync(path.join(out, 'train', 'figure2-d1'))).to.equal(false);
    // Its own run: K = 2 for 3 epochs (the paper's is K = 8 for 30).
    const own: FitEvent[] = [];
    const d = await fit(base(out, { sweep: { k: [2, 4] }, heterogeneity: { protocol: 'd1', k: 2, epochs: 3 }, onEvent: collect(own) }));
    const trained = own.filter((e) => e.type === 'train' && e.status === 'done');
    expect(trained).to.have.length(1);
    expect(trained[0]).to.include({ setting: 'figure2-d1', method: 'posthoc', seed: 0 });
    const cfg = await readRunConfig(path.join(out, 'train', 'figure2-d1', 'posthoc', 'seed-0'));
    expect(cfg.sae).to.include({ k: 2, activation: 'topk', m: 48 });
    expect(cfg.train.epochs).to.equal(3);
    expect(cfg.train.lr).to.equal(CONFIG.train.lr); // every other option is the fit's
    expect(d.heterogeneity!.run).to.include({ setting: 'figure2-d1', sharedWith: null, epochs: 3 });
    const h = d.heterogeneity!.seeds[0];
    expect(h.bins.reduce((a, b) => a + b.pairs, 0)).to.be.greaterThan(0);
    expect(h.correlationRows).to.equal(1900); // the run's training split: 2000 rows less valFraction 0.05
    expect(h.bins).to.not.deep.equal(r.heterogeneity!.seeds[0].bins); // another run, another figure
    const md = readFileSync(path.join(out, 'results.md'), 'utf8');
    expect(md).to.match(/From protocol 'd1' \(the paper's App\. D\.1\): modality-specific SAEs \(24 latents each\), Top-K K = 2, 3 epochs.*\(train\/figure2-d1\)/);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).to.match(/protocol &#39;d1&#39;|protocol 'd1'/);
    expect(JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).heterogeneity.protocol).to.equal('d1');
    // A rerun reuses the D.1 run and its figure; the Table 1 protocol reads the Table 1 run again.
    const again: FitEvent[] = [];
    await fit(base(out, { sweep: { k: [2, 4] }, heterogeneity: { protocol: 'd1', k: 2, epochs: 3 }, onEvent: collect(again) }));
    expect(again.filter((e) => e.type === 'train' || e.type === 'eval').every((e) => 'status' in e && e.status === 'reused')).to.equal(true);
    const t1 = await fit(base(out, { sweep: { k: [2, 4] } }));
    expect(t1.heterogeneity!.protocol).to.equal('table1');
    expect(t1.heterogeneity!.seeds[0]).to.deep.equal(r.heterogeneity!.seeds[0]); // the K = 2 run's figure, read back
  });

  it('bad sweep and protocol options fail before anything is trained', async () => {
    const out = path.join(dir, 'bad');
    await expectSaeRejection(fit(base(out, { sweep: { k: [2, 0] } })), 'ERR_ARG', /K sweep.*0 is not an integer >= 1/);
    await expectSaeRejection(fit(base(out, { sweep: { activation: ['topk', 'relu' as never] } })), 'ERR_ARG', /activation sweep.*relu/);
    await expectSaeRejection(fit(base(out, { sweep: { k: [] } })), 'ERR_ARG', /at least one value/);
    await expectSaeRejection(fit(base(out, { sweep: { k: [2, 30] } })), 'ERR_ARG', /setting Top-K, K = 30 \(--k \/ --activation\): invalid training configuration:\n.*k = 30 is more than the 24 latents each modality SAE.*raise sae.m to at least 60/);
    await expectSaeRejection(fit(base(out, { sweep: { k: [2] }, heterogeneity: { protocol: 'd1', k: 25 } })), 'ERR_ARG', /Figure 2's App\. D\.1 run \(K = 25, 30 epochs.*\): invalid training configuration:\n.*k = 25 is more than the 24 latents/);
    await expectSaeRejection(fit(base(out, { heterogeneity: { protocol: 'd2' as never } })), 'ERR_ARG', /'table1' or 'd1'/);
    await expectSaeRejection(fit(base(out, { heterogeneity: { k: 4 } })), 'ERR_ARG', /need protocol 'd1'/);
    await expectSaeRejection(fit(base(out, { heterogeneity: { protocol: 'd1', epochs: 0 } })), 'ERR_ARG', /epochs/);
    await expectSaeRejection(fit(base(out, { methods: [] })), 'ERR_ARG', /methods is empty/);
    await expectSaeRejection(fit(base(out, { evaluations: [] })), 'ERR_ARG', /evaluations is empty/);
    expect(existsSync(path.join(out, 'train'))).to.equal(false);
    // A K sweep with an m below the default K = 32: the sweep's K is what gets checked against m.
    expect(fitSettings({ sae: { m: 16 } }, { k: [2, 4] }).map((x) => x.k)).to.deep.equal([2, 4]);
    expect(() => fitSettings({ sae: { m: 16 } }, { k: [40] })).to.throw(/k = 40 is more than the 16 latents/);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', entry, 'fit', '--dataset', path.join(dir, 'toy', 'dataset.json'), '--k', '2,4', '--activation', 'topk,relu', '--out', out], { cwd: root, encoding: 'utf8' });
    expect(cli.status).to.equal(2);
    expect(cli.stderr).to.match(/cmsae: ERR_ARG: the activation sweep \(--activation\): relu is not one of topk, batchtopk/);
  });
});
