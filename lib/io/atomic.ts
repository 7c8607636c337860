/** Crash-safe writes: a file or a whole directory becomes visible only once completely written. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';

function ioError(what: string, e: unknown): SaeError {
  const err = e as NodeJS.ErrnoException;
  return new SaeError('ERR_IO', `${what}: ${err.code ?? ''} ${err.message}`.trim(), { cause: e });
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

/** Writes `file` via a temporary sibling and rename(2). */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeDurable(tmp, data);
    await fs.rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(`could not write ${file}`, e);
  }
}

/**
 * Replaces directory `dir` with one holding exactly `files`: they are written and fsynced into a temporary
 * sibling, the old directory is moved aside, the new one renamed into place, then the old one removed.
 * A crash leaves either the old directory, or the complete new one under `<dir>.tmp-*` (see recoverDirectory).
 */
export async function writeDirectoryAtomic(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(path.resolve(dir));
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `${base}.tmp-${tag}`);
  const old = path.join(parent, `${base}.old-${tag}`);
  try {
    await fs.mkdir(parent, { recursive: true });
    await fs.mkdir(tmp);
    const names = Object.keys(files);
    // Write cfg.json (or whichever file is named last) last, so a complete temp dir has it.
    for (const name of names) {
      const file = path.join(tmp, name); // names may hold subdirectories ("image/cfg.json")
      if (path.dirname(name) !== '.') await fs.mkdir(path.dirname(file), { recursive: true });
      await writeDurable(file, files[name]);
    }
    await fs.writeFile(path.join(tmp, '.complete'), '');
    const subdirs = new Set(names.map((n) => path.dirname(n)).filter((d) => d !== '.'));
    for (const sub of subdirs) await syncDir(path.join(tmp, sub));
    await syncDir(tmp);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(`could not write ${dir}`, e);
  }
  let movedOld = false;
  try {
    try {
      await fs.rename(dir, old);
      movedOld = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await fs.rename(tmp, dir);
    await syncDir(parent);
  } catch (e) {
    if (movedOld) await fs.rename(old, dir).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(`could not replace ${dir}`, e);
  }
  await fs.rm(path.join(dir, '.complete'), { force: true }).catch(() => undefined);
  if (movedOld) await fs.rm(old, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * If `dir` is missing because a save was interrupted between its two renames, moves the newest complete
 * `<dir>.tmp-*` (or else the `<dir>.old-*` copy) into place. Returns true when something was recovered.
 */
export async function recoverDirectory(dir: string): Promise<boolean> {
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(path.resolve(dir));
  try {
    await fs.access(dir);
    return false;
  } catch {
    /* missing: try to recover */
  }
  let entries: string[];
  try {
    entries = await fs.readdir(parent);
  } catch {
    return false;
  }
  const complete = async (p: string) => fs.access(path.join(p, '.complete')).then(() => true, () => false);
  const candidates = [
    ...entries.filter((e) => e.startsWith(`${base}.tmp-`)).map((e) => ({ p: path.join(parent, e), isTmp: true })),
    ...entries.filter((e) => e.startsWith(`${base}.old-`)).map((e) => ({ p: path.join(parent, e), isTmp: false })),
  ];
  for (const c of candidates) {
    if (c.isTmp && !(await complete(c.p))) continue;
    try {
      await fs.rename(c.p, dir);
      await fs.rm(path.join(dir, '.complete'), { force: true });
      return true;
    } catch {
      /* try the next one */
    }
  }
  return false;
}
