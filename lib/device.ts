/** Where work runs: the one rule every entry point uses to turn 'auto' | 'cpu' | 'cuda' into a device. */
import { SaeError } from './errors.js';
import { native } from './native/load.js';

/** 'auto': CUDA when a device can be used (and the work is something the CUDA backend runs), else the CPU. */
export type Device = 'auto' | 'cpu' | 'cuda';

let cudaAvailable: boolean | undefined;
/** Whether a CUDA device can be used (asked once per process). */
export function cudaDeviceAvailable(): boolean {
  if (cudaAvailable === undefined) {
    const c = native().cudaInfo();
    cudaAvailable = c.compiled && c.available;
  }
  return cudaAvailable;
}

/** The requested device: the option, else CMSAE_DEVICE (empty counts as unset), else 'auto'. */
export function requestedDevice(requested?: unknown): Device {
  const d = requested ?? (process.env.CMSAE_DEVICE || 'auto');
  if (d !== 'auto' && d !== 'cpu' && d !== 'cuda') throw new SaeError('ERR_ARG', `device must be 'auto', 'cpu' or 'cuda', got '${String(d)}'`);
  return d;
}

/**
 * Resolves a request to 'cpu' | 'cuda'. `supported`: whether the CUDA backend runs this work ('auto' then stays
 * on the CPU); an explicit 'cuda' for unsupported work is ERR_ARG with `unsupported` as the message, or runs on
 * the CPU when no message is given. An explicit 'cuda' without a usable device is ERR_CUDA_UNAVAILABLE.
 */
export function resolveDevice(requested: unknown, opts: { supported?: boolean; unsupported?: string } = {}): 'cpu' | 'cuda' {
  const d = requestedDevice(requested);
  const supported = opts.supported ?? true;
  if (d === 'cpu') return 'cpu';
  if (d === 'auto') return supported && cudaDeviceAvailable() ? 'cuda' : 'cpu';
  if (!supported && opts.unsupported) throw new SaeError('ERR_ARG', opts.unsupported);
  if (!cudaDeviceAvailable()) {
    const c = native().cudaInfo();
    throw new SaeError(
      'ERR_CUDA_UNAVAILABLE',
      c.compiled
        ? `device 'cuda' was requested but no CUDA device can be used (${c.message}): use device 'cpu' or 'auto'`
        : "device 'cuda' was requested but this build has no CUDA backend (built without nvcc): use device 'cpu' or 'auto'",
    );
  }
  return supported ? 'cuda' : 'cpu';
}
