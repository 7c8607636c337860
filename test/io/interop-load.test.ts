import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE, loadCheckpoint, type Matrix } from '../../lib/index.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { dense, exactValues, expectClose, l2Rows, rowNorms } from '../helpers/interop.js';
import { Rng } from '../helpers/random.js';
import { saelensCfg, saelensForward, saelensLoadV5, saelensLoadV6, writeSaelens, type Version } from '../helpers/saelens-reference.js';
import { sparsifyCfg, sparsifyForward, sparsifyLoad, writeSparsify } from '../helpers/sparsify-reference.js';
import type { PlainDtype } from '../helpers/st-plain.js';
import { tempDir } from '../helpers/tmp.js';

const d = 12, m = 40, k = 4, n = 17;

/** Random weights exact in every dtype; b_enc mostly negative so that the last row (x = b_dec) has fewer than k positive pre-activations. */
function weights(seed: number) {
  const r = new Rng(seed);
  const b_enc = exactValues(r, m, 7).map((v, j) => (j === 5 ? 0.25 : -Math.abs(v) - 1 / 64));
  return { W_enc: exactValues(r, d * m), b_enc, W_dec: exactValues(r, m * d, 5), b_dec: exactValues(r, d, 7) };
}

function inputs(seed: number, b_dec: Float32Array): Matrix {
  const x = new Rng(seed).normals(n * d);
  x.set(b_dec, (n - 1) * d);
  return { rows: n, cols: d, data: x };
}

async function ours(dir: string, x: Matrix) {
  const c = await loadCheckpoint(dir);
  try {
    const codes = c.sae.encode(x);
    return { c, acts: dense(codes, c.sae.m), recon: c.sae.decode(codes).data };
  } finally {
    c.sae.dispose();
  }
}

