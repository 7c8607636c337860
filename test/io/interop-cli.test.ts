import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { TopKSAE, npyBytes, parseSafetensors, type Matrix } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { saveSae } from '../../lib/io/checkpoint.js';
import { dense, exactValues, expectClose, l2Rows } from '../helpers/interop.js';
import { Rng } from '../helpers/random.js';
import { saelensCfg, saelensForward, saelensLoadV6, writeSaelens } from '../helpers/saelens-reference.js';
import { sparsifyLoad } from '../helpers/sparsify-reference.js';
import { readPlainSafetensors } from '../helpers/st-plain.js';
import { tempDir } from '../helpers/tmp.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(repo, 'test', 'helpers', 'cli-entry.ts');
const d = 8, m = 24, k = 3, n = 50;

/** Runs the CLI in this process, capturing what it writes. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

function codesOf(file: string): { indices: Int32Array; values: Float32Array; meta: Record<string, string> } {
  const st = parseSafetensors(readFileSync(file));
  return { indices: st.tensors.get('indices')!.data as Int32Array, values: st.tensors.get('values')!.data as Float32Array, meta: st.metadata };
}

describe('cmsae encode / export with foreign checkpoints, odd paths and interruptions', function () {
  this.timeout(60_000);
  const { dir: root, cleanup } = tempDir('cmsae-interop-é-');
  after(cleanup);
  const x: Matrix = { rows: n, cols: d, data: new Rng(3).normals(n * d, 2) };
  const input = path.join(root, 'embeddings.npy');
  let sae: TopKSAE;
  before(() => {
    writeFileSync(input, npyBytes(x));
    sae = TopKSAE.create({ d, m, k, seed: 7 });
  });
  after(() => sae.dispose());

  it('non-ASCII model and output paths give a readable file (header length in bytes); each model says which normalization it applied', async () => {
    const bare = path.join(root, 'modèle-τ');
    await sae.save(bare);
    const out = path.join(root, 'codes-ü-日本.safetensors');
    const r = await cli(['encode', '--model', bare, '--input', input, '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/normalization: l2 \(assumed: a crossmodal-sae checkpoint outside its run directory/);
    const c = codesOf(out);
    expect(c.meta.model).to.equal(path.resolve(bare));
    const plain = readPlainSafetensors(out); // an independent parser reads it too
    expect(plain.tensors.get('indices')!.shape).to.deep.equal([n, k]);
    const want = sae.encode({ rows: n, cols: d, data: l2Rows(x.data, n, d) });
    expect(Array.from(c.indices)).to.deep.equal(Array.from(want.indices));
    expect(Array.from(c.values)).to.deep.equal(Array.from(want.values));

    // a checkpoint that records its normalization
    const recorded = path.join(root, 'recorded');
    await saveSae(sae, recorded, { normalization: { kind: 'none' } });
    const r2 = await cli(['encode', '--model', recorded, '--input', input, '--out', out]);
    expect(r2.stdout).to.match(/normalization: none \(recorded in /);
    expect(Array.from(codesOf(out).values)).to.deep.equal(Array.from(sae.encode(x).values));

    // inside a run: the run's normalization.json
    const run = path.join(root, 'run');
    await sae.save(path.join(run, 'final', 'image'));
    writeFileSync(path.join(run, 'config.json'), '{}');
    writeFileSync(path.join(run, 'normalization.json'), JSON.stringify({ kind: 'none', mean: {} }));
    const r3 = await cli(['encode', '--model', path.join(run, 'final', 'image'), '--input', input, '--out', out]);
    expect(r3.code, r3.stderr).to.equal(0);
    expect(r3.stdout).to.match(/normalization: none \(run /);

    // a plain SAELens checkpoint: none (its forward normalizes nothing), codes equal SAELens's
    const sl = path.join(root, 'saelens-sae');
    const rr = new Rng(5);
    const w = { W_enc: exactValues(rr, d * m), b_enc: exactValues(rr, m, 7), W_dec: exactValues(rr, m * d), b_dec: exactValues(rr, d, 7) };
    writeSaelens(sl, saelensCfg(5, { arch: 'topk', d, m, k, dtype: 'F32' }), w, 'F32');
    const r4 = await cli(['encode', '--model', sl, '--input', input, '--out', out]);
    expect(r4.code, r4.stderr).to.equal(0);
    expect(r4.stdout).to.match(/normalization: none \(SAELens pre-6.0 layout .*normalizes nothing\)/);
    const got = codesOf(out);
    expect(got.meta.normalization).to.equal('none');
    expectClose(dense({ rows: n, k, indices: got.indices, values: got.values }, m), saelensForward(saelensLoadV6(sl), x.data, n).acts, 'codes', { pattern: true });
  });

  it('--out that is a directory, a FIFO or under a file is ERR_IO; a missing parent is created', async () => {
    const model = path.join(root, 'modèle-τ');
    const asDir = path.join(root, 'a-dir');
    mkdirSync(asDir);
    const r1 = await cli(['encode', '--model', model, '--input', input, '--out', asDir]);
    expect([r1.code, r1.stderr]).to.satisfy(([c, e]: [number, string]) => c === 1 && /ERR_IO: .*a directory/.test(e));
    if (spawnSync('mkfifo', [path.join(root, 'fifo')]).status === 0) {
      const r2 = await cli(['encode', '--model', model, '--input', input, '--out', path.join(root, 'fifo')]);
      expect(r2.code).to.equal(1);
      expect(r2.stderr).to.match(/ERR_IO: .*FIFO/);
    }
    const r3 = await cli(['encode', '--model', model, '--input', input, '--out', path.join(input, 'codes.safetensors')]);
    expect(r3.code).to.equal(1);
    expect(r3.stderr).to.match(/ERR_IO/);
    const nested = path.join(root, 'new', 'deeper', 'codes.safetensors');
    const r4 = await cli(['encode', '--model', model, '--input', input, '--out', nested]);
    expect(r4.code, r4.stderr).to.equal(0);
    expect(existsSync(nested)).to.equal(true);
    const r5 = await cli(['encode', '--model', model, '--input', input, '--out', path.join(root, 'o.safetensors'), '--batch-size', '99999999999']);
    expect(r5.code, r5.stderr).to.equal(0); // a batch larger than the file is just the whole file
    expect(readdirSync(root).filter((e) => e.includes('.tmp-'))).to.deep.equal([]);
  });

  /** Starts an encode that pauses after its first batch (fault-injection point) and resolves once it is paused. */
  function heldEncode(out: string, release: string) {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'encode', '--model', path.join(root, 'modèle-τ'), '--input', input, '--out', out, '--batch-size', '10'], {
      cwd: repo,
      env: { ...process.env, CMSAE_THREADS: '1', CMSAE_FAULT_ENCODE_HOLD: release },
    });
    let stderr = '';
    const held = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (b) => {
        stderr += b;
        if (stderr.includes('encode holding')) resolve();
      });
      child.on('exit', () => reject(new Error(`encode exited before holding: ${stderr}`)));
    });
    const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
    return { child, held, exit };
  }

  it('Ctrl-C during encode: a message, the temporary file removed, exit 130', async () => {
    const out = path.join(root, 'interrupted.safetensors');
    const e = heldEncode(out, path.join(root, 'never'));
    await e.held;
    expect(existsSync(`${out}.tmp-${e.child.pid}`)).to.equal(true);
    e.child.kill('SIGINT');
    const r = await e.exit;
    expect(r.code, r.stderr).to.equal(130);
    expect(r.stderr).to.match(/interrupted; .*interrupted\.safetensors was not written/);
    expect(readdirSync(root).filter((f) => f.startsWith('interrupted'))).to.deep.equal([]);
  });

  it('a failed rename leaves no temporary file; temporary files of killed encodes are removed by the next one', async () => {
    const out = path.join(root, 'blocked.safetensors');
    const release = path.join(root, 'release');
    const e = heldEncode(out, release);
    await e.held;
    mkdirSync(out); // the output became a non-empty directory while encoding: rename(2) fails
    writeFileSync(path.join(out, 'keep'), 'x');
    writeFileSync(release, '');
    const r = await e.exit;
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/ERR_IO: cannot write the output file/);
    expect(readdirSync(root).filter((f) => f.startsWith('blocked.safetensors.tmp-'))).to.deep.equal([]);

    const out2 = path.join(root, 'killed.safetensors');
    const k1 = heldEncode(out2, path.join(root, 'never'));
    await k1.held;
    k1.child.kill('SIGKILL');
    await k1.exit;
    const stale = `${out2}.tmp-${k1.child.pid}`;
    expect(existsSync(stale)).to.equal(true);
    const live = `${out2}.tmp-${process.ppid}`; // a temporary file of a live process is not touched
    writeFileSync(live, 'in use');
    const r2 = await cli(['encode', '--model', path.join(root, 'modèle-τ'), '--input', input, '--out', out2]);
    expect(r2.code, r2.stderr).to.equal(0);
    expect(existsSync(stale)).to.equal(false);
    expect(existsSync(live)).to.equal(true);
    expect(codesOf(out2).indices.length).to.equal(n * k);
  });

  it('cmsae export: an l2 run exports to SAELens exactly; sparsify needs --normalized-input', async () => {
    const run = path.join(root, 'l2-run');
    await sae.save(path.join(run, 'final', 'image'));
    writeFileSync(path.join(run, 'config.json'), '{}');
    writeFileSync(path.join(run, 'normalization.json'), JSON.stringify({ kind: 'l2', mean: {} }));
    const out = path.join(root, 'exported-é');
    const r = await cli(['export', '--model', path.join(run, 'final', 'image'), '--format', 'saelens', '--out', out, '--model-name', 'openai/clip-vit-base-patch32']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/normalization: l2 \(run .*\); folded as constant_norm_rescale/);
    const cfg = JSON.parse(readFileSync(path.join(out, 'cfg.json'), 'utf8'));
    expect(cfg.model_name).to.equal('openai/clip-vit-base-patch32');
    const want = saelensForward(saelensLoadV6(out), x.data, n);
    expectClose(dense(sae.encode({ rows: n, cols: d, data: l2Rows(x.data, n, d) }), m), want.acts, 'codes', { pattern: true });
    const sp = path.join(root, 'exported-sparsify');
    const r2 = await cli(['export', '--model', path.join(run, 'final', 'image'), '--format', 'sparsify', '--out', sp]);
    expect(r2.code).to.equal(2);
    expect(r2.stderr).to.match(/sparsify cannot express the 'l2'.*--normalized-input/);
    const r3 = await cli(['export', '--model', path.join(run, 'final', 'image'), '--format', 'sparsify', '--out', sp, '--normalized-input']);
    expect(r3.code, r3.stderr).to.equal(0);
    expect(sparsifyLoad(sp).m).to.equal(m);
    expect(JSON.parse(readPlainSafetensors(path.join(sp, 'sae.safetensors')).metadata!.cmsae_export)).to.include({ input_normalization: 'l2', normalization_carried: 'caller normalizes' });
    const r4 = await cli(['export', '--model', path.join(run, 'final', 'image'), '--format', 'onnx', '--out', sp]);
    expect(r4.code).to.equal(2);
  });
});
