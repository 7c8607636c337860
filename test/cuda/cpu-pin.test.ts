/**
 * The suite's CPU pin (test/root-hooks.ts, registered in .mocharc.json) holds while a CUDA "device" exists: the
 * probes of test/cuda/cpu-pin-probe.ts run in a child mocha under CMSAE_EMULATE_CUDA=1 with the root hooks the
 * config registers, and all pass; without the root hooks the pinned probes fail (so the check can fail), while
 * the explicit pins (saeFromRef's device 'cpu') still hold.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ProbeRun {
  passed: string[];
  failed: string[];
  pending: number;
}

function runProbe(requires: string[]): ProbeRun {
  const env: NodeJS.ProcessEnv = { ...process.env, CMSAE_EMULATE_CUDA: '1' };
  delete env.CMSAE_DEVICE; // as a user's shell would have it: only the root hooks set it
  const args = [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--no-config', '--node-option', 'import=tsx', '--timeout', '120000', '--reporter', 'json'];
  for (const r of requires) args.push('--require', r);
  args.push(path.join(root, 'test', 'cuda', 'cpu-pin-probe.ts'));
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const start = r.stdout.indexOf('{');
  if (start < 0) throw new Error(`the probe run printed no JSON (exit ${r.status}): ${r.stderr}`);
  const json = JSON.parse(r.stdout.slice(start));
  const titles = (list: { title: string }[]) => list.map((t) => t.title);
  return { passed: titles(json.passes), failed: titles(json.failures), pending: json.stats.pending };
}

describe('the suite is pinned to the CPU while a CUDA device exists', function () {
  this.timeout(300_000);
  const config = JSON.parse(readFileSync(path.join(root, '.mocharc.json'), 'utf8')) as { require?: string[] };

  it('.mocharc.json registers the root hooks that pin the CPU', () => {
    expect(config.require ?? []).to.include('test/root-hooks.ts');
  });

  it('with the root hooks, under CMSAE_EMULATE_CUDA=1, every probe passes (default SAEs, assignment, children on the CPU)', () => {
    const run = runProbe(config.require ?? []);
    expect(run.failed, run.failed.join('\n')).to.deep.equal([]);
    expect(run.pending).to.equal(0);
    expect(run.passed).to.have.length(5);
  });

  it('without them the defaults land on the emulated device: the pinned probes fail, the explicit pins hold', () => {
    const run = runProbe([]);
    expect(run.passed.filter((t) => !t.startsWith('pinned:'))).to.have.length(2);
    expect(run.failed.filter((t) => t.startsWith('pinned:'))).to.have.length(3);
  });
});
