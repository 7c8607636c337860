/**
 * What crossmodal-sae recognises as its own in a directory it saves atomically (see atomic.ts): the names it
 * writes, the manifest that marks a temporary copy complete, and the saves of this process in progress.
 */
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';

import { fsError } from './files.js';

/** Marks a temporary copy complete (written last); removed once the copy is in place. */
export const MANIFEST_FILE = '.cmsae-manifest.json';
/** The completeness marker of versions before the manifest (a legacy temporary copy holds it). */
export const LEGACY_COMPLETE_FILE = '.complete';

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
export const MAX_DEPTH = 4;

/** The manifest of a temporary copy. */
export interface Manifest {
  writer: 'crossmodal-sae';
  version: string;
  /** Milliseconds since the epoch, sub-millisecond resolution: orders copies, newest first. */
  created: number;
  files: Record<string, { size: number; crc32: number }>;
}

/** Tags of this process's saves in progress (their temporary copies are not leftovers). */
export const inFlight = new Set<string>();

/** fsync of a directory (its entries), best effort. */
export async function syncDir(dir: string): Promise<void> {
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

export async function lstatOrNull(p: string) {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, 'cannot inspect', p);
  }
}

/** The relative paths (files and their parent directories) a set of names makes. */
export function pathsOf(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const n of names) for (let p = n; p !== '.'; p = path.posix.dirname(p)) out.add(p);
  return out;
}

/**
 * The entries of `dir` (relative paths, at any depth) that crossmodal-sae would not have written: anything
 * that is not a regular file or directory, nested too deep, or named neither in `allowed` nor OWNED_ENTRY_NAMES.
 */
export async function foreignEntries(dir: string, allowed: ReadonlySet<string>, ownedNames: boolean): Promise<string[]> {
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

export const listSome = (xs: string[], n = 5) => (xs.length <= n ? xs.join(', ') : `${xs.slice(0, n).join(', ')} and ${xs.length - n} more`);
