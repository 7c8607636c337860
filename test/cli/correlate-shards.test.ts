import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseSafetensors } from '../../lib/index.js';
import { cmsaeInProcess } from '../helpers/cli-run.js';
import { plantedSuite } from '../helpers/planted-suite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');
const cmsae = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_THREADS: '2' } });

/** perm and matched_correlation of a saved pair, as plain arrays. */
function alignmentOf(pairDir: string): { perm: number[]; matched: number[] } {
  const st = parseSafetensors(readFileSync(path.join(pairDir, 'alignment.safetensors')));
  return { perm: Array.from(st.tensors.get('perm')!.data), matched: Array.from(st.tensors.get('matched_correlation')!.data) };
}

describe('cmsae correlate / align --shards', function () {
  this.timeout(120_000);
  const { dir, data: p } = plantedSuite({ n: 2000, d: 16, C: 8, active: 2 });
  const trainArgs = (out: string, extra: string[] = []) => ['train', '--image', p.imagePath, '--text', p.textPath, '--method', 'posthoc', '--m', '24', '--k', '2', '--epochs', '4', '--batch-size', '100', '--lr', '4e-3', '--quiet', '--out', out, ...extra];
  const run = () => path.join(dir, 'run');
  const shard = (name: string) => path.join(dir, 'shards', name);

  before(async () => {
    const t = await cmsaeInProcess(trainArgs(run()));
    expect(t.status, t.stderr).to.equal(0);
  });

  it('two shards (in any order) align to the permutation of align --run, and to the bits of a single shard', () => {
    const ref = path.join(dir, 'ref-pair');
    const a = cmsae(['align', '--run', run(), '--out', ref]);
    expect(a.status, a.stderr).to.equal(0);
    expect(a.stdout).to.match(/aligned 12 latents on 1900 pairs .*; plan dense, [\d.]+ [GM]iB planned of a [\d.]+ [GM]iB budget -> /);

    const c0 = cmsae(['correlate', '--run', run(), '--rows', '0:700', '--out', shard('s0.codes')]);
    expect(c0.status, c0.stderr).to.equal(0);
    expect(c0.stdout).to.match(/^correlated rows 0:700 \(700 of 1900 alignment rows\) in [\d.]+ s: \d+ nonzeros \(image \d+, text \d+\), \d+ bytes -> .*s0\.codes\n$/);
    // b is clamped to the rows there are.
    const c1 = cmsae(['correlate', '--run', run(), '--rows', '700:100000', '--out', shard('s1.codes')]);
    expect(c1.status, c1.stderr).to.equal(0);
    expect(c1.stdout).to.match(/^correlated rows 700:1900 \(1200 of 1900 alignment rows\)/);
    expect(readFileSync(shard('s0.codes')).subarray(0, 8).toString('latin1')).to.equal('CMSAECS1');

    const x = path.join(dir, 'sharded-pair');
    const s = cmsae(['align', '--run', run(), '--shards', shard('s1.codes'), shard('s0.codes'), '--out', x]);
    expect(s.status, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/aligned 12 latents on 1900 pairs from 2 shards .*; plan (dense|large), [\d.]+ [GM]iB planned of a [\d.]+ [GM]iB budget -> .*sharded-pair\n$/);
    const want = alignmentOf(ref), got = alignmentOf(x);
    // The code store evaluates the correlation in the accumulator's order: the same float32 bits.
    expect(got).to.deep.equal(want);

    // One shard of all rows gives the same bits as the two.
    const all = cmsae(['correlate', '--run', run(), '--rows', '0:1900', '--out', shard('all.codes')]);
    expect(all.status, all.stderr).to.equal(0);
    const one = path.join(dir, 'one-shard-pair');
    const o = cmsae(['align', '--run', run(), '--shards', shard('all.codes'), '--out', one]);
    expect(o.status, o.stderr).to.equal(0);
    expect(alignmentOf(one)).to.deep.equal(got);
    expect(readFileSync(path.join(one, 'alignment.safetensors'))).to.deep.equal(readFileSync(path.join(x, 'alignment.safetensors')));
  });

  it('--path and --memory-budget choose the path and report the plan; the large-m path gives the dense alignment', async () => {
    const ref = alignmentOf(path.join(dir, 'ref-pair'));
    const large = path.join(dir, 'large-pair');
    const l = await cmsaeInProcess(['align', '--run', run(), '--path', 'large', '--memory-budget', '1', '--out', large]);
    expect(l.status, l.stderr).to.equal(0);
    expect(l.stdout).to.match(/; plan large, [\d.]+ [GM]iB planned of a 1\.000 GiB budget -> /);
    expect(alignmentOf(large)).to.deep.equal(ref);
    const ls = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('s0.codes'), shard('s1.codes'), '--path', 'large', '--out', path.join(dir, 'large-shards')]);
    expect(ls.status, ls.stderr).to.equal(0);
    expect(ls.stdout).to.match(/; plan large, /);
    expect(alignmentOf(path.join(dir, 'large-shards'))).to.deep.equal(ref);
    // A budget the dense path cannot fit: ERR_NOMEM says what it needs.
    const tiny = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('all.codes'), '--path', 'dense', '--memory-budget', '1e-9', '--out', path.join(dir, 'nomem')]);
    expect(tiny.status).to.equal(1);
    expect(tiny.stderr).to.match(/^cmsae: ERR_NOMEM: the dense alignment .* but the memory budget is/);
    for (const bad of [['--path', 'fast'], ['--memory-budget', '0'], ['--memory-budget', 'lots']]) {
      const r = await cmsaeInProcess(['align', '--run', run(), ...bad, '--out', path.join(dir, 'never')]);
      expect(r.status, bad.join(' ')).to.equal(2);
    }
    expect(existsSync(path.join(dir, 'never'))).to.equal(false);
  });

  it('bad --rows is bad usage (exit 2) with a clear message, and writes nothing', async () => {
    for (const rows of ['bad', '5', '5:5', '9:3', '-1:4', '1.5:3', '0:1e3']) {
      const r = await cmsaeInProcess(['correlate', '--run', run(), '--rows', rows, '--out', shard('never.codes')]);
      expect(r.status, rows).to.equal(2);
      expect(r.stderr, rows).to.match(/--rows .*expected a:b/);
    }
    const past = await cmsaeInProcess(['correlate', '--run', run(), '--rows', '1900:2000', '--out', shard('never.codes')]);
    expect(past.status).to.equal(2);
    expect(past.stderr).to.match(/^cmsae: ERR_ARG: --rows 1900:2000 starts past the end: the run's alignment has 1900 rows/);
    expect(existsSync(shard('never.codes'))).to.equal(false);
  });

  it('shards that do not belong: a corrupted file (ERR_FORMAT), another run (ERR_ARG), overlaps and a missing shard, each naming the cause', async () => {
    const corrupt = shard('corrupt.codes');
    const bytes = readFileSync(shard('s0.codes'));
    bytes[bytes.length >> 1] ^= 0x10;
    writeFileSync(corrupt, bytes);
    const c = await cmsaeInProcess(['align', '--run', run(), '--shards', corrupt, shard('s1.codes'), '--out', path.join(dir, 'never')]);
    expect(c.status).to.equal(1);
    expect(c.stderr).to.match(/^cmsae: ERR_FORMAT: .*corrupt\.codes: code store shard checksum mismatch/);
    writeFileSync(shard('text.codes'), 'not a shard at all');
    const t = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('s0.codes'), shard('text.codes'), '--out', path.join(dir, 'never')]);
    expect(t.status).to.equal(1);
    expect(t.stderr).to.match(/^cmsae: ERR_FORMAT: .*text\.codes: /);

    // Another run on the same data (same widths): its shard refuses to align with this run's SAEs.
    const other = path.join(dir, 'other');
    expect((await cmsaeInProcess(trainArgs(other, ['--epochs', '1', '--seed', '7']))).status).to.equal(0);
    const oc = await cmsaeInProcess(['correlate', '--run', other, '--rows', '0:700', '--out', shard('other.codes')]);
    expect(oc.status, oc.stderr).to.equal(0);
    const o = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('other.codes'), shard('s1.codes'), '--out', path.join(dir, 'never')]);
    expect(o.status).to.equal(2);
    expect(o.stderr).to.match(/^cmsae: ERR_ARG: .*other\.codes was not encoded by the SAE pair of run /);
    // ... and with a shard of its own run: the tags differ.
    const mixed = await cmsaeInProcess(['align', '--run', other, '--shards', shard('other.codes'), shard('s1.codes'), '--out', path.join(dir, 'never')]);
    expect(mixed.status).to.equal(2);
    expect(mixed.stderr).to.match(/^cmsae: ERR_ARG: .*s1\.codes was not encoded by the SAE pair of run /);

    copyFileSync(shard('s0.codes'), shard('s0-again.codes'));
    const overlap = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('s0.codes'), shard('s1.codes'), shard('s0-again.codes'), '--out', path.join(dir, 'never')]);
    expect(overlap.status).to.equal(2);
    expect(overlap.stderr).to.match(/^cmsae: ERR_ARG: .*s0-again\.codes: code store shards overlap/);
    const missing = await cmsaeInProcess(['align', '--run', run(), '--shards', shard('s1.codes'), '--out', path.join(dir, 'never')]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.match(/^cmsae: ERR_ARG: the shards \(1\) hold 1200 rows but the alignment of run .* has 1900/);
    expect(existsSync(path.join(dir, 'never'))).to.equal(false);
  });
});
