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

/** Loads (once) and returns the native binding, or throws SaeError ERR_ADDON_MISSING saying what to do. */
export function native(): NativeBinding {
  if (cached) return cached;
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
