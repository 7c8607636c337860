/**
 * Crash-safe writes: a file or a whole directory becomes visible only once completely written, and a
 * directory save replaces only what is recognisably crossmodal-sae's own (never a user's files).
 *
 * A directory save writes every file into a temporary sibling `<dir>.tmp-<pid>-<tag>`, then a manifest
 * (`.cmsae-manifest.json`: every file's size and CRC-32, the time of the save) which marks the copy complete;
 * moves the old directory aside to `<dir>.old-<pid>-<tag>`, renames the new one into place (the commit), and
 * removes the manifest and the old copy. A process killed at any point leaves either the old directory or a
 * complete new copy beside a missing `<dir>`; recoverDirectory puts the newest complete copy in place and
 * removes the leftovers of dead processes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { SaeError } from '../errors.js';
import { VERSION } from '../version.js';
import { ensureDirectory, fileKind, fsError, readRegularFile } from './files.js';

/** Marks a temporary copy complete (written last); removed once the copy is in place. */
export const MANIFEST_FILE = '.cmsae-manifest.json';
/** The completeness marker of versions before the manifest (a legacy temporary copy holds it). */
const LEGACY_COMPLETE_FILE = '.complete';

/**
 * Entry names crossmodal-sae writes inside the directories it saves atomically (SAE checkpoints, aligned
 * pairs, training checkpoints), besides the names a save itself writes. An existing directory whose every
 * entry (at any depth) is one of these or a path the save writes is recognised as ours and may be replaced;
 * this also recognises the checkpoints of earlier versions, which carry no marker.
 */
export const OWNED_ENTRY_NAMES: ReadonlySet<string> = new Set([
  'cfg.json',
  'sae_weights.safetensors',
  'trainer_state.safetensors',
  'state.json',
  'alignment.json',
  'alignment.safetensors',
  'image',
  'text',
  'shared',
  MANIFEST_FILE,
  LEGACY_COMPLETE_FILE,
]);

/** Deeper trees than this are never ours (our directories nest one level). */
const MAX_DEPTH = 4;

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

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* directory fsync is best effort (not supported everywhere) */
  }
}

const tagOf = () => `${process.pid}-${randomBytes(4).toString('hex')}`;

async function lstatOrNull(p: string) {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, 'cannot inspect', p);
  }
}

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
}

interface Manifest {
  writer: 'crossmodal-sae';
  version: string;
  /** Milliseconds since the epoch, sub-millisecond resolution: orders copies, newest first. */
  created: number;
  files: Record<string, { size: number; crc32: number }>;
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

/** The relative paths (files and their parent directories) a set of names makes. */
function pathsOf(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const n of names) for (let p = n; p !== '.'; p = path.posix.dirname(p)) out.add(p);
  return out;
}

/**
 * The entries of `dir` (relative paths, at any depth) that crossmodal-sae would not have written: anything
 * that is not a regular file or directory, nested too deep, or named neither in `allowed` nor OWNED_ENTRY_NAMES.
 */
async function foreignEntries(dir: string, allowed: ReadonlySet<string>, ownedNames: boolean): Promise<string[]> {
  const foreign: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (e) {
      throw fsError(e, 'cannot list', path.join(dir, rel));
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      const known = allowed.has(p) || (ownedNames && OWNED_ENTRY_NAMES.has(e.name));
      if (e.isDirectory()) {
        if (!known || depth >= MAX_DEPTH) foreign.push(`${p}/`);
        else await walk(p, depth + 1);
      } else if (!e.isFile()) foreign.push(`${p} (${e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'})`);
      else if (!known) foreign.push(p);
    }
  };
  await walk('', 1);
  return foreign;
}

const listSome = (xs: string[], n = 5) => (xs.length <= n ? xs.join(', ') : `${xs.slice(0, n).join(', ')} and ${xs.length - n} more`);

/**
 * Refuses to replace `dir` unless it is absent, empty, or holds only what crossmodal-sae writes (the names of
 * this save and OWNED_ENTRY_NAMES): a regular file, a symbolic link or a directory with other files is ERR_IO
 * naming what is there. Commands call it early, before the work whose result they will save there.
 */
export async function checkReplaceable(dir: string, names: string[] = []): Promise<void> {
  dir = path.resolve(dir);
  const st = await lstatOrNull(dir);
  if (!st) return;
  if (st.isSymbolicLink()) throw new SaeError('ERR_IO', `${dir} is a symbolic link; refusing to replace it with a directory: give the real path, or remove the link`);
  if (!st.isDirectory()) throw new SaeError('ERR_IO', `${dir} is ${fileKind(st)}, not a directory written by crossmodal-sae; refusing to replace it: remove it, or choose another path`);
  const foreign = await foreignEntries(dir, pathsOf(names), true);
  if (foreign.length)
    throw new SaeError('ERR_IO', `${dir} holds files crossmodal-sae did not write (${listSome(foreign)}); refusing to replace it: move them away, or choose another directory`);
}

/** Saves to the same directory from one process run one after the other. */
const queues = new Map<string, Promise<unknown>>();
/** Tags of this process's saves in progress (their temporary copies are not leftovers). */
const inFlight = new Set<string>();

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
  await checkReplaceable(abs, names);
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

/** A leftover copy beside `<dir>`: `<dir>.tmp-*` (a new copy) or `<dir>.old-*` (the one it replaced). */
interface Leftover {
  path: string;
  kind: 'tmp' | 'old';
  /** The pid and tag of the process that made it, when the name has our exact pattern. */
  pid: number | null;
  tag: string | null;
}

