import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE, exportSae, loadCheckpoint, type Matrix, type SaeWeights } from '../../lib/index.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { dense, expectClose, l2Rows, rowNorms } from '../helpers/interop.js';
import { Rng } from '../helpers/random.js';
import { saelensForward, saelensLoadV5, saelensLoadV6, V5_REQUIRED } from '../helpers/saelens-reference.js';
import { sparsifyForward, sparsifyLoad } from '../helpers/sparsify-reference.js';
import { floatToBfloat16, floatToHalf } from '../../lib/io/formats/common.js';
import { plainBf16, plainHalf, readPlainSafetensors } from '../helpers/st-plain.js';
import { tempDir } from '../helpers/tmp.js';

const d = 10, m = 36, k = 3, n = 15;

function model(seed: number, opts: Record<string, unknown> = {}): TopKSAE {
  const r = new Rng(seed);
  const w: SaeWeights = {
    W_enc: { rows: d, cols: m, data: r.normals(d * m, 0.6) },
    b_enc: r.normals(m, 0.05),
    W_dec: { rows: m, cols: d, data: r.normals(m * d, 0.3) },
    b_dec: r.normals(d, 0.2),
  };
  return TopKSAE.fromWeights(w, { k, ...opts });
}

const rawInputs = (seed: number): Matrix => ({ rows: n, cols: d, data: new Rng(seed).normals(n * d, 3) });

