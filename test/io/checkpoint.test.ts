import { expect } from 'chai';
import { promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE, serializeSafetensors, type Matrix } from '../../lib/index.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

describe('checkpoints', () => {
  const { dir: root, cleanup } = tempDir();
  after(cleanup);
  const rng = new Rng(11);
  const x: Matrix = { rows: 64, cols: 24, data: rng.normals(64 * 24) };

  it('save -> load gives identical weights, state and encodes, and resumes identically', async () => {
    const a = TopKSAE.create({ d: 24, m: 80, k: 5, seed: 3, weightDecay: 1e-3 });
    for (let s = 0; s < 5; s++) a.step(x, { lr: 1e-2 });
    const dir = path.join(root, 'roundtrip');
    await a.save(dir);
    expect(readdirSync(dir).sort()).to.deep.equal(['cfg.json', 'sae_weights.safetensors', 'trainer_state.safetensors']);
    const b = await TopKSAE.load(dir);
    expect(b.options).to.deep.equal(a.options);
    const ca = a.encode(x), cb = b.encode(x);
    expect(Array.from(cb.indices)).to.deep.equal(Array.from(ca.indices));
    expect(Array.from(cb.values)).to.deep.equal(Array.from(ca.values));
    expect(b.status()).to.deep.equal(a.status());
    // Continuing training from the checkpoint equals continuing the original.
    for (let s = 0; s < 3; s++) {
      a.step(x, { lr: 1e-2 });
      b.step(x, { lr: 1e-2 });
    }
    expect(Array.from(b.getWeights().W_dec.data)).to.deep.equal(Array.from(a.getWeights().W_dec.data));
    a.dispose();
    b.dispose();
  });

  it('writes SAELens tensor names, shapes and config fields', async () => {
    const a = TopKSAE.create({ d: 6, m: 10, k: 2 });
    const dir = path.join(root, 'layout');
    await a.save(dir, { includeTrainingState: false });
    a.dispose();
    const cfg = JSON.parse(await fs.readFile(path.join(dir, 'cfg.json'), 'utf8'));
    expect(cfg).to.include({ architecture: 'topk', d_in: 6, d_sae: 10, k: 2, apply_b_dec_to_input: true, normalize_activations: 'none' });
    expect(cfg.metadata.sae_lens_version >= '6').to.equal(true);
    const buf = await fs.readFile(path.join(dir, 'sae_weights.safetensors'));
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).to.equal(0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(header.W_enc.shape).to.deep.equal([6, 10]);
    expect(header.W_dec.shape).to.deep.equal([10, 6]);
    expect(header.b_enc.shape).to.deep.equal([10]);
    expect(header.b_dec.shape).to.deep.equal([6]);
    expect(header.W_enc.dtype).to.equal('F32');
  });

  it('loads a SAELens-layout "topk" checkpoint written by hand, folding decoder norms when asked', async () => {
    const d = 5, m = 7, k = 2;
    const r = new Rng(5);
    const W_enc = r.normals(d * m, 0.5), b_enc = r.normals(m, 0.1), b_dec = r.normals(d, 0.1);
    const W_dec = r.normals(m * d); // rows NOT unit norm
    const dir = path.join(root, 'saelens');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'sae_weights.safetensors'), serializeSafetensors({
      W_enc: { dtype: 'F32', shape: [d, m], data: W_enc },
      b_enc: { dtype: 'F32', shape: [m], data: b_enc },
      W_dec: { dtype: 'F32', shape: [m, d], data: W_dec },
      b_dec: { dtype: 'F32', shape: [d], data: b_dec },
    }));
    const cfg = { architecture: 'topk', d_in: d, d_sae: m, k, dtype: 'float32', device: 'cpu', apply_b_dec_to_input: true, normalize_activations: 'none', rescale_acts_by_decoder_norm: false, metadata: { sae_lens_version: '6.18.0' } };
    await fs.writeFile(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
    const sae = await TopKSAE.load(dir);
    const xs: Matrix = { rows: 9, cols: d, data: r.normals(9 * d) };
    const codes = sae.encode(xs);
    const recon = sae.decode(codes);
    sae.dispose();
    // SAELens semantics by hand: pre = (x - b_dec) W_enc + b_enc, TopK of ReLU, x_hat = z W_dec + b_dec.
    for (let b = 0; b < 9; b++) {
      const pre = Array.from({ length: m }, (_, j) => {
        let s = b_enc[j];
        for (let i = 0; i < d; i++) s += (xs.data[b * d + i] - b_dec[i]) * W_enc[i * m + j];
        return Math.max(0, s);
      });
      const top = pre.map((v, j) => ({ v, j })).sort((u, w) => w.v - u.v || u.j - w.j).slice(0, k);
      for (let i = 0; i < d; i++) {
        let want = b_dec[i];
        for (const t of top) want += t.v * W_dec[t.j * d + i];
        expect(recon.data[b * d + i]).to.be.closeTo(want, 1e-4);
      }
    }
    // The same weights with rescale_acts_by_decoder_norm: top-k on pre * ||W_dec[j]||, decode with unit rows.
    await fs.writeFile(path.join(dir, 'cfg.json'), JSON.stringify({ ...cfg, rescale_acts_by_decoder_norm: true }));
    const folded = await TopKSAE.load(dir);
    const recon2 = folded.decode(folded.encode(xs));
    const w = folded.getWeights();
    folded.dispose();
    for (let j = 0; j < m; j++) {
      let n = 0;
      for (let i = 0; i < d; i++) n += w.W_dec.data[j * d + i] ** 2;
      expect(Math.sqrt(n)).to.be.closeTo(1, 1e-5);
    }
    for (let b = 0; b < 9; b++) {
      const norms = Array.from({ length: m }, (_, j) => Math.hypot(...Array.from(W_dec.subarray(j * d, (j + 1) * d))));
      const pre = Array.from({ length: m }, (_, j) => {
        let s = b_enc[j];
        for (let i = 0; i < d; i++) s += (xs.data[b * d + i] - b_dec[i]) * W_enc[i * m + j];
        return Math.max(0, s) * norms[j];
      });
      const top = pre.map((v, j) => ({ v, j })).sort((u, q) => q.v - u.v || u.j - q.j).slice(0, k);
      for (let i = 0; i < d; i++) {
        let want = b_dec[i];
        for (const t of top) want += (t.v * W_dec[t.j * d + i]) / norms[t.j];
        expect(recon2.data[b * d + i]).to.be.closeTo(want, 1e-4);
      }
    }
  });

  it('rejects truncated, corrupt and foreign checkpoints with typed errors', async () => {
    const a = TopKSAE.create({ d: 6, m: 10, k: 2 });
    const good = path.join(root, 'good');
    await a.save(good);
    a.dispose();
    const variant = async (name: string, mutate: (dir: string) => Promise<void>) => {
      const dir = path.join(root, name);
      await fs.cp(good, dir, { recursive: true });
      await mutate(dir);
      return dir;
    };
    const weights = (dir: string) => path.join(dir, 'sae_weights.safetensors');
    const truncated = await variant('truncated', async (dir) => {
      const b = await fs.readFile(weights(dir));
      await fs.writeFile(weights(dir), b.subarray(0, b.length - 17));
    });
    await expectSaeRejection(TopKSAE.load(truncated), 'ERR_FORMAT', /truncated|outside|bytes/);
    const tiny = await variant('tiny', async (dir) => fs.writeFile(weights(dir), Buffer.from([1, 2, 3])));
    await expectSaeRejection(TopKSAE.load(tiny), 'ERR_FORMAT');
    const garbage = await variant('garbage', async (dir) => fs.writeFile(weights(dir), Buffer.alloc(4096, 0x41)));
    await expectSaeRejection(TopKSAE.load(garbage), 'ERR_FORMAT');
    const badCfg = await variant('badcfg', async (dir) => fs.writeFile(path.join(dir, 'cfg.json'), '{"architecture": "topk", "d_in": 6,'));
    await expectSaeRejection(TopKSAE.load(badCfg), 'ERR_FORMAT', /JSON/);
    const foreign = await variant('foreign', async (dir) =>
      fs.writeFile(path.join(dir, 'cfg.json'), JSON.stringify({ architecture: 'gated', d_in: 6, d_sae: 10 })),
    );
    await expectSaeRejection(TopKSAE.load(foreign), 'ERR_FORMAT', /gated/);
    const wrongShape = await variant('wrongshape', async (dir) => {
      const cfg = JSON.parse(await fs.readFile(path.join(dir, 'cfg.json'), 'utf8'));
      cfg.cmsae.options.m = 11;
      cfg.d_sae = 11;
      await fs.writeFile(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
    });
    await expectSaeRejection(TopKSAE.load(wrongShape), 'ERR_FORMAT', /shape/);
    const nanWeights = await variant('nan', async (dir) => {
      const b = await fs.readFile(weights(dir));
      b.writeFloatLE(NaN, b.length - 4); // last element of b_dec
      await fs.writeFile(weights(dir), b);
    });
    await expectSaeRejection(TopKSAE.load(nanWeights), 'ERR_NONFINITE');
    const badState = await variant('badstate', async (dir) => fs.writeFile(path.join(dir, 'trainer_state.safetensors'), Buffer.alloc(10)));
    await expectSaeRejection(TopKSAE.load(badState), 'ERR_FORMAT');
    await expectSaeRejection(TopKSAE.load(path.join(root, 'does-not-exist')), 'ERR_IO', /not found/);
  });

  it('replaces a checkpoint atomically and recovers one whose save was interrupted between renames', async () => {
    const dir = path.join(root, 'atomic');
    const a = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 1 });
    await a.save(dir);
    const b = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 2 });
    await b.save(dir);
    expect(readdirSync(root).filter((e) => e.startsWith('atomic.'))).to.deep.equal([]);
    const loaded = await TopKSAE.load(dir);
    expect(Array.from(loaded.getWeights().W_enc.data)).to.deep.equal(Array.from(b.getWeights().W_enc.data));
    loaded.dispose();
    // Simulate a crash after the old directory was moved aside and before the new one was renamed in.
    await fs.rename(dir, `${dir}.old-crash`);
    await a.save(path.join(root, 'staging'));
    await fs.rename(path.join(root, 'staging'), `${dir}.tmp-crash`);
    await fs.writeFile(path.join(`${dir}.tmp-crash`, '.complete'), '');
    const recovered = await TopKSAE.load(dir);
    expect(Array.from(recovered.getWeights().W_enc.data)).to.deep.equal(Array.from(a.getWeights().W_enc.data));
    recovered.dispose();
    a.dispose();
    b.dispose();
  });

  it('refuses to save into an unwritable location without touching the existing checkpoint', async () => {
    const dir = path.join(root, 'keep');
    const a = TopKSAE.create({ d: 6, m: 10, k: 2 });
    await a.save(dir);
    const before = await fs.readFile(path.join(dir, 'sae_weights.safetensors'));
    await expectSaeRejection(a.save(path.join(dir, 'cfg.json', 'sub')), 'ERR_IO');
    expect(Buffer.compare(before, await fs.readFile(path.join(dir, 'sae_weights.safetensors')))).to.equal(0);
    a.dispose();
  });
});
