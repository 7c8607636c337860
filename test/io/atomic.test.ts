import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AlignedPair, CorrelationAccumulator, TopKSAE, generateToy, writeToy } from '../../lib/index.js';
import { MANIFEST_FILE, recoverDirectory, writeDirectoryAtomic, writeFileAtomic } from '../../lib/io/atomic.js';
import { expectSaeRejection } from '../helpers/expect-error.js';
import { savedFiles } from '../helpers/saved-files.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const child = path.join(root, 'test', 'helpers', 'save-child.ts');

/** Saves `version` into `dir` in a child process that SIGKILLs itself at `point` (or finishes, without one). */
function saveInChild(dir: string, version: string, point?: string): void {
  const env = { ...process.env };
  if (point) env.CMSAE_TEST_KILL_IN_SAVE = point;
  else delete env.CMSAE_TEST_KILL_IN_SAVE;
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, dir, version], { cwd: root, encoding: 'utf8', env });
  if (point) expect(r.signal, `child killed at ${point}: ${r.stderr}`).to.equal('SIGKILL');
  else expect(r.status, r.stderr).to.equal(0);
}

const versionIn = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')).version as string;
const siblings = (dir: string) => readdirSync(path.dirname(dir)).filter((e) => e.startsWith(`${path.basename(dir)}.`)).sort();
const tree = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
// Each fault point inside a save, and the recovery after it, is checked on a killed `cmsae train` (test/cli/cli.test.ts).