describe('exports read back by the other libraries (plain reimplementations of their loaders)', () => {
  const { dir: root, cleanup } = tempDir();
  after(cleanup);

  it('SAELens export of a Top-K SAE: 5.x and 6.x loaders accept it (required keys, names, shapes, dtypes) and encode identically', async () => {
    using sae = model(1);
    const dir = path.join(root, 'saelens-none');
    const r = await exportSae(sae, dir, { format: 'saelens', source: { embeddings: '/data/img.npy', side: 'image' } });
    expect(r.normalization).to.equal('none');
    const cfg = JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
    for (const key of V5_REQUIRED.filter((x) => !['prepend_bos', 'dataset_trust_remote_code', 'apply_b_dec_to_input', 'finetuning_scaling_factor', 'sae_lens_training_version', 'activation_fn_str', 'architecture', 'normalize_activations', 'device'].includes(x)))
      expect(cfg, key).to.have.property(key);
    expect(cfg.dataset_path).to.equal('/data/img.npy');
    expect(cfg.metadata.cmsae_export.embeddings).to.equal('/data/img.npy');
    const st = readPlainSafetensors(path.join(dir, 'sae_weights.safetensors'));
    expect(Object.fromEntries([...st.tensors].map(([name, t]) => [name, [t.dtype, t.shape]]))).to.deep.equal({
      W_enc: ['F32', [d, m]],
      b_enc: ['F32', [m]],
      W_dec: ['F32', [m, d]],
      b_dec: ['F32', [d]],
    });
    const x = rawInputs(2);
    const codes = sae.encode(x);
    const ours = dense(codes, m), recon = sae.decode(codes).data;
    for (const ref of [saelensLoadV5(dir), saelensLoadV6(dir)]) {
      const want = saelensForward(ref, x.data, n);
      expectClose(ours, want.acts, 'codes', { pattern: true });
      expectClose(recon, want.recon, 'reconstruction');
    }
  });

  it("an 'l2' model exports as constant_norm_rescale: SAELens's codes on raw rows equal ours on normalized rows, its x_hat is ||x|| * ours", async () => {
    using sae = model(3);
    const dir = path.join(root, 'saelens-l2');
    const r = await exportSae(sae, dir, { format: 'saelens', normalization: 'l2' });
    expect(r.normalization).to.equal('folded as constant_norm_rescale');
    const x = rawInputs(4);
    const u = l2Rows(x.data, n, d);
    const codes = sae.encode({ rows: n, cols: d, data: u });
    const norms = rowNorms(x.data, n, d);
    const recon = Float64Array.from(sae.decode(codes).data, (v, i) => v * norms[Math.floor(i / d)]);
    for (const ref of [saelensLoadV5(dir), saelensLoadV6(dir)]) {
      expect(ref.norm).to.equal('constant_norm_rescale');
      const want = saelensForward(ref, x.data, n);
      expectClose(dense(codes, m), want.acts, 'codes', { pattern: true });
      expectClose(recon, want.recon, 'reconstruction');
    }
    // read back by us: the fold is undone and the model asks for l2 input again
    const back = await loadCheckpoint(dir);
    expect(back.normalization).to.deep.equal({ kind: 'l2' });
    expectClose(dense(back.sae.encode({ rows: n, cols: d, data: u }), m), dense(codes, m), 'codes (read back)', { pattern: true });
    back.sae.dispose();
  });

  it("'center+l2' is refused unless normalizedInput, which writes the weights as trained and records the normalization and its mean", async () => {
    using sae = model(5);
    const mean = Array.from({ length: d }, (_, i) => i / 10);
    await expectSaeRejection(exportSae(sae, path.join(root, 'centre'), { format: 'saelens', normalization: { kind: 'center+l2', mean } }), 'ERR_ARG', /center\+l2.*normalizedInput/);
    expect(existsSync(path.join(root, 'centre'))).to.equal(false);
    await expectSaeRejection(exportSae(sae, path.join(root, 'centre'), { format: 'sparsify', normalization: 'l2' }), 'ERR_ARG', /sparsify normalizes nothing/);
    const dir = path.join(root, 'centre-caller');
    const r = await exportSae(sae, dir, { format: 'saelens', normalization: { kind: 'center+l2', mean }, normalizedInput: true });
    expect(r.normalization).to.equal('caller normalizes');
    const cfg = JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
    expect(cfg.normalize_activations).to.equal('none');
    expect(cfg.metadata.cmsae_export).to.include({ input_normalization: 'center+l2', normalization_carried: 'caller normalizes' });
    expect(cfg.metadata.cmsae_export.input_normalization_mean).to.deep.equal(mean);
    const st = readPlainSafetensors(path.join(dir, 'sae_weights.safetensors'));
    expect(Array.from(st.tensors.get('W_enc')!.values)).to.deep.equal(Array.from(sae.getWeights().W_enc.data));
  });

  it('sparsify export: its loader accepts it (names, shapes, num_latents, dtype) and encodes identically, also in bfloat16', async () => {
    using sae = model(7);
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const dir = path.join(root, `sparsify-${dtype}`);
      await exportSae(sae, dir, { format: 'sparsify', dtype });
      const cfg = JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
      expect(cfg).to.include({ num_latents: m, k, d_in: d, activation: 'topk', skip_connection: false, transcode: false });
      const ref = sparsifyLoad(dir);
      expect([ref.m, ref.k, ref.dtype]).to.deep.equal([m, k, dtype === 'float32' ? 'F32' : 'BF16']);
      const x = rawInputs(8);
      const want = sparsifyForward(ref, x.data, n);
      if (dtype === 'float32') {
        const codes = sae.encode(x);
        expectClose(dense(codes, m), want.acts, 'codes', { pattern: true });
        expectClose(sae.decode(codes).data, want.recon, 'reconstruction');
      } else {
        // the stored weights are ours rounded to bfloat16 (round to nearest even), and we read them back identically
        const w = sae.getWeights();
        const enc = ref.enc;
        let worst = 0;
        for (let j = 0; j < m; j++) for (let c = 0; c < d; c++) worst = Math.max(worst, Math.abs(enc[j * d + c] - w.W_enc.data[c * m + j]) / Math.abs(w.W_enc.data[c * m + j]));
        expect(worst).to.be.lessThan(2 ** -8);
        const back = await loadCheckpoint(dir);
        expectClose(dense(back.sae.encode(x), m), want.acts, 'codes (bf16)', { pattern: true });
        back.sae.dispose();
        expect(plainBf16(0x3f80)).to.equal(1);
      }
    }
  });

  it('BatchTopK exports as JumpReLU: equal codes while a row has at most batchCapacity latents above the threshold; the cap is recorded', async () => {
    const capacity = 6;
    using sae = model(9, { activation: 'batchtopk', batchCapacity: capacity });
    sae.setTrainingState({ ...sae.getTrainingState(), threshold: 0.4, thresholdReady: true });
    const dir = path.join(root, 'jumprelu');
    const r = await exportSae(sae, dir, { format: 'saelens' });
    expect(r.notes.join(' ')).to.match(/at most 6 per row/);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
    expect(cfg.architecture).to.equal('jumprelu');
    expect(cfg.metadata.cmsae_export).to.include({ threshold: 0.4, batch_capacity: capacity });
    const x = rawInputs(10);
    for (let i = 0; i < n * d; i++) if (Math.floor(i / d) % 2 === 0) x.data[i] *= 0.25; // some rows below the cap, some above
    const ours = dense(sae.encode(x), m);
    const want = saelensForward(saelensLoadV6(dir), x.data, n).acts;
    let capped = 0;
    for (let row = 0; row < n; row++) {
      const above = want.subarray(row * m, (row + 1) * m).filter((v) => v !== 0).length;
      if (above <= capacity) expectClose(ours.subarray(row * m, (row + 1) * m), want.subarray(row * m, (row + 1) * m), `row ${row}`, { pattern: true });
      else {
        capped++;
        expect(ours.subarray(row * m, (row + 1) * m).filter((v) => v !== 0).length).to.equal(capacity);
      }
    }
    expect(capped, 'the inputs include rows above the cap').to.be.greaterThan(0);
    expect(capped, 'and rows below it').to.be.lessThan(n);
    // with batchCapacity = m the two compute the same thing on every row
    using uncapped = model(9, { activation: 'batchtopk', batchCapacity: m });
    uncapped.setTrainingState({ ...uncapped.getTrainingState(), threshold: 0.4, thresholdReady: true });
    const dir2 = path.join(root, 'jumprelu-uncapped');
    await exportSae(uncapped, dir2, { format: 'saelens' });
    expectClose(dense(uncapped.encode(x), m), saelensForward(saelensLoadV5(dir2), x.data, n).acts, 'codes', { pattern: true });
    await expectSaeRejection(exportSae(sae, path.join(root, 'sp-batch'), { format: 'sparsify' }), 'ERR_ARG', /BatchTopK/);
  });

  it('replaces an earlier export but never a directory of other files; a file in the way is ERR_IO', async () => {
    using sae = model(11);
    const dir = path.join(root, 'replace');
    await exportSae(sae, dir, { format: 'saelens' });
    await exportSae(sae, dir, { format: 'saelens', dtype: 'float16' });
    expect(readPlainSafetensors(path.join(dir, 'sae_weights.safetensors')).tensors.get('W_enc')!.dtype).to.equal('F16');
    const other = path.join(root, 'notes');
    mkdirSync(other);
    writeFileSync(path.join(other, 'thesis.tex'), 'precious');
    await expectSaeRejection(exportSae(sae, other, { format: 'sparsify' }), 'ERR_IO', /thesis\.tex/);
    expect(readFileSync(path.join(other, 'thesis.tex'), 'utf8')).to.equal('precious');
    await expectSaeRejection(exportSae(sae, path.join(other, 'thesis.tex'), { format: 'saelens' }), 'ERR_IO', /regular file/);
    await expectSaeRejection(exportSae(sae, path.join(other, 'thesis.tex', 'sub'), { format: 'saelens' }), 'ERR_IO');
    await expectSaeRejection(exportSae(sae, dir, { format: 'onnx' as 'saelens' }), 'ERR_ARG');
    // never over a crossmodal-sae checkpoint (e.g. the model being exported)
    const own = path.join(root, 'own-checkpoint');
    await sae.save(own);
    await expectSaeRejection(exportSae(sae, own, { format: 'saelens' }), 'ERR_IO', /crossmodal-sae checkpoint/);
    (await TopKSAE.load(own)).dispose();
  });

  it('float16 / bfloat16 rounding is round-to-nearest-even against an enumeration of every 16-bit value', () => {
    for (const [name, decode, conv] of [['float16', plainHalf, floatToHalf], ['bfloat16', plainBf16, floatToBfloat16]] as const) {
      // every non-negative finite pattern in increasing order, then +Inf one step above the largest
      const finite: { v: number; bits: number }[] = [];
      for (let b = 0; b < 0x8000; b++) if (Number.isFinite(decode(b))) finite.push({ v: decode(b), bits: b });
      const top = finite[finite.length - 1];
      const step = top.v - finite[finite.length - 2].v;
      const grid = [...finite, { v: top.v + step, bits: name === 'float16' ? 0x7c00 : 0x7f80 }];
      const nearest = (x: number): number => {
        const ax = Math.abs(x);
        if (ax >= grid[grid.length - 1].v) return (x < 0 ? 0x8000 : 0) | grid[grid.length - 1].bits;
        let lo = 0, hi = grid.length - 1;
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (grid[mid].v <= ax) lo = mid;
          else hi = mid;
        }
        const dl = ax - grid[lo].v, dh = grid[hi].v - ax;
        const pick = dl < dh ? grid[lo] : dh < dl ? grid[hi] : grid[lo].bits % 2 === 0 ? grid[lo] : grid[hi];
        return (Object.is(x, -0) || x < 0 ? 0x8000 : 0) | pick.bits;
      };
      const rng = new Rng(name.length);
      const f = new Float32Array(1), u = new Uint32Array(f.buffer);
      const samples: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e-8, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 3.4e38, -3.4e38, 1e-40];
      for (let i = 0; i < 4000; i++) {
        u[0] = (rng.next() * 2 ** 32) >>> 0;
        if (Number.isFinite(f[0])) samples.push(f[0]);
      }
      for (const x of samples) {
        const v = Math.fround(x);
        expect(conv(v), `${name}(${v})`).to.equal(nearest(v));
      }
      expect(Number.isNaN(decode(conv(NaN)))).to.equal(true);
    }
  });
});
