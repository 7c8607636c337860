/**
 * Crash-safe writes: a file or a whole directory becomes visible only once completely written, and a
 * directory save replaces only what is recognisably crossmodal-sae's own (never a user's files).
 *
 * A directory save writes every file into a temporary sibling `<dir>.tmp-<pid>-<tag>`, then a manifest
 * (`.cmsae-manifest.json`: every file's size and CRC-32, the time of the save) which marks the copy complete;
 * moves the old directory aside to `<dir>.old-<pid>-<tag>`, renames the new one into place (the commit), and
 * removes the manifest and the old copy. A process killed at any point leaves either the old directory or a
 * complete new copy beside a missing `<dir>`; recoverDirectory puts the newest complete copy in place and
 * removes the leftovers of dead processes (atomic-recovery.ts). What counts as ours: atomic-common.ts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { SaeError } from '../errors.js';
import { VERSION } from '../version.js';
import { LEGACY_COMPLETE_FILE, MANIFEST_FILE, MAX_DEPTH, foreignEntries, inFlight, listSome, lstatOrNull, pathsOf, syncDir, type Manifest } from './atomic-common.js';
import { removeLeftovers, removeStaleFileTemps } from './atomic-recovery.js';
import { ensureDirectory, fileKind, fsError } from './files.js';
import { OWN_KIND_WORDS, kindOfDirectory, kindOfFiles, type OwnKind } from './own-directory.js';

export { MANIFEST_FILE, OWNED_ENTRY_NAMES } from './atomic-common.js';
export { recoverDirectory } from './atomic-recovery.js';
export { kindOfDirectory, type OwnKind } from './own-directory.js';

/**
 * Fault injection for the crash tests: CMSAE_TEST_KILL_IN_SAVE=<point>[:<n>] makes the process SIGKILL
 * itself the n-th time (default 1) a directory save reaches <point>: 'tmp-partial' after the first file of
 * the temporary copy, 'tmp-complete' once the copy and its manifest are written, 'old-moved' between the two
 * renames, 'renamed' after the commit (before the old copy is removed). Never set outside tests.
 */
export const SAVE_FAULT_POINTS = ['tmp-partial', 'tmp-complete', 'old-moved', 'renamed'] as const;
export type SaveFaultPoint = (typeof SAVE_FAULT_POINTS)[number];
const faultHits = new Map<string, number>();

function faultPoint(point: SaveFaultPoint): void {
  const spec = process.env.CMSAE_TEST_KILL_IN_SAVE;
  if (!spec) return;
  const [name, nth = '1'] = spec.split(':');
  if (name !== point) return;
  const hits = (faultHits.get(point) ?? 0) + 1;
  faultHits.set(point, hits);
  if (hits === Number(nth)) process.kill(process.pid, 'SIGKILL');
}

async function writeDurable(file: string, data: Uint8Array | string): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const tagOf = () => `${process.pid}-${randomBytes(4).toString('hex')}`;

/** Writes `file` via a temporary sibling and rename(2); refuses a directory, FIFO or device at `file`. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  if (typeof file !== 'string' || file.length === 0) throw new SaeError('ERR_ARG', 'writeFileAtomic needs a file path');
  const st = await fs.stat(file).catch(() => null);
  if (st && !st.isFile()) throw new SaeError('ERR_IO', `cannot write ${file}: it is ${fileKind(st)}; give the path of a regular file`);
  const tmp = `${file}.tmp-${tagOf()}`;
  try {
    await writeDurable(tmp, data);
    await fs.rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw fsError(e, 'cannot write', file);
  }
  await removeStaleFileTemps(file);
}

/** Checks the relative names of a directory save: plain relative paths, never the manifest. */
function checkNames(names: string[]): void {
  if (names.length === 0) throw new SaeError('ERR_ARG', 'a directory save needs at least one file');
  for (const n of names) {
    const norm = path.posix.normalize(n);
    if (typeof n !== 'string' || n === '' || path.isAbsolute(n) || norm !== n || n.split('/').some((c) => c === '..' || c === '.' || c === ''))
      throw new SaeError('ERR_ARG', `invalid file name '${String(n)}' in a directory save (relative paths without '.' or '..' only)`);
    if (n.split('/').length > MAX_DEPTH) throw new SaeError('ERR_ARG', `file name '${n}' nests deeper than ${MAX_DEPTH} levels`);
    if (path.posix.basename(n) === MANIFEST_FILE || path.posix.basename(n) === LEGACY_COMPLETE_FILE) throw new SaeError('ERR_ARG', `'${n}' is a reserved name`);
  }
}

/**
 * Refuses to replace `dir` unless it is absent, empty, or recognisably ours and of the same kind as the save:
 * it holds only names crossmodal-sae writes (the names of this save and OWNED_ENTRY_NAMES) and its defining file
 * says what it is (own-directory.ts: an SAE checkpoint is replaced only by an SAE checkpoint, a pair by a pair,
 * a run's checkpoint by a run's checkpoint). Anything else (a regular file, a symbolic link, a directory with
 * other files, another tool's cfg.json, another kind of ours) is ERR_IO naming what is there. `kind` is what
 * the save will write (null: no known kind, which may replace only a directory of no known kind). Commands
 * call it early, before the work whose result they will save there.
 */
