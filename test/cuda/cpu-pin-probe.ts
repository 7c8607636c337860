/**
 * Not a suite file (no .test.ts): test/cuda/cpu-pin.test.ts runs it in a child mocha under CMSAE_EMULATE_CUDA=1,
 * once with the suite's root hooks (test/root-hooks.ts) and once without, to show that the CPU pin holds while
 * a "device" exists and that without the pin these probes would land on the device.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { TopKSAE, solveAssignment } from '../../lib/index.js';
import { cudaDeviceAvailable } from '../../lib/sae/options.js';
import { Rng } from '../helpers/random.js';
import { randomParams, roundToF32 } from '../helpers/reference.js';
import { saeFromRef } from '../helpers/sae.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('CPU pin probe (under CMSAE_EMULATE_CUDA=1)', () => {
  it('sees a CUDA device, and an explicit device auto uses it', () => {
    expect(cudaDeviceAvailable()).to.equal(true);
    using s = TopKSAE.create({ d: 4, m: 8, k: 1, device: 'auto' });
    expect(s.options.device).to.equal('cuda');
  });

  it('the reference helper saeFromRef pins the CPU by itself', () => {
    using s = saeFromRef(roundToF32(randomParams(4, 8, () => 0.3)), { k: 2 });
    expect(s.options.device).to.equal('cpu');
  });

  it('pinned: TopKSAE.create, fromWeights and load without a device option run on the CPU', async () => {
    using a = TopKSAE.create({ d: 4, m: 8, k: 1 });
    expect(a.options.device, 'create').to.equal('cpu');
    using b = TopKSAE.fromWeights(a.getWeights(), { k: 1 });
    expect(b.options.device, 'fromWeights').to.equal('cpu');
    const { dir, cleanup } = tempDir();
    try {
      await a.save(dir);
      using c = await TopKSAE.load(dir);
      expect(c.options.device, 'load').to.equal('cpu');
    } finally {
      cleanup();
    }
  });

  it('pinned: solveAssignment without a device option runs on the CPU', () => {
    const rng = new Rng(1);
    const n = 600; // large enough that 'auto' would use the device
    const r = solveAssignment({ rows: n, cols: n, data: Float32Array.from({ length: n * n }, () => rng.next()) }, { maximize: true });
    expect(r.stats.device ?? false).to.equal(false);
  });

  it('pinned: a child process (CLI, server) inherits the pin', () => {
    const script = "import { info } from './lib/index.js'; console.log('backend', info().backend);";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/backend cpu/);
  });
});
