/**
 * Mocha root hooks of the suite (registered in .mocharc.json "require"): pins the suite to the CPU engine.
 *
 * The library's default device is 'auto' (CMSAE_DEVICE overrides it): on a machine with a CUDA device, or under
 * CMSAE_EMULATE_CUDA=1, every test that names no device would run through the device (CUDA TF32 by default), and
 * the reference tests (exact indices at 1e-5, gradients at 2e-3, the SIMD-level tests) would stop testing the CPU
 * kernels. So this module sets CMSAE_DEVICE=cpu for the test process and every child it spawns (CLI runs, servers,
 * workers), before any test file loads. A value set by the caller is replaced (and said so on stderr).
 * On top of this default, the tests that compare with a reference name `device: 'cpu'` themselves, and the
 * device tests (test/cuda/*) name `device: 'cuda'` (or 'auto' where the selection rule is what they test).
 * test/cuda/cpu-pin.test.ts proves the pin holds while a "device" exists (CMSAE_EMULATE_CUDA=1).
 */
import { TopKSAE } from '../lib/index.js';

export const PINNED_DEVICE = 'cpu';

if (process.env.CMSAE_DEVICE && process.env.CMSAE_DEVICE !== PINNED_DEVICE)
  process.stderr.write(`(test suite: CMSAE_DEVICE=${process.env.CMSAE_DEVICE} replaced by ${PINNED_DEVICE}; device tests name their device)\n`);
process.env.CMSAE_DEVICE = PINNED_DEVICE;

export const mochaHooks = {
  beforeAll(): void {
    // The pin must reach the library: an SAE that names no device lands on the CPU engine.
    using probe = TopKSAE.create({ d: 2, m: 4, k: 1 });
    if (probe.options.device !== PINNED_DEVICE) throw new Error(`the CPU pin does not hold: an SAE with default options runs on '${probe.options.device}'`);
  },
  afterEach(this: Mocha.Context): void {
    // A test that changes the default device would silently move every later test off the CPU.
    if (process.env.CMSAE_DEVICE !== PINNED_DEVICE)
      throw new Error(`test "${this.currentTest?.fullTitle()}" changed CMSAE_DEVICE to '${process.env.CMSAE_DEVICE}': pass a device option (or a child env) instead`);
  },
};
