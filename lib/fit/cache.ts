/**
 * How `fit` recognises work it already did: file keys (path, size, mtime), the key of a trained model (its
 * weight and JSON files plus the run's normalization), hashed evaluation keys and keyed JSON result files.
 */
import { createHash } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';

import { runPaths } from '../run/layout.js';

/** Typed arrays as arrays, NaN/Inf as null. */
export function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) => {
      if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
      if (typeof x === 'number' && !Number.isFinite(x)) return null;
      return x;
    },
    1,
  );
}

export function fileKey(p: string): string {
  try {
    const s = statSync(p);
    return `${path.resolve(p)}:${s.size}:${s.mtimeMs}`;
  } catch {
    return `${path.resolve(p)}:missing`;
  }
}

/** The weight and JSON files of a run's final models and its normalization.json. */
export async function modelKey(runDir: string): Promise<string> {
  const parts: string[] = [];
  const walk = async (d: string) => {
    for (const e of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.safetensors') || e.name.endsWith('.json')) parts.push(fileKey(p));
    }
  };
  await walk(runPaths(runDir).finalDir);
  parts.push(fileKey(runPaths(runDir).normalization));
  return parts.join('|');
}

export function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 32);
}

/** The result saved in `file` when it was saved under `key`, else null. */
export async function readCached<T>(file: string, key: string): Promise<T | null> {
  try {
    const j = JSON.parse(await fs.readFile(file, 'utf8')) as { key: string; result: T };
    return j.key === key ? j.result : null;
  } catch {
    return null;
  }
}
