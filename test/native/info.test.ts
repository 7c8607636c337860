import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

import { SaeError, getThreads, info, setThreads } from '../../lib/index.js';
import { packageRoot, threadsFromEnv } from '../../lib/native/load.js';
import { expectSaeError } from '../helpers/expect-error.js';

describe('info, threads and the addon loader', () => {
  it('info() reports version, backend, SIMD level, threads and CUDA availability', () => {
    const i = info();
    expect(i.version).to.match(/^\d+\.\d+\.\d+/);
    expect(i.backend).to.equal(i.cuda.compiled && i.cuda.available && process.env.CMSAE_DEVICE !== 'cpu' ? 'cuda' : 'cpu');
    expect(['cpu', 'cuda']).to.include(i.build);
    expect(['scalar', 'avx2', 'avx512']).to.include(i.simd);
    expect(i.threads).to.be.at.least(1);
    expect(i.cuda.compiled).to.equal(i.build === 'cuda' || i.cuda.emulated === true); // the CPU emulation stands in for a CUDA build
    expect(i.cuda.available).to.be.a('boolean');
    if (!i.cuda.available) expect(i.cuda.message).to.be.a('string').and.not.equal('');
  });

  it('setThreads changes the native thread count and validates its argument', () => {
    const before = getThreads();
    expect(setThreads(3)).to.equal(3);
    expect(getThreads()).to.equal(3);
    setThreads(before);
    expect(() => setThreads(0)).to.throw(SaeError);
    expect(() => setThreads(1.5)).to.throw(SaeError);
  });

  it('CMSAE_THREADS sets the default thread count', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', "import('./lib/index.ts').then(m => console.log(m.getThreads()))"], {
      cwd: packageRoot(),
      env: { ...process.env, CMSAE_THREADS: '3' },
      encoding: 'utf8',
    });
    expect(out.trim()).to.equal('3');
  });

  it('CMSAE_THREADS that is not a whole number in [1, 1024] is refused with ERR_ARG before the pool starts', () => {
    for (const bad of ['99999', '1025', '0', '-1', 'abc', '1e9', '2.5', '0x10', '3 threads'])
      expectSaeError(() => threadsFromEnv({ CMSAE_THREADS: bad }), 'ERR_ARG', new RegExp(`CMSAE_THREADS=${JSON.stringify(bad)}.*\\[1, 1024\\]`));
    expect(threadsFromEnv({ CMSAE_THREADS: ' 2 ' })).to.equal(2);
    expect(threadsFromEnv({ CMSAE_THREADS: '1024' })).to.equal(1024);
    expect(threadsFromEnv({ CMSAE_THREADS: '' })).to.equal(undefined);
    expect(threadsFromEnv({})).to.equal(undefined);
    // The value that used to abort the process (exit 134): cmsae info now exits 2 with the message.
    const bin = path.join(packageRoot(), 'lib', 'cli', 'main.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(bin)}).then(async (m) => { process.exitCode = await m.main(['info']); })`], {
      cwd: packageRoot(),
      encoding: 'utf8',
      env: { ...process.env, CMSAE_THREADS: '99999' },
    });
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain('ERR_ARG').and.contain('CMSAE_THREADS="99999"');
  });

  it('a missing addon gives ERR_ADDON_MISSING with the paths tried and the fix', () => {
    const script = `
      import('./lib/native/load.ts').then((l) => {
        try { l.loadFrom(['/nonexistent/cmsae.node']); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      });`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: packageRoot(), encoding: 'utf8' });
    const out = JSON.parse(r.stdout.trim());
    expect(out.code).to.equal('ERR_ADDON_MISSING');
    expect(out.message).to.contain('/nonexistent/cmsae.node');
    expect(out.message).to.match(/npm install/);
  });

  it('cmsae info exits 0; unknown commands exit 2', () => {
    const bin = path.join(packageRoot(), 'lib', 'cli', 'main.ts');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(bin)}).then(async (m) => { process.exitCode = await m.main(${JSON.stringify(args)}); })`], {
        cwd: packageRoot(),
        encoding: 'utf8',
      });
    const ok = run(['info', '--json']);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout).simd).to.be.a('string');
    const bad = run(['frobnicate']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/unknown command/);
  });
});