describe('atomic directory saves', function () {
  this.timeout(120_000);
  const { dir: tmp, cleanup } = tempDir();
  after(cleanup);

  it('replaces an absent, empty or own directory (this version or an earlier one), leaving exactly the new files', async () => {
    const fresh = path.join(tmp, 'fresh', 'nested', 'dir');
    await writeDirectoryAtomic(fresh, savedFiles('a'));
    expect(tree(fresh)).to.deep.equal(['image', 'image/cfg.json', 'image/sae_weights.safetensors', 'state.json']);
    await writeDirectoryAtomic(fresh, { 'state.json': JSON.stringify({ format_version: 1, step: 0, version: 'b' }) });
    expect(tree(fresh)).to.deep.equal(['state.json']);
    expect(siblings(fresh)).to.deep.equal([]);

    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    await writeDirectoryAtomic(empty, savedFiles('c'));
    expect(versionIn(empty)).to.equal('c');

    // A checkpoint as versions before the manifest wrote it (with the completeness marker a crash could leave).
    const legacy = path.join(tmp, 'legacy');
    mkdirSync(path.join(legacy, 'shared'), { recursive: true });
    for (const f of ['sae_weights.safetensors', 'trainer_state.safetensors']) writeFileSync(path.join(legacy, 'shared', f), 'old');
    writeFileSync(path.join(legacy, 'shared', 'cfg.json'), JSON.stringify({ cmsae: { format_version: 1 } }));
    writeFileSync(path.join(legacy, 'state.json'), JSON.stringify({ format_version: 1, step: 3, epoch: 0, batch: 3, elapsed_ms: 1 }));
    writeFileSync(path.join(legacy, '.complete'), '');
    await writeDirectoryAtomic(legacy, savedFiles('d'));
    expect(tree(legacy)).to.deep.equal(['image', 'image/cfg.json', 'image/sae_weights.safetensors', 'state.json']);

    // An SAE saved with its training state, then without it.
    const sae = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 1 });
    const saeDir = path.join(tmp, 'sae');
    await sae.save(saeDir);
    await sae.save(saeDir, { includeTrainingState: false });
    expect(readdirSync(saeDir).sort()).to.deep.equal(['cfg.json', 'sae_weights.safetensors']);
    sae.dispose();
  });

  it('refuses to replace a regular file, a symbolic link or a directory holding other files, and leaves them as they were', async () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'precious');
    await expectSaeRejection(writeDirectoryAtomic(file, savedFiles('x')), 'ERR_IO', /a-file is a regular file.*refusing to replace it/);
    expect(readFileSync(file, 'utf8')).to.equal('precious');

    const target = path.join(tmp, 'link-target');
    mkdirSync(target);
    symlinkSync(target, path.join(tmp, 'link'));
    await expectSaeRejection(writeDirectoryAtomic(path.join(tmp, 'link'), savedFiles('x')), 'ERR_IO', /symbolic link/);

    const mixed = path.join(tmp, 'mixed');
    mkdirSync(path.join(mixed, 'image', 'photos'), { recursive: true });
    writeFileSync(path.join(mixed, 'notes.txt'), 'mine');
    writeFileSync(path.join(mixed, 'image', 'cat.jpg'), 'mine');
    writeFileSync(path.join(mixed, 'state.json'), 'mine');
    const e = await expectSaeRejection(writeDirectoryAtomic(mixed, savedFiles('x')), 'ERR_IO', /did not write/);
    expect(e.message).to.include('image/cat.jpg').and.to.include('image/photos/').and.to.include('notes.txt').and.not.to.include('state.json');
    expect(tree(mixed)).to.deep.equal(['image', 'image/cat.jpg', 'image/photos', 'notes.txt', 'state.json']);
    expect(readFileSync(path.join(mixed, 'state.json'), 'utf8')).to.equal('mine');
    expect(siblings(mixed)).to.deep.equal([]);

    // The same rule behind TopKSAE.save and the toy dataset writer.
    const sae = TopKSAE.create({ d: 6, m: 10, k: 2 });
    await expectSaeRejection(sae.save(mixed), 'ERR_IO', /notes\.txt/);
    await expectSaeRejection(sae.save(file), 'ERR_IO', /regular file/);
    sae.dispose();
    await expectSaeRejection(writeToy(mixed, generateToy({ d: 8, objects: 2, trainPairs: 4, evalImages: 2, zeroShotImages: 2, imageAttributes: 1, textAttributes: 1, externalDim: 2 })), 'ERR_IO', /notes\.txt/);
    expect(readFileSync(path.join(mixed, 'notes.txt'), 'utf8')).to.equal('mine');

    // A parent that is a file, and file names that escape the directory.
    await expectSaeRejection(writeDirectoryAtomic(path.join(file, 'sub'), savedFiles('x')), 'ERR_IO', /a-file is a regular file/);
    await expectSaeRejection(writeDirectoryAtomic(path.join(tmp, 'bad'), { '../escape.json': '{}' }), 'ERR_ARG', /invalid file name/);
    await expectSaeRejection(writeDirectoryAtomic(path.join(tmp, 'bad'), { [MANIFEST_FILE]: '{}' }), 'ERR_ARG', /reserved/);
    expect(existsSync(path.join(tmp, 'bad'))).to.equal(false);
  });

  it('writeFileAtomic refuses a directory at the target and a missing parent, with ERR_IO', async () => {
    mkdirSync(path.join(tmp, 'is-dir'));
    await expectSaeRejection(writeFileAtomic(path.join(tmp, 'is-dir'), 'x'), 'ERR_IO', /is a directory/);
    await expectSaeRejection(writeFileAtomic(path.join(tmp, 'no', 'such', 'f.json'), 'x'), 'ERR_IO', /does not exist/);
    expect(readdirSync(tmp).filter((e) => e.includes('.tmp-'))).to.deep.equal([]);
  });

  it('with several leftover copies the newest complete one wins; incomplete, tampered and foreign copies are never moved into place', async () => {
    const dir = path.join(tmp, 'many');
    await writeDirectoryAtomic(dir, savedFiles('v1'));
    // Three saves killed between their renames: the first moves v1 aside; every one leaves a complete copy.
    for (const v of ['v2', 'v3', 'v4']) saveInChild(dir, v, 'old-moved');
    saveInChild(dir, 'v5', 'tmp-partial');
    expect(existsSync(dir)).to.equal(false);
    // Garbage named like leftovers: a pid that is alive (ours) with files we never write, and one without a pattern.
    const foreign = `${dir}.old-${process.pid}-0badc0de`;
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'state.json'), 'garbage');
    writeFileSync(path.join(foreign, 'junk.bin'), 'garbage');
    mkdirSync(`${dir}.tmp-garbage`);
    writeFileSync(path.join(`${dir}.tmp-garbage`, 'state.json'), 'garbage');
    // The newest complete copy (v4), tampered with after the fact: its CRC no longer matches.
    const copies = siblings(dir).filter((s) => s.includes('.tmp-') && /^\d+-/.test(s.split('.tmp-')[1]));
    const byVersion = new Map(copies.map((c) => [existsSync(path.join(tmp, c, 'state.json')) ? versionIn(path.join(tmp, c)) : 'partial', c]));
    expect([...byVersion.keys()].sort()).to.deep.equal(['partial', 'v2', 'v3', 'v4']);
    const v4 = path.join(tmp, byVersion.get('v4')!, 'image', 'sae_weights.safetensors');
    writeFileSync(v4, readFileSync(v4, 'utf8').replace('v4', 'v9'));

    expect(await recoverDirectory(dir)).to.equal(true);
    expect(versionIn(dir)).to.equal('v3');
    expect(readFileSync(path.join(dir, 'image', 'sae_weights.safetensors'), 'utf8')).to.include('weights v3');
    // Leftovers of the dead children are removed; what is not recognisably ours stays.
    expect(siblings(dir)).to.deep.equal([path.basename(foreign), `${path.basename(dir)}.tmp-garbage`].sort());

    // Only garbage beside a missing directory: nothing is moved.
    const lonely = path.join(tmp, 'lonely');
    mkdirSync(`${lonely}.tmp-1-00000000`);
    writeFileSync(path.join(`${lonely}.tmp-1-00000000`, 'state.json'), 'no manifest');
    mkdirSync(`${lonely}.old-1-00000000`);
    writeFileSync(path.join(`${lonely}.old-1-00000000`, 'photo.jpg'), 'not ours');
    expect(await recoverDirectory(lonely)).to.equal(false);
    expect(existsSync(lonely)).to.equal(false);

    // An old copy alone (its new copy lost) is ours when it holds only our names: it comes back.
    const onlyOld = path.join(tmp, 'only-old');
    await writeDirectoryAtomic(onlyOld, savedFiles('v1'));
    saveInChild(onlyOld, 'v2', 'old-moved');
    for (const s of siblings(onlyOld)) if (s.includes('.tmp-')) rmSync(path.join(tmp, s), { recursive: true });
    expect(await recoverDirectory(onlyOld)).to.equal(true);
    expect(versionIn(onlyOld)).to.equal('v1');
  });

  it('a directory with only our file names is replaced only when its content says it is ours and of the same kind', async () => {
    using sae = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 1 });
    // Another tool's cfg.json; a SAELens checkpoint (cfg.json + sae_weights.safetensors, no cmsae block).
    const other = path.join(tmp, 'other-tool');
    mkdirSync(other);
    writeFileSync(path.join(other, 'cfg.json'), JSON.stringify({ my_experiment: 3 }));
    await expectSaeRejection(sae.save(other), 'ERR_IO', /did not write/);
    expect(JSON.parse(readFileSync(path.join(other, 'cfg.json'), 'utf8'))).to.deep.equal({ my_experiment: 3 });
    const saelens = path.join(tmp, 'saelens');
    mkdirSync(saelens);
    writeFileSync(path.join(saelens, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: 6, d_sae: 10, k: 2 }));
    writeFileSync(path.join(saelens, 'sae_weights.safetensors'), 'their weights');
    await expectSaeRejection(sae.save(saelens), 'ERR_IO', /did not write/);
    expect(readFileSync(path.join(saelens, 'sae_weights.safetensors'), 'utf8')).to.equal('their weights');

    // Ours, but another kind: a run's checkpoint and an SAE checkpoint are not replaced by a pair, and back.
    const ckpt = path.join(tmp, 'run-checkpoint');
    await writeDirectoryAtomic(ckpt, savedFiles('v1'));
    const mine = path.join(tmp, 'mine');
    await sae.save(mine);
    using acc = new CorrelationAccumulator(10, 10);
    const x = { rows: 20, cols: 6, data: Float32Array.from({ length: 120 }, (_, i) => Math.sin(i * 1.7)) };
    acc.add(sae.encode(x), sae.encode(x));
    using pair = AlignedPair.fromCorrelation(sae, sae, acc.result());
    await expectSaeRejection(pair.save(ckpt), 'ERR_IO', /holds a training run's checkpoint; refusing to replace it with a crossmodal-sae aligned pair/);
    await expectSaeRejection(pair.save(mine), 'ERR_IO', /holds a crossmodal-sae SAE checkpoint; refusing to replace it with a crossmodal-sae aligned pair/);
    await expectSaeRejection(sae.save(ckpt), 'ERR_IO', /holds a training run's checkpoint/);
    expect(versionIn(ckpt)).to.equal('v1');
    (await TopKSAE.load(mine)).dispose();
    // The same kind is replaced (a pair by a pair, an SAE by an SAE).
    const pairDir = path.join(tmp, 'pair');
    await pair.save(pairDir);
    await pair.save(pairDir);
    await sae.save(mine);
  });

  it('recovery never moves an old copy that holds only our names but is not ours by content, or fails its checksums', async () => {
    using sae = TopKSAE.create({ d: 6, m: 10, k: 2, seed: 1 });
    const garbage = path.join(tmp, 'gone');
    mkdirSync(`${garbage}.old-999999-deadbeef`);
    writeFileSync(path.join(`${garbage}.old-999999-deadbeef`, 'cfg.json'), 'garbage');
    writeFileSync(path.join(`${garbage}.old-999999-deadbeef`, 'sae_weights.safetensors'), 'garbage');
    expect(await recoverDirectory(garbage)).to.equal(false);
    expect(existsSync(garbage)).to.equal(false);
    // A real checkpoint moved aside, then one byte of its weights flipped: its checksum no longer matches.
    const real = path.join(tmp, 'gone2');
    await sae.save(`${real}.old-999998-deadbeef`);
    const w = path.join(`${real}.old-999998-deadbeef`, 'sae_weights.safetensors');
    const bytes = readFileSync(w);
    bytes[bytes.length - 3] ^= 1;
    writeFileSync(w, bytes);
    expect(await recoverDirectory(real)).to.equal(false);
    bytes[bytes.length - 3] ^= 1;
    writeFileSync(w, bytes);
    expect(await recoverDirectory(real)).to.equal(true);
    (await TopKSAE.load(real)).dispose();
    // A newer garbage old copy beside an older good one: the good one comes back, not the garbage.
    const two = path.join(tmp, 'gone3');
    await sae.save(`${two}.old-99998-aaaaaaaa`);
    mkdirSync(`${two}.old-99999-bbbbbbbb`);
    writeFileSync(path.join(`${two}.old-99999-bbbbbbbb`, 'cfg.json'), '{}');
    expect(await recoverDirectory(two)).to.equal(true);
    (await TopKSAE.load(two)).dispose();
  });

  it("writeFileAtomic removes its dead processes' temporary files (kill -9 between write and rename), nothing else", async () => {
    const file = path.join(tmp, 'results.json');
    writeFileSync(`${file}.tmp-999997-deadbeef`, 'stale');
    writeFileSync(`${file}.tmp-${process.pid}-0000beef`, 'this process (alive)');
    writeFileSync(`${file}.tmp-notes`, 'not our pattern');
    await writeFileAtomic(file, '{}');
    expect(readFileSync(file, 'utf8')).to.equal('{}');
    expect(existsSync(`${file}.tmp-999997-deadbeef`)).to.equal(false);
    expect(existsSync(`${file}.tmp-${process.pid}-0000beef`)).to.equal(true);
    expect(existsSync(`${file}.tmp-notes`)).to.equal(true);
  });

  it('saves to one directory from one process run one after the other', async () => {
    const dir = path.join(tmp, 'concurrent');
    await Promise.all(['a', 'b', 'c', 'd'].map((v) => writeDirectoryAtomic(dir, savedFiles(v))));
    expect(versionIn(dir)).to.equal('d');
    expect(siblings(dir)).to.deep.equal([]);
  });
});
