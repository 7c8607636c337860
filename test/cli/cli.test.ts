import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { EmbeddingFile, Normalizer, TopKSAE, npyBytes, parseSafetensors } from '../../lib/index.js';
import { SAVE_FAULT_POINTS, recoverDirectory, type SaveFaultPoint } from '../../lib/io/atomic.js';
import { cmsaeInProcess } from '../helpers/cli-run.js';
import { plantedSuite } from '../helpers/planted-suite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');
const cmsae = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_THREADS: '2' } });

describe('cmsae train / align / encode', function () {
  this.timeout(180_000);
  const { dir, data: p } = plantedSuite({ n: 2000, d: 16, C: 8, active: 2 });
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

  it('reads options from a YAML config file, flags override it; --help shows an example on every command', async () => {
    const yaml = path.join(dir, 'run.yaml');
    writeFileSync(yaml, `method: separate\ndata:\n  image: { path: ${p.imagePath} }\n  text: { path: ${p.textPath} }\nsae: { m: 16, k: 2 }\ntrain:\n  epochs: 1\n  batchSize: 200\n  lr: 0.001\n`);
    const run = path.join(dir, 'yaml-run');
    const r = await cmsaeInProcess(['train', '--config', yaml, '--lr', '0.002', '--quiet', '--out', run]);
    expect(r.status, r.stderr).to.equal(0);
    const saved = JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8'));
    expect(saved.method).to.equal('separate');
    expect(saved.train.lr).to.equal(0.002);
    expect(saved.train.batchSize).to.equal(200);
    for (const cmd of ['train', 'align', 'encode', 'info', 'toy']) {
      const h = await cmsaeInProcess([cmd, '--help']);
      expect(h.status).to.equal(0);
      expect(h.stdout).to.match(/Example/);
    }
  });

  it('exit codes: 2 for bad usage, 1 for failures, each with a one-line message', async () => {
    const bad = await cmsaeInProcess(['train', '--epochs', 'abc', '--out', path.join(dir, 'x')]);
    expect(bad.status).to.equal(2);
    const cfg = await cmsaeInProcess(['train', '--method', 'nope', '--image', p.imagePath, '--text', p.textPath, '--out', path.join(dir, 'y')]);
    expect(cfg.status).to.equal(2);
    expect(cfg.stderr.trim().split('\n')).to.have.length(1);
    expect(cfg.stderr).to.match(/method/);
    const missing = await cmsaeInProcess(['train', '--method', 'shared', '--image', path.join(dir, 'none.npy'), '--text', p.textPath, '--out', path.join(dir, 'z')]);
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.match(/^cmsae: ERR_IO: .*none\.npy/);
    writeFileSync(path.join(dir, 'wide.npy'), npyBytes({ rows: 3, cols: 20, data: new Float32Array(60).fill(1) }));
    const dim = await cmsaeInProcess(['encode', '--model', path.join(dir, 'run', 'final', 'image'), '--input', path.join(dir, 'wide.npy'), '--out', path.join(dir, 'w.safetensors')]);
    expect(dim.status).to.equal(1);
    expect(dim.stderr).to.match(/ERR_SHAPE: .*20 values per row but the model expects d = 16/);
    expect(existsSync(path.join(dir, 'w.safetensors'))).to.equal(false);
    expect((await cmsaeInProcess(['nosuchcommand'])).status).to.equal(2);
  });

  it('numeric flags of train, align and toy are checked: malformed or out-of-range values are bad usage (exit 2) and write nothing', async () => {
    const out = path.join(dir, 'never');
    const train = ['train', '--image', p.imagePath, '--text', p.textPath, '--method', 'shared', '--out', out];
    const bad: string[][] = [
      ['align', '--run', out, '--samples', 'abc'],
      ['align', '--run', out, '--samples', '-1'],
      ['align', '--run', out, '--samples', '2.5'],
      ['align', '--run', out, '--min-fires', '0'],
      [...train, '--epochs', '0x10'],
      [...train, '--epochs', ''],
      [...train, '--m', '1.5'],
      [...train, '--k', '-2'],
      [...train, '--batch-size', '1e400'],
      [...train, '--lr', '-1'],
      [...train, '--lr', 'Infinity'],
      [...train, '--seed', '-1'],
      [...train, '--checkpoint-every', '3steps'],
      [...train, '--shape', '2,x'],
      [...train, '--threads', '0'],
      ['toy', '--out', out, '--train-pairs', 'abc'],
      ['toy', '--out', out, '--train-pairs', '0'],
      ['toy', '--out', out, '--alpha', '1.5'],
      ['toy', '--out', out, '--noise', 'NaN'],
      ['toy', '--out', out, '--seed', '1.5'],
      ['info', '--threads', '2'],
    ];
    for (const args of bad) {
      const r = await cmsaeInProcess(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr.trim(), args.join(' ')).not.to.equal('');
    }
    expect(existsSync(out)).to.equal(false);
  });

  it("train refuses another run's directory unless --force; --resume takes no configuration flags", async () => {
    const out = path.join(dir, 'taken');
    const first = await cmsaeInProcess(trainArgs(out, ['--method', 'shared', '--epochs', '1']));
    expect(first.status, first.stderr).to.equal(0);
    const config = readFileSync(path.join(out, 'config.json'));
    const other = await cmsaeInProcess(trainArgs(out, ['--method', 'separate', '--epochs', '1']));
    expect(other.status).to.equal(1);
    expect(other.stderr.trim().split('\n')).to.have.length(1);
    expect(other.stderr).to.match(/^cmsae: ERR_STATE: .*taken already holds a shared run \(config\.json\), a checkpoint at step 19, final models \(shared\).*--force/);
    expect(Buffer.compare(readFileSync(path.join(out, 'config.json')), config)).to.equal(0);
    const forced = await cmsaeInProcess(trainArgs(out, ['--method', 'separate', '--epochs', '1', '--force']));
    expect(forced.status, forced.stderr).to.equal(0);
    expect(readdirSync(path.join(out, 'final')).sort()).to.deep.equal(['image', 'text']);
    const withLr = await cmsaeInProcess(['train', '--resume', '--lr', '1', '--out', out]);
    expect(withLr.status).to.equal(2);
    expect(withLr.stderr).to.match(/--lr would be ignored/);
    expect((await cmsaeInProcess(['train', '--resume', '--force', '--out', out])).status).to.equal(2);
  });

  it('train --lr 1e12 exits 1 with ERR_DIVERGED naming the step; the last good checkpoint stays and metrics.jsonl holds no null', async () => {
    const out = path.join(dir, 'diverge');
    const r = await cmsaeInProcess(trainArgs(out, ['--lr', '1e12', '--schedule', 'constant', '--checkpoint-every', '1']));
    expect(r.status).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    const m = /^cmsae: ERR_DIVERGED: training diverged at step (\d+) of 76 .*last good checkpoint \(step (\d+)\).*Lower the learning rate.*check the inputs/.exec(r.stderr);
    expect(m, r.stderr).not.to.equal(null);
    expect(Number(m![2])).to.equal(Number(m![1]) - 1);
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).not.to.match(/:null[,}\]]/);
    expect(JSON.parse(readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8')).step).to.equal(Number(m![2]));
    using img = await TopKSAE.load(path.join(out, 'checkpoint', 'image'));
    expect(img.status().step).to.equal(Number(m![2]));
    expect(existsSync(path.join(out, 'final'))).to.equal(false);
  });

  it('outputs and inputs that are not what they should be: typed errors before any work (align --out, toy and batch sizes that cannot fit)', async () => {
    const run = path.join(dir, 'small');
    expect((await cmsaeInProcess(trainArgs(run, ['--epochs', '1']))).status).to.equal(0);
    const notPair = path.join(dir, 'not-a-pair');
    mkdirSync(notPair);
    writeFileSync(path.join(notPair, 'notes.txt'), 'mine');
    const a = await cmsaeInProcess(['align', '--run', run, '--out', notPair]);
    expect(a.status).to.equal(1);
    expect(a.stderr).to.match(/^cmsae: ERR_IO: .*not-a-pair holds files crossmodal-sae did not write \(notes\.txt\)/);
    expect(readdirSync(notPair)).to.deep.equal(['notes.txt']);
    const again = await cmsaeInProcess(['align', '--run', run]);
    expect(again.status, again.stderr).to.equal(0);
    const toy = await cmsaeInProcess(['toy', '--out', path.join(dir, 'toy'), '--train-pairs', '1e12']);
    expect(toy.status).to.equal(1);
    expect(toy.stderr).to.match(/^cmsae: ERR_RANGE: toy dataset: train_image\.npy would hold 128000000000000 float32 values.*at most \d+ train pairs fit/);
    const batch = await cmsaeInProcess(trainArgs(path.join(dir, 'batch'), ['--batch-size', '99999999999']));
    expect(batch.status).to.equal(1);
    expect(batch.stderr).to.match(/^cmsae: ERR_RANGE: batchSize 99999999999 makes no batch of the 1900 training rows: at most 1900 rows fit/);
    const cfgDir = await cmsaeInProcess(['train', '--config', dir, '--out', path.join(dir, 'cfgdir')]);
    expect(cfgDir.status).to.equal(1);
    expect(cfgDir.stderr).to.match(/^cmsae: ERR_IO: config file .* is a directory/);
  });

  it('a FIFO as config file and an output under /proc fail at once with ERR_IO (no hang)', function () {
    const fifo = path.join(dir, 'config.fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0 || !existsSync('/proc/self')) this.skip();
    const opts = { cwd: root, encoding: 'utf8' as const, timeout: 60_000, env: { ...process.env, CMSAE_THREADS: '2' } };
    const f = spawnSync(process.execPath, ['--import', 'tsx', entry, 'train', '--config', fifo, '--out', path.join(dir, 'fifo-run')], opts);
    expect(f.error, 'the command hung').to.equal(undefined);
    expect(f.status).to.equal(1);
    expect(f.stderr).to.match(/^cmsae: ERR_IO: config file .*config\.fifo is a FIFO/);
    const proc = spawnSync(process.execPath, ['--import', 'tsx', entry, ...trainArgs('/proc/cmsae-x/run')], opts);
    expect(proc.error, 'the command hung').to.equal(undefined);
    expect(proc.status).to.equal(1);
    expect(proc.stderr).to.match(/^cmsae: ERR_IO: .*\/proc\/cmsae-x/);
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

  it('a process killed at each point inside a checkpoint save resumes to the weights of an uninterrupted run, leaving no leftovers', async () => {
    const env = (point?: string) => ({ ...process.env, CMSAE_THREADS: '2', ...(point ? { CMSAE_TEST_KILL_IN_SAVE: `${point}:3` } : {}) });
    const spawnTrain = (args: string[], point?: string) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: env(point) });
    const args = (out: string) => trainArgs(out, ['--epochs', '1', '--checkpoint-every', '1']);
    const reference = path.join(dir, 'kill-reference');
    expect(spawnTrain(args(reference)).status).to.equal(0);
    const leftovers = (run: string) => readdirSync(run).filter((e) => e.startsWith('checkpoint.')).map((e) => e.split('.')[1].split('-')[0]).sort();
    // The third save is the checkpoint of step 3: what is on disk after the kill at each point.
    const expected: Record<SaveFaultPoint, { step: number | null; leftovers: string[] }> = {
      'tmp-partial': { step: 2, leftovers: ['tmp'] },
      'tmp-complete': { step: 2, leftovers: ['tmp'] },
      'old-moved': { step: null, leftovers: ['old', 'tmp'] },
      renamed: { step: 3, leftovers: ['old'] },
    };
    for (const point of SAVE_FAULT_POINTS) {
      const run = path.join(dir, `kill-${point}`);
      const killed = spawnTrain(args(run), point);
      expect(killed.signal, `${point}: ${killed.stderr}`).to.equal('SIGKILL');
      const state = path.join(run, 'checkpoint', 'state.json');
      expect(existsSync(state) ? JSON.parse(readFileSync(state, 'utf8')).step : null, point).to.equal(expected[point].step);
      expect(leftovers(run), point).to.deep.equal(expected[point].leftovers);
      if (expected[point].step === null) {
        // Killed between the renames: recovery takes the complete new copy (step 3), not the old one (step 2).
        expect(await recoverDirectory(path.join(run, 'checkpoint'))).to.equal(true);
        expect(JSON.parse(readFileSync(state, 'utf8')).step).to.equal(3);
      }
      const resumed = spawnTrain(['train', '--resume', '--quiet', '--out', run]);
      expect(resumed.status, `${point}: ${resumed.stderr}`).to.equal(0);
      expect(leftovers(run), `${point}: leftovers after the resumed run`).to.deep.equal([]);
      for (const side of ['image', 'text']) {
        const w = (r: string) => readFileSync(path.join(r, 'final', side, 'sae_weights.safetensors'));
        expect(Buffer.compare(w(run), w(reference)), `${point}: final ${side} weights`).to.equal(0);
      }
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
