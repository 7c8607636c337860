/**
 * Recovery after an interrupted directory save (see atomic.ts): the newest complete copy is put in place, and
 * the leftover copies of processes that no longer run are removed. A copy is moved or removed only when it is
 * recognisably ours.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { SaeError } from '../errors.js';
import { LEGACY_COMPLETE_FILE, MANIFEST_FILE, foreignEntries, inFlight, lstatOrNull, pathsOf, syncDir, type Manifest } from './atomic-common.js';
import { readRegularFile } from './files.js';
import { checksumsMatch, kindOfDirectory } from './own-directory.js';

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
 * (a directory that was in place, moved aside) when it holds only our names and at least one file, and is one of
 * our kinds by content with its recorded checksums intact (own-directory.ts).
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
  // Without a manifest the names say little: the copy must also be one of our kinds by content, its checksums intact.
  const kind = kindOfDirectory(c.path);
  if (kind === null || !checksumsMatch(c.path, kind)) return null;
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

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
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
export async function removeLeftovers(abs: string): Promise<void> {
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
 * Removes the temporary siblings `<file>.tmp-<pid>-<tag>` of a single-file save (writeFileAtomic) left by
 * processes that no longer run (a kill -9 between the write and the rename). Only regular files with our exact
 * name pattern are touched.
 */
export async function removeStaleFileTemps(file: string): Promise<void> {
  const parent = path.dirname(file);
  const prefix = `${path.basename(file)}.tmp-`;
  let entries: string[];
  try {
    entries = await fs.readdir(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const m = /^(\d+)-([0-9a-f]{8})$/.exec(e.slice(prefix.length));
    if (!m || processAlive(Number(m[1]))) continue;
    const p = path.join(parent, e);
    if ((await lstatOrNull(p).catch(() => null))?.isFile()) await fs.rm(p, { force: true }).catch(() => undefined);
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
