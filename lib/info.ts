/** Library and runtime facts, and process-wide native settings (threads, SIMD level). */
import { SaeError } from './errors.js';
import { MAX_THREADS, native, nativePath } from './native/load.js';
import type { NativeCudaInfo } from './native/types.js';
import { VERSION } from './version.js';

export interface Info {
  version: string;
  /** Where a new SAE with default options runs ('auto': CUDA when a device can be used; CMSAE_DEVICE overrides). */
  backend: 'cpu' | 'cuda';
  /** Native build flavor: 'cpu', or 'cuda' when compiled with nvcc. */
  build: 'cpu' | 'cuda';
  /** SIMD level in use and the best one this CPU supports. */
  simd: string;
  simdDetected: string;
  threads: number;
  cuda: NativeCudaInfo;
  addonPath: string | undefined;
  compiler: string;
  node: string;
  platform: string;
}

export function info(): Info {
  const b = native();
  const bi = b.buildInfo();
  return {
    version: VERSION,
    backend: defaultBackend(b.cudaInfo()),
    build: bi.flavor,
    simd: bi.simd,
    simdDetected: bi.simdDetected,
    threads: bi.threads,
    cuda: b.cudaInfo(),
    addonPath: nativePath(),
    compiler: bi.compiler,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

function defaultBackend(c: NativeCudaInfo): 'cpu' | 'cuda' {
  const env = process.env.CMSAE_DEVICE;  // not validated here: info() must not throw
  return env !== 'cpu' && c.compiled && c.available ? 'cuda' : 'cpu';
}

/** Sets the native thread count (default: CMSAE_THREADS, which must be in [1, 1024], else the number of cores). Returns it. */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) throw new SaeError('ERR_ARG', `threads must be an integer in [1, ${MAX_THREADS}], got ${String(n)}`);
  return native().setThreads(n);
}

export function getThreads(): number {
  return native().buildInfo().threads;
}

/** Forces a SIMD level ('scalar' | 'avx2' | 'avx512'), clamped to what the CPU supports. Returns the level set. */
export function setSimdLevel(level: 'scalar' | 'avx2' | 'avx512'): string {
  return native().setSimdLevel(level);
}
