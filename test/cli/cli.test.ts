import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { EmbeddingFile, Normalizer, TopKSAE, npyBytes, parseSafetensors } from '../../lib/index.js';
import { recoverDirectory } from '../../lib/io/atomic.js';
import { writePlanted, type PlantedData } from '../helpers/paired-data.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');
const cmsae = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_THREADS: '2' } });

describe('cmsae train / align / encode', function () {
  this.timeout(180_000);
  const { dir, cleanup } = tempDir();
  let p: PlantedData;
  before(async () => {
    p = await writePlanted(dir, { n: 2000, d: 16, C: 8, active: 2 });
  });
  after(cleanup);
  const trainArgs = (out: string, extra: string[] = []) => ['train', '--image', p.imagePath, '--text', p.textPath, '--method', 'posthoc', '--m', '24', '--k', '2', '--epochs', '4', '--batch-size', '100', '--lr', '4e-3', '--quiet', '--out', out, ...extra];

  it('train -> align -> encode, exit code 0; codes equal the library encode of the normalized input', () => {
    const run = path.join(dir, 'run');
    const t = cmsae(trainArgs(run));
    expect(t.status, t.stderr).to.equal(0);
    expect(t.stdout).to.match(/trained 76 steps/);
    const a = cmsae(['align', '--run', run]);
    expect(a.status, a.stderr).to.equal(0);
    expect(a.stdout).to.match(/aligned 12 latents on 1900 pairs/);
    const out = path.join(dir, 'codes.safetensors');
    const e = cmsae(['encode', '--model', path.join(run, 'final', 'image'), '--input', p.imagePath, '--out', out, '--batch-size', '333']);
    expect(e.status, e.stderr).to.equal(0);
    const st = parseSafetensors(readFileSync(out));
    const idx = st.tensors.get('indices')!, val = st.tensors.get('values')!;
    expect(idx.shape).to.deep.equal([2000, 2]);
    using sae = new TopKSAEHolder(path.join(run, 'final', 'image'));
    using f = EmbeddingFile.open(p.imagePath);
    const x = new Float32Array(2000 * 16);
    f.readRange(0, 2000, x);
    new Normalizer('l2').apply('image', x, 2000, 16);
    return sae.ready.then((s) => {
      const c = s.encode({ rows: 2000, cols: 16, data: x });
      expect(Array.from(idx.data)).to.deep.equal(Array.from(c.indices));
      expect(Array.from(val.data)).to.deep.equal(Array.from(c.values));
    });
  });

  it('reads options from a YAML config file, flags override it; --help shows an example on every command', () => {
    const yaml = path.join(dir, 'run.yaml');
    writeFileSync(yaml, `method: separate\ndata:\n  image: { path: ${p.imagePath} }\n  text: { path: ${p.textPath} }\nsae: { m: 16, k: 2 }\ntrain:\n  epochs: 1\n  batchSize: 200\n  lr: 0.001\n`);
    const run = path.join(dir, 'yaml-run');
    const r = cmsae(['train', '--config', yaml, '--lr', '0.002', '--quiet', '--out', run]);
    expect(r.status, r.stderr).to.equal(0);
    const saved = JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8'));
    expect(saved.method).to.equal('separate');
    expect(saved.train.lr).to.equal(0.002);
    expect(saved.train.batchSize).to.equal(200);
    for (const cmd of ['train', 'align', 'encode', 'info']) {
      const h = cmsae([cmd, '--help']);
      expect(h.status).to.equal(0);
      expect(h.stdout).to.match(/Example/);
    }
  });

  it('exit codes: 2 for bad usage, 1 for failures, each with a one-line message', () => {
    const bad = cmsae(['train', '--epochs', 'abc', '--out', path.join(dir, 'x')]);
    expect(bad.status).to.equal(2);
    const cfg = cmsae(['train', '--method', 'nope', '--image', p.imagePath, '--text', p.textPath, '--out', path.join(dir, 'y')]);
    expect(cfg.status).to.equal(2);
    expect(cfg.stderr.trim().split('\n')).to.have.length(1);
    expect(cfg.stderr).to.match(/method/);
    const missing = cmsae(['train', '--method', 'shared', '--image', path.join(dir, 'none.npy'), '--text', p.textPath, '--out', path.join(dir, 'z')]);
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.match(/^cmsae: ERR_IO: .*none\.npy/);
    writeFileSync(path.join(dir, 'wide.npy'), npyBytes({ rows: 3, cols: 20, data: new Float32Array(60).fill(1) }));
    const dim = cmsae(['encode', '--model', path.join(dir, 'run', 'final', 'image'), '--input', path.join(dir, 'wide.npy'), '--out', path.join(dir, 'w.safetensors')]);
    expect(dim.status).to.equal(1);
    expect(dim.stderr).to.match(/ERR_SHAPE: .*20 values per row but the model expects d = 16/);
    expect(existsSync(path.join(dir, 'w.safetensors'))).to.equal(false);
    expect(cmsae(['nosuchcommand']).status).to.equal(2);
  });

  it('Ctrl-C writes a checkpoint and exits; --resume finishes the run', async () => {
    const run = path.join(dir, 'sigint');
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...trainArgs(run, ['--epochs', '400'])], { cwd: root, env: { ...process.env, CMSAE_THREADS: '2' } });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    // Wait until training is under way (the first metrics line), then interrupt.
    await waitFor(() => existsSync(path.join(run, 'metrics.jsonl')) && readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').length > 0, 60_000);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('exit', res));
    expect(code, stderr).to.equal(1);
    expect(stderr).to.match(/resume/);
    const state = JSON.parse(readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.step).to.be.greaterThan(0);
    // Finish soon after the checkpoint: the run was started with 400 epochs (19 steps each) to be interruptible.
    const cfg = JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8'));
    cfg.train.epochs = Math.floor(state.step / 19) + 1;
    writeFileSync(path.join(run, 'config.json'), JSON.stringify(cfg));
    const r = cmsae(['train', '--resume', '--quiet', '--out', run]);
    expect(r.status, r.stderr).to.equal(0);
    expect(existsSync(path.join(run, 'final', 'pair', 'alignment.json'))).to.equal(true);
  });

  it('a process killed (SIGKILL) while checkpointing leaves a loadable checkpoint', async () => {
    for (const delay of [700, 1100, 1500]) {
      const run = path.join(dir, `kill-${delay}`);
      const child = spawn(process.execPath, ['--import', 'tsx', entry, ...trainArgs(run, ['--epochs', '400', '--checkpoint-every', '1'])], { cwd: root, env: { ...process.env, CMSAE_THREADS: '2' } });
      await waitFor(() => existsSync(path.join(run, 'checkpoint')) || existsSync(path.join(run, 'checkpoint.old')), 60_000, 5);
      await new Promise((r) => setTimeout(r, delay - 600));
      child.kill('SIGKILL');
      await new Promise((res) => child.on('exit', res));
      await recoverDirectory(path.join(run, 'checkpoint'));
      const state = JSON.parse(readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8'));
      expect(state.step).to.be.greaterThan(0);
      using img = await TopKSAE.load(path.join(run, 'checkpoint', 'image'));
      using txt = await TopKSAE.load(path.join(run, 'checkpoint', 'text'));
      expect(img.status().step).to.equal(state.step);
      expect(txt.status().step).to.equal(state.step);
    }
  });
});

/** Loads an SAE once for a synchronous-looking `using` block. */
class TopKSAEHolder {
  readonly ready: Promise<TopKSAE>;
  constructor(dir: string) {
    this.ready = TopKSAE.load(dir);
  }
  [Symbol.dispose](): void {
    void this.ready.then((s) => s.dispose());
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, pollMs = 50): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
