/** The only module that loads the native addon. Lazy: importing the library never throws. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SaeError } from '../errors.js';
import type { NativeBinding } from './types.js';

const require = createRequire(import.meta.url);
let cached: NativeBinding | undefined;
let cachedPath: string | undefined;

/** The package root: the nearest folder above this module whose package.json is ours. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'crossmodal-sae') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new SaeError('ERR_ADDON_MISSING', 'cannot find the crossmodal-sae package root');
    dir = up;
  }
}

/** Candidate paths in the order they are tried. */
export function bindingCandidates(): string[] {
  // An explicit override is the only candidate: never fall back silently to another build.
  if (process.env.CMSAE_NATIVE_BINDING) return [path.resolve(process.env.CMSAE_NATIVE_BINDING)];
  const root = packageRoot();
  const list: string[] = [];
  list.push(
    path.join(root, 'build', 'Release', 'cmsae.node'),
    path.join(root, 'build-gyp', 'Release', 'cmsae.node'),
    path.join(root, 'build', 'Debug', 'cmsae.node'),
  );
  return list;
}

/** Most threads the native pool accepts (setThreads and CMSAE_THREADS). */
export const MAX_THREADS = 1024;

/**
 * The thread count CMSAE_THREADS asks for, or undefined when it is unset or empty. Anything but a whole number
 * in [1, MAX_THREADS] is refused (ERR_ARG) before the addon starts its thread pool: "0", "-1", "abc", "1e9" and
 * "99999" used to become a silent default or abort the process.
 */
export function threadsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.CMSAE_THREADS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = /^\s*[0-9]+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_THREADS))
    throw new SaeError(
      'ERR_ARG',
      `CMSAE_THREADS=${JSON.stringify(raw)} is not a thread count: set it to a whole number in [1, ${MAX_THREADS}], or unset it for one thread per core`,
    );
  return n;
}

/** Loads (once) and returns the native binding, or throws SaeError ERR_ADDON_MISSING saying what to do. */
export function native(): NativeBinding {
  if (cached) return cached;
  threadsFromEnv();
  return loadFrom(bindingCandidates());
}

/** Loads the first candidate that works (and caches it); throws ERR_ADDON_MISSING listing every attempt. */
export function loadFrom(candidates: string[]): NativeBinding {
  const tried: string[] = [];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) {
      tried.push(`  - ${candidate}: not found`);
      continue;
    }
    try {
      const binding = require(candidate) as NativeBinding;
      binding.setErrorClass(SaeError);
      cached = binding;
      cachedPath = candidate;
      return binding;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      tried.push(`  - ${candidate}: ${err.code ?? 'ERROR'} ${String(err.message).split('\n')[0]}`);
    }
  }
  throw new SaeError(
    'ERR_ADDON_MISSING',
    'Could not load the crossmodal-sae native addon. Tried:\n' +
      tried.join('\n') +
      '\nFix: run `npm install` (or `npm run build:native`) in the package folder; it needs cmake >= 3.18 and a ' +
      'C++17 compiler (CUDA optional). Without CMake: `npm run build:gyp`. Or set CMSAE_NATIVE_BINDING=/path/to/cmsae.node.',
  );
}

/** Path of the loaded addon (after native() succeeded). */
export function nativePath(): string | undefined {
  return cachedPath;
}
