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
  /**
   * Encode path setting ('auto' | 'fp32' | 'avx512-bf16' | 'amx-bf16') and the path 'auto' resolves to for an SAE
   * with 8k <= m: 'amx-bf16' or 'avx512-bf16' (the certified mixed-precision Top-K encode, whose result is identical
   * to the float32 one) or 'fp32'. encodePaths lists what this CPU and SIMD level can run, best first.
   */
  encodeMode: EncodeMode;
  encodePath: 'amx-bf16' | 'avx512-bf16' | 'fp32';
  encodePaths: string[];
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
    encodeMode: bi.encodeMode as EncodeMode,
    encodePath: bi.encodePath as Info['encodePath'],
    encodePaths: bi.encodePaths,
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

export type EncodeMode = 'auto' | 'fp32' | 'avx512-bf16' | 'amx-bf16';

/**
 * Chooses the CPU encode path for every SAE in this process: 'auto' (default, or CMSAE_ENCODE): the certified BF16
 * path the CPU has (AMX-BF16 tiles, else AVX-512-BF16) for calls with 8k <= m, else float32; 'fp32' turns the
 * certified path off; 'amx-bf16' / 'avx512-bf16' force that path for every call (ERR_UNSUPPORTED where the CPU or
 * the SIMD level lacks it). Every path returns the same codes bit for bit. Returns the setting.
 */
export function setEncodePath(mode: EncodeMode): EncodeMode {
  return native().setEncodePath(mode) as EncodeMode;
}

/** Rows encoded by the certified path, rows it handed to float32 (bound too loose), and exact recomputes so far. */
export interface EncodeStats {
  certifiedRows: number;
  fallbackRows: number;
  candidates: number;
  auxCandidates: number;
}

export function encodeStats(): EncodeStats {
  return native().encodeStats();
}
