import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = path.join(root, 'test', 'helpers', 'cli-entry.ts');
const cmsae = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CMSAE_THREADS: '2' } });

describe('cmsae synth', function () {
  this.timeout(300_000);
  const { dir, cleanup } = tempDir();
  after(cleanup);

  for (const kind of ['alpha-sweep', 'lambda-sweep'] as const) {
    it(`${kind} (tiny): writes results.json, SVG and PNG plots and report.html`, () => {
      const out = path.join(dir, kind);
      const extra = kind === 'alpha-sweep' ? ['--alphas', '0.9'] : ['--multipliers', '1/64,64'];
      const r = cmsae(['synth', kind, '--quick', '--epochs', '1', '--n-train', '1500', '--seeds', '1', '--quiet', '--out', out, ...extra]);
      expect(r.status, r.stderr).to.equal(0);
      const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
      const methods = res.records.map((x: { method: string }) => x.method).sort();
      expect(methods).to.deep.equal(kind === 'alpha-sweep' ? ['posthoc', 'separate', 'shared'] : ['posthoc', 'separate', 'shared', 'shared+group', 'shared+group', 'shared+iso', 'shared+iso']);
      for (const rec of res.records) for (const v of Object.values(rec.metrics)) expect(Number.isFinite(v as number)).to.equal(true);
      expect(res.claims.length).to.be.greaterThan(0);
      expect(res.theory.every((t: { relativeError: number }) => t.relativeError < 0.05)).to.equal(true);
      const fig = kind === 'alpha-sweep' ? 'figure5' : 'figure6';
      expect(readFileSync(path.join(out, `${fig}.svg`), 'utf8')).to.match(/^<svg/);
      expect(readFileSync(path.join(out, `${fig}.png`)).subarray(1, 4).toString()).to.equal('PNG');
      const html = readFileSync(path.join(out, 'report.html'), 'utf8');
      expect(html).to.match(/paper's claims/).and.to.match(/Reductions against the paper/).and.to.match(/<svg/);
      expect(existsSync(path.join(out, 'report.html'))).to.equal(true);
    });
  }
});