async function leftovers(abs: string): Promise<Leftover[]> {
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  let entries: string[];
  try {
    entries = await fs.readdir(parent);
  } catch {
    return [];
  }
  const out: Leftover[] = [];
  for (const e of entries) {
    const kind = e.startsWith(`${base}.tmp-`) ? 'tmp' : e.startsWith(`${base}.old-`) ? 'old' : null;
    if (!kind) continue;
    const m = /^(\d+)-([0-9a-f]{8})$/.exec(e.slice(base.length + 5));
    out.push({ path: path.join(parent, e), kind, pid: m ? Number(m[1]) : null, tag: m ? `${m[1]}-${m[2]}` : null });
  }
  return out;
}

/**
 * When a copy is complete and ours, the time it was made (ms; newest wins), else null. A temporary copy is
 * complete when its manifest lists exactly the files it holds, each with the recorded size and CRC-32 (or,
 * written by an earlier version, when it has the old completeness marker and only our names); an old copy
 * (a directory that was in place, moved aside) when it holds only our names and at least one file.
 */
async function completeCopy(c: Leftover): Promise<number | null> {
  const st = await lstatOrNull(c.path).catch(() => null);
  if (!st?.isDirectory()) return null;
  let manifest: Manifest | null = null;
  try {
    const raw = JSON.parse((await readRegularFile(path.join(c.path, MANIFEST_FILE), 'save manifest')).toString('utf8')) as Manifest;
    if (raw && raw.writer === 'crossmodal-sae' && typeof raw.created === 'number' && typeof raw.files === 'object' && raw.files !== null) manifest = raw;
  } catch {
    manifest = null;
  }
  if (manifest) {
    const listed = Object.keys(manifest.files);
    if (listed.length === 0) return null;
    const allowed = pathsOf(listed);
    allowed.add(MANIFEST_FILE);
    if ((await foreignEntries(c.path, allowed, false).catch(() => ['?'])).length) return null;
    for (const name of listed) {
      const want = manifest.files[name];
      try {
        const bytes = await readRegularFile(path.join(c.path, ...name.split('/')), 'saved file');
        if (bytes.byteLength !== want?.size || crc32(bytes) !== want.crc32) return null;
      } catch {
        return null;
      }
    }
    return manifest.created;
  }
  if (c.kind === 'tmp' && !(await lstatOrNull(path.join(c.path, LEGACY_COMPLETE_FILE)).catch(() => null))?.isFile()) return null;
  if ((await foreignEntries(c.path, new Set(), true).catch(() => ['?'])).length) return null;
  const holdsFile = async (d: string): Promise<boolean> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      if (e.isFile() && e.name !== LEGACY_COMPLETE_FILE && e.name !== MANIFEST_FILE) return true;
      if (e.isDirectory() && (await holdsFile(path.join(d, e.name)))) return true;
    }
    return false;
  };
  if (!(await holdsFile(c.path).catch(() => false))) return null;
  return st.mtimeMs;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the leftover copies beside `<dir>` that a dead process made (our exact name pattern, a pid that
 * no longer runs, or this process with no save in progress under that tag) and that hold only what we write.
 * Anything else named like a leftover is left alone.
 */
async function removeLeftovers(abs: string): Promise<void> {
  for (const c of await leftovers(abs)) {
    if (c.pid === null || c.tag === null || inFlight.has(c.tag)) continue;
    if (c.pid !== process.pid && processAlive(c.pid)) continue;
    const st = await lstatOrNull(c.path).catch(() => null);
    if (!st?.isDirectory()) continue;
    if ((await foreignEntries(c.path, new Set(), true).catch(() => ['?'])).length) continue;
    await fs.rm(c.path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * If `dir` is missing because a save was interrupted between its two renames, moves the newest complete
 * copy (a `<dir>.tmp-*` whose manifest checks out, else a `<dir>.old-*` holding only our files) into place;
 * copies that are incomplete or not ours are never moved. Then removes the leftovers of dead processes.
 * Returns true when something was recovered.
 */
export async function recoverDirectory(dir: string): Promise<boolean> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'recoverDirectory needs a directory path');
  const abs = path.resolve(dir);
  const st = await lstatOrNull(abs).catch(() => null);
  if (st) {
    // A save killed after its commit leaves its manifest inside: not part of the directory.
    if (st.isDirectory()) await fs.rm(path.join(abs, MANIFEST_FILE), { force: true }).catch(() => undefined);
    await removeLeftovers(abs);
    return false;
  }
  const ranked: { c: Leftover; created: number }[] = [];
  for (const c of await leftovers(abs)) {
    if (c.tag !== null && inFlight.has(c.tag)) continue;
    const created = await completeCopy(c);
    if (created !== null) ranked.push({ c, created });
  }
  // Every complete new copy is newer than every old one it would have replaced.
  ranked.sort((a, b) => (a.c.kind !== b.c.kind ? (a.c.kind === 'tmp' ? -1 : 1) : b.created - a.created));
  for (const { c } of ranked) {
    try {
      await fs.rename(c.path, abs);
    } catch {
      continue;
    }
    await fs.rm(path.join(abs, MANIFEST_FILE), { force: true }).catch(() => undefined);
    await fs.rm(path.join(abs, LEGACY_COMPLETE_FILE), { force: true }).catch(() => undefined);
    await syncDir(path.dirname(abs));
    await removeLeftovers(abs);
    return true;
  }
  return false;
}
