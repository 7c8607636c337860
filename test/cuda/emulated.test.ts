/**
 * The CUDA parity suite against the CPU emulation of the device interfaces (CMSAE_EMULATE_CUDA=1): on machines
 * without a GPU this exercises everything around the CUDA kernels (the host mirror, resident rows, the
 * bindings, device selection, the trainer, the assignment's device hooks with a different candidate order).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('CUDA device paths on the CPU emulation of the device', function () {
  this.timeout(600_000);
  it('the whole parity suite passes with CMSAE_EMULATE_CUDA=1 (no test skipped)', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CMSAE_EMULATE_CUDA: '1' };
    delete env.CMSAE_DEVICE;
    const r = spawnSync(
      process.execPath,
      [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--no-config', '--node-option', 'import=tsx', '--timeout', '300000', '--reporter', 'json', path.join(root, 'test', 'cuda', 'parity.test.ts')],
      { cwd: root, encoding: 'utf8', env, maxBuffer: 1 << 26 },
    );
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    const failures = (json.failures as { fullTitle: string; err: { message: string } }[]).map((f) => `${f.fullTitle}: ${f.err.message}`);
    expect(failures, failures.join('\n')).to.deep.equal([]);
    expect(json.stats.pending, 'tests skipped under emulation').to.equal(0);
    expect(json.stats.passes).to.be.at.least(19);
  });
});