describe('checkpoints written by other libraries', () => {
  const { dir: root, cleanup } = tempDir();
  after(cleanup);
  let serial = 0;
  const fresh = (name: string) => path.join(root, `${name}-${serial++}`);

  const cases: { version: Version; dtype: 'F32' | 'F16' | 'BF16' }[] = [
    { version: 6, dtype: 'F32' },
    { version: 5, dtype: 'BF16' },
    { version: 4, dtype: 'F16' },
  ];
  for (const { version, dtype } of cases)
    it(`SAELens ${version}.x Top-K (${dtype}) encodes and decodes as SAELens ${version}.x does`, async () => {
      const w = weights(version);
      const dir = fresh(`saelens${version}`);
      writeSaelens(dir, saelensCfg(version, { arch: 'topk', d, m, k, dtype }), w, dtype);
      const x = inputs(version + 10, w.b_dec);
      const { c, acts, recon } = await ours(dir, x);
      expect(c.format).to.equal('saelens');
      expect(c.normalization).to.deep.equal({ kind: 'none' });
      const refs = version === 6 ? [saelensLoadV6(dir)] : [saelensLoadV5(dir), saelensLoadV6(dir)]; // 6.x reads old configs through handle_pre_6_0_config
      for (const ref of refs) {
        expect(ref.k).to.equal(k);
        const want = saelensForward(ref, x.data, n);
        expectClose(acts, want.acts, 'codes', { pattern: true });
        expectClose(recon, want.recon, 'reconstruction');
      }
      // the crafted last row has one positive pre-activation: TopK-then-ReLU and ReLU-then-TopK agree on it
      expect(acts.subarray((n - 1) * m).filter((v) => v !== 0)).to.have.length(1);
    });

  it('SAELens 6.x rescale_acts_by_decoder_norm with non-unit decoder rows is folded exactly', async () => {
    const w = weights(21);
    const dir = fresh('rescale');
    writeSaelens(dir, saelensCfg(6, { arch: 'topk', d, m, k, dtype: 'F32' }), w, 'F32'); // 6.x writes rescale_acts_by_decoder_norm: true
    const x = inputs(22, w.b_dec);
    const { acts, recon } = await ours(dir, x);
    const want = saelensForward(saelensLoadV6(dir), x.data, n);
    expect(saelensLoadV6(dir).rescale).to.equal(true);
    expectClose(acts, want.acts, 'codes', { pattern: true });
    expectClose(recon, want.recon, 'reconstruction');
  });

  it('5.x configs with activation_fn instead of activation_fn_str, and apply_b_dec_to_input false, load as SAELens runs them', async () => {
    const w = weights(31);
    const cfg = saelensCfg(5, { arch: 'topk', d, m, k, dtype: 'F32', extra: { apply_b_dec_to_input: false } });
    cfg.activation_fn = cfg.activation_fn_str;
    delete cfg.activation_fn_str;
    const dir = fresh('actfn');
    writeSaelens(dir, cfg, w, 'F32');
    const x = inputs(32, w.b_dec);
    const { acts, recon } = await ours(dir, x);
    const ref = saelensLoadV5(dir);
    expect(ref.applyBDec).to.equal(false);
    const want = saelensForward(ref, x.data, n);
    expectClose(acts, want.acts, 'codes', { pattern: true });
    expectClose(recon, want.recon, 'reconstruction');
  });

  it('finetuning_scaling_factor with a scaling_factor tensor is applied as SAELens 5.x decodes ((z * s) W_dec + b_dec)', async () => {
    const w = weights(41);
    const s = Float32Array.from({ length: m }, (_, j) => 2.25 + (j % 5) / 8);
    const dir = fresh('finetune');
    writeSaelens(dir, saelensCfg(5, { arch: 'topk', d, m, k, dtype: 'F32', extra: { finetuning_scaling_factor: true } }), w, 'F32', { scaling_factor: { shape: [m], values: s } });
    const x = inputs(42, w.b_dec);
    const { acts, recon } = await ours(dir, x);
    const ref = saelensLoadV5(dir);
    expect(ref.finetuningScale).to.not.equal(undefined);
    const want = saelensForward(ref, x.data, n);
    expectClose(acts, want.acts, 'codes', { pattern: true });
    expectClose(recon, want.recon, 'reconstruction');
    // dropping the factor (the old misread) would be far off
    const without = saelensForward({ ...ref, finetuningScale: undefined }, x.data, n);
    expect(Math.abs(recon[0] - without.recon[0]) + Math.abs(recon[1] - without.recon[1])).to.be.greaterThan(1e-3);
    // a factor without the flag is refused (as SAELens does); an all-ones factor is dropped
    const noFlag = fresh('finetune-noflag');
    writeSaelens(noFlag, saelensCfg(5, { arch: 'topk', d, m, k, dtype: 'F32' }), w, 'F32', { scaling_factor: { shape: [m], values: s } });
    await expectSaeRejection(TopKSAE.load(noFlag), 'ERR_FORMAT', /scaling_factor.*finetuning_scaling_factor is false/);
    const ones = fresh('finetune-ones');
    writeSaelens(ones, saelensCfg(5, { arch: 'topk', d, m, k, dtype: 'F32' }), w, 'F32', { scaling_factor: { shape: [m], values: new Float32Array(m).fill(1) } });
    const o = await ours(ones, x);
    expectClose(o.recon, saelensForward(saelensLoadV5(ones), x.data, n).recon, 'reconstruction (ones)');
  });

  it("constant_norm_rescale: loadCheckpoint gives the same codes on l2-normalized rows, x_hat = ||x|| * our decode; TopKSAE.load refuses", async () => {
    const w = weights(51);
    const dir = fresh('cnr');
    writeSaelens(dir, saelensCfg(6, { arch: 'topk', d, m, k, dtype: 'F32', extra: { normalize_activations: 'constant_norm_rescale', rescale_acts_by_decoder_norm: false } }), w, 'F32');
    const x = inputs(52, w.b_dec);
    const c = await loadCheckpoint(dir);
    expect(c.normalization).to.deep.equal({ kind: 'l2' });
    const u = l2Rows(x.data, n, d);
    const codes = c.sae.encode({ rows: n, cols: d, data: u });
    const recon = c.sae.decode(codes).data;
    c.sae.dispose();
    const want = saelensForward(saelensLoadV6(dir), x.data, n);
    expectClose(dense(codes, m), want.acts, 'codes', { pattern: true });
    const norms = rowNorms(x.data, n, d);
    expectClose(Float64Array.from(recon, (v, i) => v * norms[Math.floor(i / d)]), want.recon, 'reconstruction');
    await expectSaeRejection(TopKSAE.load(dir), 'ERR_FORMAT', /loadCheckpoint/);
  });

  it('JumpReLU with one threshold (SAELens writes BatchTopK so) runs as SAELens; per-latent thresholds are refused', async () => {
    const w = weights(61);
    w.b_enc.fill(0);
    const thr = new Float32Array(m).fill(0.5);
    const dir = fresh('jumprelu');
    writeSaelens(dir, saelensCfg(6, { arch: 'jumprelu', d, m, k, dtype: 'F32' }), w, 'F32', { threshold: { shape: [m], values: thr } });
    const x = inputs(62, w.b_dec);
    const { c, acts, recon } = await ours(dir, x);
    expect(c.notes.join(' ')).to.match(/threshold 0.5/);
    const want = saelensForward(saelensLoadV6(dir), x.data, n);
    expect(want.acts.filter((v) => v !== 0).length).to.be.greaterThan(n * k); // rows with more than k latents: no cap
    expectClose(acts, want.acts, 'codes', { pattern: true });
    expectClose(recon, want.recon, 'reconstruction');
    const v5 = fresh('jumprelu5');
    writeSaelens(v5, saelensCfg(5, { arch: 'jumprelu', d, m, k, dtype: 'BF16' }), w, 'BF16', { threshold: { shape: [m], values: thr } });
    expectClose((await ours(v5, x)).acts, saelensForward(saelensLoadV5(v5), x.data, n).acts, 'codes (5.x)', { pattern: true });
    const per = fresh('jumprelu-per');
    writeSaelens(per, saelensCfg(6, { arch: 'jumprelu', d, m, k, dtype: 'F32' }), w, 'F32', { threshold: { shape: [m], values: thr.map((v, j) => v + j / 64) } });
    await expectSaeRejection(TopKSAE.load(per), 'ERR_FORMAT', /thresholds differ/);
  });

  it('refuses forward-changing fields, tensors and variants with ERR_FORMAT naming them', async () => {
    const w = weights(71);
    const variant = async (name: string, version: Version, extra: Record<string, unknown>, re: RegExp, tensors: Record<string, { shape: number[]; values: Float32Array }> = {}, arch: 'topk' | 'jumprelu' = 'topk') => {
      const dir = fresh(name);
      const cfg = saelensCfg(version, { arch, d, m, k, dtype: 'F32', extra });
      for (const [key, v] of Object.entries(extra)) if (v === undefined) delete cfg[key];
      writeSaelens(dir, cfg, w, 'F32', tensors);
      await expectSaeRejection(TopKSAE.load(dir), 'ERR_FORMAT', re);
    };
    await variant('unknown-field', 6, { output_scale: 2 }, /unknown field.*'output_scale'/);
    await variant('layer-norm', 6, { normalize_activations: 'layer_norm' }, /layer_norm/);
    await variant('expected-avg', 5, { normalize_activations: 'expected_average_only_in' }, /expected_average_only_in.*activation_scaler\.json/);
    await variant('bool-norm', 4, { normalize_activations: true }, /expected_average_only_in/);
    await variant('gated', 5, { architecture: 'gated', activation_fn_str: 'relu', activation_fn_kwargs: {} }, /'gated'/);
    await variant('standard-relu', 4, { activation_fn_str: 'relu', activation_fn_kwargs: {} }, /'standard'/);
    await variant('tanh-relu', 5, { architecture: 'jumprelu', activation_fn_str: 'tanh-relu', activation_fn_kwargs: {} }, /tanh-relu/, { threshold: { shape: [m], values: new Float32Array(m) } }, 'jumprelu');
    await variant('signed', 5, { activation_fn_kwargs: { k, signed: true } }, /signed/);
    await variant('kwargs', 5, { activation_fn_kwargs: { k, postact: 'tanh' } }, /'postact'/);
    await variant('no-k', 6, { k: undefined }, /without k/);
    await variant('dtype', 6, { dtype: 'int8' }, /dtype/);
    await variant('transcoder', 6, { d_out: d }, /transcoder/);
    await variant('extra-tensor', 6, {}, /'W_skip'/, { W_skip: { shape: [d, d], values: new Float32Array(d * d) } });
    await variant('log-threshold', 6, {}, /'log_threshold'/, { log_threshold: { shape: [m], values: new Float32Array(m) } });
  });

  it("expected_average_only_in with SAELens's activation_scaler.json folds the scaling factor as fold_activation_norm_scaling_factor", async () => {
    const w = weights(75);
    const dir = fresh('scaler');
    writeSaelens(dir, saelensCfg(6, { arch: 'topk', d, m, k, dtype: 'F32', extra: { normalize_activations: 'expected_average_only_in', rescale_acts_by_decoder_norm: false } }), w, 'F32');
    writeFileSync(path.join(dir, 'activation_scaler.json'), JSON.stringify({ scaling_factor: 3.5 }));
    const x = inputs(76, w.b_dec);
    const { acts, recon } = await ours(dir, x);
    // the trainer scaled inputs by s and unscaled outputs: SAELens's forward on s * x, divided by s
    const ref = { ...saelensLoadV6(dir), norm: 'none' as const };
    const want = saelensForward(ref, x.data.map((v) => v * 3.5), n);
    expectClose(acts, want.acts, 'codes', { pattern: true });
    expectClose(recon, want.recon.map((v) => v / 3.5), 'reconstruction');
  });

  for (const release of ['1.x', '2024'] as const)
    it(`sparsify ${release} checkpoint${release === '2024' ? ' (num_latents 0 + expansion_factor, bfloat16)' : ''} encodes and decodes as sparsify does`, async () => {
      const r = new Rng(release === '1.x' ? 81 : 82);
      const ef = 3;
      const mm = release === '2024' ? d * ef : m;
      const enc = exactValues(r, mm * d), bias = exactValues(r, mm, 7), W_dec = exactValues(r, mm * d, 5), b_dec = exactValues(r, d, 7);
      const dir = fresh(`sparsify-${release}`);
      const dtype: PlainDtype = release === '2024' ? 'BF16' : 'F32';
      writeSparsify(dir, sparsifyCfg(release, { d, k, numLatents: release === '2024' ? 0 : mm, expansionFactor: ef }), { enc, bias, W_dec, b_dec }, dtype);
      const x = inputs(83, b_dec);
      const { c, acts, recon } = await ours(dir, x);
      expect(c.format).to.equal('sparsify');
      expect(c.sae.m).to.equal(mm);
      const ref = sparsifyLoad(dir);
      expect(ref.m).to.equal(mm);
      const want = sparsifyForward(ref, x.data, n);
      expectClose(acts, want.acts, 'codes', { pattern: true });
      expectClose(recon, want.recon, 'reconstruction');
    });

  it('refuses sparsify variants it cannot run, naming the field; a sparsify run directory gets a hint', async () => {
    const r = new Rng(91);
    const w = { enc: exactValues(r, m * d), bias: exactValues(r, m), W_dec: exactValues(r, m * d), b_dec: exactValues(r, d) };
    const variant = async (name: string, patch: Record<string, unknown>, re: RegExp) => {
      const dir = fresh(name);
      const cfg = { ...sparsifyCfg('1.x', { d, k, numLatents: m, expansionFactor: 1 }), ...patch };
      for (const [key, v] of Object.entries(patch)) if (v === undefined) delete cfg[key];
      writeSparsify(dir, cfg, w, 'F32');
      await expectSaeRejection(TopKSAE.load(dir), 'ERR_FORMAT', re);
    };
    await variant('groupmax', { activation: 'groupmax' }, /groupmax/);
    await variant('skip', { skip_connection: true }, /skip_connection/);
    await variant('transcode', { transcode: true }, /transcode/);
    await variant('signed', { signed: true }, /signed/);
    await variant('unknown', { jump: 0.1 }, /'jump'/);
    await variant('no-d-in', { d_in: undefined }, /d_in/);
    await variant('no-k', { k: undefined }, /k is missing/);
    const run = fresh('sparsify-run');
    mkdirSync(path.join(run, 'layers.3'), { recursive: true });
    writeSparsify(path.join(run, 'layers.3'), sparsifyCfg('1.x', { d, k, numLatents: m, expansionFactor: 1 }), w, 'F32');
    await expectSaeRejection(TopKSAE.load(run), 'ERR_IO', /layers\.3/);
  });
});