export async function checkReplaceable(dir: string, names: string[] = [], kind: OwnKind | null = null): Promise<void> {
  dir = path.resolve(dir);
  const st = await lstatOrNull(dir);
  if (!st) return;
  if (st.isSymbolicLink()) throw new SaeError('ERR_IO', `${dir} is a symbolic link; refusing to replace it with a directory: give the real path, or remove the link`);
  if (!st.isDirectory()) throw new SaeError('ERR_IO', `${dir} is ${fileKind(st)}, not a directory written by crossmodal-sae; refusing to replace it: remove it, or choose another path`);
  const foreign = await foreignEntries(dir, pathsOf(names), true);
  if (foreign.length)
    throw new SaeError('ERR_IO', `${dir} holds files crossmodal-sae did not write (${listSome(foreign)}); refusing to replace it: move them away, or choose another directory`);
  if ((await fs.readdir(dir)).length === 0) return;
  const existing = kindOfDirectory(dir);
  if (existing === kind) return;
  const what = kind ? OWN_KIND_WORDS[kind] : 'this directory';
  if (existing === null)
    throw new SaeError('ERR_IO', `${dir} holds files crossmodal-sae did not write (its ${listSome(await fs.readdir(dir))} are not ${what}'s); refusing to replace it: move them away, or choose another directory`);
  const hint = kind === 'sae-export' && existing === 'sae-checkpoint' ? ' (the model itself? a crossmodal-sae checkpoint is never replaced by its export)' : '';
  throw new SaeError('ERR_IO', `${dir} holds ${OWN_KIND_WORDS[existing]}; refusing to replace it with ${kind ? OWN_KIND_WORDS[kind] : 'other files'}${hint}: choose another directory (or remove it first)`);
}

/** Saves to the same directory from one process run one after the other. */
const queues = new Map<string, Promise<unknown>>();
/**
 * Replaces directory `dir` with one holding exactly `files` (names may hold one subdirectory level,
 * "image/cfg.json"), atomically: see the top of this file. `dir` must be absent, empty or recognisably ours
 * (checkReplaceable); otherwise ERR_IO and nothing is written.
 */
export async function writeDirectoryAtomic(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'a directory save needs a directory path');
  if (typeof files !== 'object' || files === null) throw new SaeError('ERR_ARG', 'a directory save needs its files');
  const abs = path.resolve(dir);
  const prev = queues.get(abs) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => writeDirectoryNow(abs, dir, files));
  queues.set(abs, run);
  try {
    await run;
  } finally {
    if (queues.get(abs) === run) queues.delete(abs);
  }
}

async function writeDirectoryNow(abs: string, dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const names = Object.keys(files);
  checkNames(names);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  await ensureDirectory(parent, `parent directory of ${dir}`);
  await checkReplaceable(abs, names, kindOfFiles(files));
  const tag = tagOf();
  const tmp = path.join(parent, `${base}.tmp-${tag}`);
  const old = path.join(parent, `${base}.old-${tag}`);
  inFlight.add(tag);
  try {
    try {
      await fs.mkdir(tmp);
      const manifest: Manifest = { writer: 'crossmodal-sae', version: VERSION, created: 0, files: {} };
      for (const name of names) {
        const file = path.join(tmp, ...name.split('/'));
        if (name.includes('/')) await fs.mkdir(path.dirname(file), { recursive: true });
        const data = files[name];
        const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        await writeDurable(file, bytes);
        manifest.files[name] = { size: bytes.byteLength, crc32: crc32(bytes) };
        if (name === names[0]) faultPoint('tmp-partial');
      }
      for (const sub of new Set(names.filter((n) => n.includes('/')).map((n) => path.posix.dirname(n)))) await syncDir(path.join(tmp, sub));
      manifest.created = performance.timeOrigin + performance.now();
      await writeDurable(path.join(tmp, MANIFEST_FILE), JSON.stringify(manifest) + '\n');
      await syncDir(tmp);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(e, 'cannot write', dir);
    }
    faultPoint('tmp-complete');
    let movedOld = false;
    try {
      try {
        await fs.rename(abs, old);
        movedOld = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      faultPoint('old-moved');
      await fs.rename(tmp, abs);
      await syncDir(parent);
    } catch (e) {
      if (movedOld) await fs.rename(old, abs).catch(() => undefined);
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(e, 'cannot replace', dir);
    }
    faultPoint('renamed');
    await fs.rm(path.join(abs, MANIFEST_FILE), { force: true }).catch(() => undefined);
    if (movedOld) await fs.rm(old, { recursive: true, force: true }).catch(() => undefined);
  } finally {
    inFlight.delete(tag);
  }
  await removeLeftovers(abs);
}
