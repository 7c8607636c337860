/**
 * File-system access shared by every reader and writer: typed ERR_IO errors that say what to do, reads that
 * never block on a FIFO, socket or device (the file is opened non-blocking and checked with fstat before a
 * byte is read), and directory creation that cannot spin (Node's recursive mkdir loops on paths like /proc/x).
 */
import { constants, closeSync, fstatSync, mkdirSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';

const WHY: Record<string, string> = {
  ENOENT: 'does not exist',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'has a path component that is not a directory',
  EEXIST: 'already exists',
  EACCES: 'is not accessible (permission denied)',
  EPERM: 'is not accessible (operation not permitted)',
  ELOOP: 'has too many levels of symbolic links',
  ENAMETOOLONG: 'has a name that is too long',
  ENOSPC: 'cannot be written: no space left on the device',
  EROFS: 'is on a read-only file system',
  EMFILE: 'cannot be opened: too many open files',
  EBUSY: 'is busy',
  EXDEV: 'cannot be moved across file systems',
};

/** An fs error as an ERR_IO SaeError naming the path and, in words, what went wrong. */
export function fsError(e: unknown, what: string, file: string): SaeError {
  if (e instanceof SaeError) return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const why = WHY[code] ?? ((e as Error)?.message ?? String(e));
  // "cannot write X: does not exist ..." reads better than "cannot write X does not exist"; "input file X does not exist" stays.
  const sep = /^cannot\b/.test(what) ? ': it ' : ' ';
  const hint = code === 'ENOENT' && sep !== ' ' ? ' (or this file system does not let it be created there)' : '';
  return new SaeError('ERR_IO', `${what} ${file}${sep}${why}${hint}${code ? ` (${code})` : ''}`, { cause: e });
}

/** What kind of file a Stats describes, in words. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function requireRegular(st: Stats, what: string, file: string): void {
  if (!st.isFile()) throw new SaeError('ERR_IO', `${what} ${file} is ${fileKind(st)}; give the path of a regular file`);
}

/**
 * Opens a regular file for reading without ever blocking: O_NONBLOCK makes open(2) of a FIFO return at once,
 * and fstat refuses anything that is not a regular file. Returns the descriptor (the caller closes it).
 */
export function openRegularFileSync(file: string, what = 'file'): { fd: number; size: number } {
  if (typeof file !== 'string' || file.length === 0) throw new SaeError('ERR_ARG', `${what}: expected a file path`);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, what, file);
  }
  try {
    const st = fstatSync(fd);
    requireRegular(st, what, file);
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw fsError(e, what, file);
  }
}

/** The whole content of a regular file (refuses FIFOs, directories and devices with ERR_IO). */
export function readRegularFileSync(file: string, what = 'file'): Buffer {
  const { fd, size } = openRegularFileSync(file, what);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } catch (e) {
    throw fsError(e, `cannot read ${what}`, file);
  } finally {
    closeSync(fd);
  }
}

/** Async variant of readRegularFileSync. */
export async function readRegularFile(file: string, what = 'file'): Promise<Buffer> {
  if (typeof file !== 'string' || file.length === 0) throw new SaeError('ERR_ARG', `${what}: expected a file path`);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, what, file);
  }
  try {
    const st = await fh.stat();
    requireRegular(st, what, file);
    return await fh.readFile();
  } catch (e) {
    throw fsError(e, `cannot read ${what}`, file);
  } finally {
    await fh.close();
  }
}

/** A regular file's text (UTF-8). */
export async function readTextFile(file: string, what = 'file'): Promise<string> {
  return (await readRegularFile(file, what)).toString('utf8');
}

/** The file's Stats, or null when nothing is at `file` (other errors are ERR_IO). */
export function statOrNull(file: string): Stats | null {
  try {
    return statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, 'cannot inspect', file);
  }
}

/**
 * Creates `dir` and its missing parents one component at a time (mkdir -p that cannot spin): every existing
 * component must be a directory, and a component that cannot be created is an ERR_IO naming it.
 */
export function ensureDirectorySync(dir: string, what = 'directory'): void {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', `${what}: expected a directory path`);
  const abs = path.resolve(dir);
  const parts: string[] = [];
  for (let p = abs; ; p = path.dirname(p)) {
    parts.unshift(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of parts) {
    const st = statOrNull(p);
    if (st) {
      if (!st.isDirectory()) throw new SaeError('ERR_IO', `cannot create ${what} ${dir}: ${p} is ${fileKind(st)}, not a directory`);
      continue;
    }
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statOrNull(p)?.isDirectory()) continue;
      throw fsError(e, `cannot create ${what}`, p);
    }
  }
}

/** Async-shaped ensureDirectorySync (the work is a handful of syscalls). */
export async function ensureDirectory(dir: string, what = 'directory'): Promise<void> {
  ensureDirectorySync(dir, what);
}

/**
 * Checks that `file` can be created as an output: its parent exists (or can be created) as a directory and
 * `file` itself is absent or a regular file (never a directory, FIFO or device).
 */
export function checkOutputFile(file: string, what = 'output file'): void {
  if (typeof file !== 'string' || file.length === 0) throw new SaeError('ERR_ARG', `${what}: expected a file path`);
  const st = statOrNull(file);
  if (st && !st.isFile()) throw new SaeError('ERR_IO', `${what} ${file} is ${fileKind(st)}; give the path of a regular file to write`);
  ensureDirectorySync(path.dirname(path.resolve(file)), `parent directory of ${what}`);
}
