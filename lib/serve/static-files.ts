/**
 * Files the service hands out: the web explorer (lib/serve/explorer/), the vega builds it loads, and image files
 * from under --image-root only. A path is resolved against its root's real path and must stay inside it after
 * every symlink is resolved (realpath containment): no '..' traversal, no symlink escape, regular files only.
 */
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readRegularFile, statOrNull } from '../io/files.js';
import { HttpError } from './http-errors.js';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
};

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.gif', '.webp', '.svg'];

const notFound = (what: string) => new HttpError(404, 'ERR_NOT_FOUND', what);

/**
 * The real path of root/rel when it is a regular file inside root's real path (404 otherwise; the message never
 * says which part failed beyond "not found" / "outside").
 */
export async function containedFile(root: string, rel: string, extensions: readonly string[]): Promise<{ file: string; type: string }> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    throw new HttpError(400, 'ERR_ARG', 'the path is not valid percent-encoding');
  }
  if (decoded.includes('\0') || path.isAbsolute(decoded)) throw new HttpError(400, 'ERR_ARG', 'the path must be relative to the root');
  const ext = path.extname(decoded).toLowerCase();
  if (!extensions.includes(ext)) throw notFound(`no file ${rel}: only ${extensions.join(' ')} files are served here`);
  const realRoot = await realpath(root).catch(() => null);
  if (!realRoot) throw notFound(`the root directory ${root} does not exist`);
  const joined = path.resolve(realRoot, decoded);
  const inside = (p: string) => p === realRoot || p.startsWith(realRoot + path.sep);
  if (!inside(joined)) throw notFound(`no file ${rel}: the path leaves the root`);
  const real = await realpath(joined).catch(() => null);
  if (!real) throw notFound(`no file ${rel}`);
  if (!inside(real)) throw notFound(`no file ${rel}: it resolves outside the root`);
  if (!statOrNull(real)?.isFile()) throw notFound(`no file ${rel}`);
  return { file: real, type: CONTENT_TYPES[ext] ?? 'application/octet-stream' };
}

export async function readContained(root: string, rel: string, extensions: readonly string[]): Promise<{ body: Buffer; type: string }> {
  const { file, type } = await containedFile(root, rel, extensions);
  return { body: await readRegularFile(file, 'served file'), type };
}

/** lib/serve/explorer/ next to this module (or, from dist/lib/serve/, the package's lib/serve/explorer/). */
export function explorerDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'explorer'), path.resolve(here, '..', '..', '..', 'lib', 'serve', 'explorer')];
  return candidates.find((c) => statOrNull(c)?.isDirectory()) ?? candidates[0];
}

const require = createRequire(import.meta.url);

/** The directory of an installed package (its exports hide package.json, so walk up from its entry point). */
function packageDir(name: string): string | null {
  let file: string;
  try {
    file = realpathSync(require.resolve(name));
  } catch {
    return null;
  }
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) if (path.basename(dir) === name && statOrNull(path.join(dir, 'package.json'))) return dir;
  return null;
}

/** The vega builds the explorer loads, by the name it asks for. */
export function vendorFiles(): Record<string, string | null> {
  const at = (pkg: string, file: string) => {
    const dir = packageDir(pkg);
    return dir ? path.join(dir, 'build', file) : null;
  };
  return {
    'vega.min.js': at('vega', 'vega.min.js'),
    'vega-lite.min.js': at('vega-lite', 'vega-lite.min.js'),
    'vega-embed.min.js': at('vega-embed', 'vega-embed.min.js'),
  };
}
