import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { promises as fs, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE, loadCheckpoint, parseSafetensors, serializeSafetensors, type Matrix } from '../../lib/index.js';
import { checkpointFiles, saveSae } from '../../lib/io/checkpoint.js';
import type { TensorToWrite } from '../../lib/io/safetensors.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
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

  describe('own checkpoint files: every field checked, checksums, non-regular files', () => {
    let good: string;
    before(async () => {
      const a = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 4 });
      const xs: Matrix = { rows: 16, cols: 6, data: new Rng(2).normals(96) };
      for (let s = 0; s < 3; s++) a.step(xs, { lr: 1e-2 });
      good = path.join(root, 'fields-good');
      await a.save(good);
      a.dispose();
    });
    let serial = 0;
    /** A copy of the good checkpoint without checksums (as written before they existed), then mutated. */
    const variant = async (mutate: (dir: string, cfg: Record<string, any>) => Promise<void> | void) => {
      const dir = path.join(root, `field-${serial++}`);
      await fs.cp(good, dir, { recursive: true });
      const cfg = JSON.parse(await fs.readFile(path.join(dir, 'cfg.json'), 'utf8'));
      delete cfg.cmsae.checksums;
      await mutate(dir, cfg);
      await fs.writeFile(path.join(dir, 'cfg.json'), JSON.stringify(cfg, null, 2));
      return dir;
    };
    const rewriteState = async (dir: string, edit: (tensors: Record<string, TensorToWrite>, meta: Record<string, string>) => void) => {
      const file = path.join(dir, 'trainer_state.safetensors');
      const st = parseSafetensors(await fs.readFile(file));
      const tensors: Record<string, TensorToWrite> = {};
      for (const [name, t] of st.tensors) tensors[name] = { dtype: t.dtype as TensorToWrite['dtype'], shape: t.shape, data: t.data.slice() as Float32Array };
      const meta = { ...st.metadata };
      edit(tensors, meta);
      await fs.writeFile(file, serializeSafetensors(tensors, meta));
    };

    it('a checkpoint written before checksums existed still loads', async () => {
      const sae = await TopKSAE.load(await variant(() => {}));
      expect(sae.status().step).to.equal(3);
      sae.dispose();
    });

    it('cfg.json: wrong types, ranges and meanings are ERR_FORMAT naming the field', async () => {
      const bad = async (mutate: (cfg: Record<string, any>) => void, re: RegExp) =>
        expectSaeRejection(TopKSAE.load(await variant((_dir, cfg) => mutate(cfg))), 'ERR_FORMAT', re);
      const e = await bad((c) => (c.cmsae.format_version = '1'), /format_version must be an integer/);
      expect(e.message).to.not.match(/newer/);
      await bad((c) => (c.cmsae.format_version = 2), /newer crossmodal-sae/);
      await bad((c) => (c.cmsae.format_version = 0.5), /format_version/);
      await bad((c) => (c.cmsae.step = 2.5), /cmsae.step/);
      await bad((c) => (c.cmsae.step = -1), /cmsae.step/);
      await bad((c) => (c.cmsae.samples_seen = '48'), /cmsae.samples_seen/);
      await bad((c) => (c.cmsae.threshold = 0.3), /not batchtopk/);
      await bad((c) => (c.cmsae.options.k = 0), /cmsae.options/);
      await bad((c) => (c.cmsae.options.lossScale = 2), /cmsae.options.*lossScale/);
      await bad((c) => (c.cmsae.surprise = true), /unknown field.*'surprise'/);
      await bad((c) => (c.d_in = 7), /d_in/);
      await bad((c) => (c.normalize_activations = 'constant_norm_rescale'), /normalize_activations/);
      await bad((c) => (c.activation_fn_kwargs = { k: 3 }), /activation_fn_kwargs/);
      await bad((c) => (c.cmsae.checksums = { 'cfg.json': 'abc' }), /64 hex/);
      await bad((c) => (c.cmsae.normalization = { kind: 'center+l2' }), /centring mean/);
      await bad((c) => (c.cmsae.step = 4), /does not belong/);
    });

    it('trainer_state.safetensors: counters, moments and fire statistics are checked for type, range and meaning', async () => {
      const bad = async (edit: (t: Record<string, TensorToWrite>, meta: Record<string, string>) => void, code: string, re: RegExp) =>
        expectSaeRejection(TopKSAE.load(await variant((dir) => rewriteState(dir, edit))), code, re);
      await bad((_t, meta) => (meta.step = '1e300'), 'ERR_FORMAT', /'step' must be a decimal integer/);
      await bad((_t, meta) => (meta.step = '2.5'), 'ERR_FORMAT', /'step'/);
      await bad((_t, meta) => (meta.samples_seen = '-4'), 'ERR_FORMAT', /'samples_seen'/);
      await bad((_t, meta) => (meta.threshold = 'NaN'), 'ERR_FORMAT', /'threshold'/);
      await bad((_t, meta) => (meta.threshold_ready = 'yes'), 'ERR_FORMAT', /'threshold_ready'/);
      await bad((_t, meta) => (meta.comment = 'hi'), 'ERR_FORMAT', /unknown metadata/);
      await bad((t) => ((t['W_dec.exp_avg_sq'].data as Float32Array)[3] = -1e-6), 'ERR_FORMAT', /never negative/);
      await bad((t) => ((t['b_enc.exp_avg'].data as Float32Array)[1] = Infinity), 'ERR_NONFINITE', /b_enc.exp_avg/);
      await bad((t) => ((t.fires.data as Float64Array)[2] = -1), 'ERR_FORMAT', /fires\[2\]/);
      await bad((t) => ((t.since.data as Float64Array)[0] = 1.5), 'ERR_FORMAT', /since\[0\]/);
      await bad((t) => ((t.fires.data as Float64Array)[0] = 1e9), 'ERR_FORMAT', /samplesSeen/);
      await bad((t) => (t.extra = { dtype: 'F32', shape: [1], data: new Float32Array(1) }), 'ERR_FORMAT', /'extra'/);
      await bad((t) => (t['b_dec.exp_avg'] = { dtype: 'F64', shape: [6], data: Float64Array.from(t['b_dec.exp_avg'].data as Float32Array) }), 'ERR_FORMAT', /must be F32/);
      await bad((_t, meta) => (meta.step = '7'), 'ERR_FORMAT', /does not belong/);
    });

    it('checksums: a flipped bit anywhere in any file of a checkpoint, or an edited cfg.json, is refused', async () => {
      const rng = new Rng(99);
      for (const file of ['cfg.json', 'sae_weights.safetensors', 'trainer_state.safetensors']) {
        const bytes = await fs.readFile(path.join(good, file));
        for (let trial = 0; trial < 40; trial++) {
          const dir = path.join(root, `flip-${serial++}`);
          await fs.cp(good, dir, { recursive: true });
          const flipped = Buffer.from(bytes);
          const at = rng.int(flipped.length);
          flipped[at] ^= 1 << rng.int(8);
          await fs.writeFile(path.join(dir, file), flipped);
          const err = await TopKSAE.load(dir).then(
            (s) => {
              s.dispose();
              return null;
            },
            (e: Error & { code?: string }) => e,
          );
          expect(err, `${file}: flipped bit at byte ${at} was accepted`).to.not.equal(null);
          expect(['ERR_FORMAT', 'ERR_NONFINITE'], `${file} @${at}: ${err!.message}`).to.include(err!.code);
          await fs.rm(dir, { recursive: true });
        }
      }
      const edited = path.join(root, 'edited');
      await fs.cp(good, edited, { recursive: true });
      const cfg = JSON.parse(await fs.readFile(path.join(edited, 'cfg.json'), 'utf8'));
      cfg.cmsae.options.seed = 5;
      await fs.writeFile(path.join(edited, 'cfg.json'), JSON.stringify(cfg, null, 2) + '\n');
      await expectSaeRejection(TopKSAE.load(edited), 'ERR_FORMAT', /corrupt.*sha256/);
      // a state file from another checkpoint of the same shape
      const other = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 4 });
      await other.save(path.join(root, 'other'));
      other.dispose();
      await fs.copyFile(path.join(root, 'other', 'trainer_state.safetensors'), path.join(edited, 'trainer_state.safetensors'));
      await fs.cp(good, path.join(root, 'mixed'), { recursive: true });
      await fs.copyFile(path.join(root, 'other', 'trainer_state.safetensors'), path.join(root, 'mixed', 'trainer_state.safetensors'));
      await expectSaeRejection(TopKSAE.load(path.join(root, 'mixed')), 'ERR_FORMAT', /does not belong|sha256/);
    });

    it('a FIFO, directory or device where cfg.json or a weights file is expected is ERR_IO at once (never blocks)', async function () {
      this.timeout(20_000);
      if (spawnSync('mkfifo', ['--help']).status !== 0) return this.skip();
      for (const file of ['cfg.json', 'sae_weights.safetensors', 'trainer_state.safetensors']) {
        for (const kind of ['fifo', 'dir', 'device']) {
          const dir = path.join(root, `nonregular-${serial++}`);
          await fs.cp(good, dir, { recursive: true });
          const target = path.join(dir, file);
          await fs.rm(target);
          if (kind === 'fifo') expect(spawnSync('mkfifo', [target]).status).to.equal(0);
          else if (kind === 'dir') await fs.mkdir(target);
          else symlinkSync('/dev/zero', target);
          await expectSaeRejection(TopKSAE.load(dir), 'ERR_IO', kind === 'dir' ? /directory/ : kind === 'fifo' ? /FIFO/ : /device/);
        }
      }
      await expectSaeRejection(TopKSAE.load(path.join(good, 'cfg.json')), 'ERR_IO');
    });

    it('save refuses non-finite weights or state (ERR_NONFINITE) and invalid state (ERR_STATE), keeping the previous checkpoint', async () => {
      const real = await TopKSAE.load(good);
      const w = real.getWeights();
      w.W_dec.data[7] = NaN;
      // a stand-in whose weights diverged (TopKSAE itself refuses to hold them): defence in depth in checkpointFiles
      const diverged = { options: real.options, getWeights: () => w, status: () => real.status(), getTrainingState: () => real.getTrainingState() } as unknown as TopKSAE;
      expect(() => checkpointFiles(diverged)).to.throw(/W_dec holds NaN at element 7/).with.property('code', 'ERR_NONFINITE');
      const st = real.getTrainingState();
      (st.arrays['W_enc.exp_avg'] as Float32Array)[0] = Infinity;
      const badMoments = { options: real.options, getWeights: () => real.getWeights(), status: () => real.status(), getTrainingState: () => st } as unknown as TopKSAE;
      expect(() => checkpointFiles(badMoments)).to.throw(/W_enc.exp_avg/).with.property('code', 'ERR_NONFINITE');
      const before = await fs.readFile(path.join(good, 'sae_weights.safetensors'));
      const fires = real.getTrainingState();
      (fires.arrays.fires as Float64Array)[1] = -3;
      // TopKSAE refuses such a state itself (ERR_RANGE); checkpointFiles refuses it too, for any stand-in holding it.
      expectSaeError(() => real.setTrainingState(fires), 'ERR_RANGE', /fires\[1\]/);
      const badState = { options: real.options, getWeights: () => real.getWeights(), status: () => real.status(), getTrainingState: () => fires } as unknown as TopKSAE;
      expect(() => checkpointFiles(badState)).to.throw(/fires\[1\]/).with.property('code', 'ERR_STATE');
      await real.save(good);
      expect(Buffer.compare(before, await fs.readFile(path.join(good, 'sae_weights.safetensors')))).to.equal(0);
      real.dispose();
      (await TopKSAE.load(good)).dispose();
    });

    it('records the input normalization when given; loadCheckpoint returns it', async () => {
      const a = TopKSAE.create({ d: 6, m: 10, k: 2 });
      const dir = path.join(root, 'with-norm');
      await saveSae(a, dir, { normalization: { kind: 'center+l2', mean: [1, 2, 3, 4, 5, 6] } });
      a.dispose();
      const c = await loadCheckpoint(dir);
      expect(c.format).to.equal('cmsae');
      expect(c.normalization?.kind).to.equal('center+l2');
      expect(Array.from(c.normalization!.mean!)).to.deep.equal([1, 2, 3, 4, 5, 6]);
      c.sae.dispose();
      await expectSaeRejection(saveSae(TopKSAE.create({ d: 6, m: 10, k: 2 }), dir, { normalization: { kind: 'center+l2' } }), 'ERR_ARG', /mean/);
    });
  });
});
