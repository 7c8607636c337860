import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { expect } from 'chai';

import { tempDir } from '../helpers/tmp.js';
import { tinyPair } from './tiny-pair.js';

const ENTRY = path.resolve('test/helpers/cli-entry.ts');

describe('cmsae serve (real HTTP on 127.0.0.1)', function () {
  this.timeout(60_000);
  const tmp = tempDir('cmsae-serve-cli-');
  after(() => tmp.cleanup());

  it('--port 0: the first stdout line is "listening on http://127.0.0.1:PORT"; it answers, drains on SIGTERM and exits 0', async () => {
    const pairDir = path.join(tmp.dir, 'pair');
    using pair = tinyPair({ d: 12 });
    await pair.save(pairDir);
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', '--pair', pairDir, '--port', '0', '--max-wait-ms', '400', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const first = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout });
        rl.once('line', resolve);
        child.once('exit', () => reject(new Error(`exited before listening: ${stderr}`)));
      });
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(first);
      expect(m, first).to.not.equal(null);
      const base = m![1];
      expect(await (await fetch(`${base}/healthz`)).json()).to.deep.equal({ ok: true });
      // A request waiting in its 400 ms batch window when SIGTERM arrives is still answered.
      const inFlight = fetch(`${base}/v1/encode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ modality: 'image', embeddings: Array(12).fill(0.5) }) });
      for (let i = 0; i < 200 && !/cmsae_queue_rows\{op="encode_image"\} 1/.test(await (await fetch(`${base}/metrics`)).text()); i++) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGTERM');
      const r = await inFlight;
      expect(r.status).to.equal(200);
      expect(((await r.json()) as { indices: number[][] }).indices[0]).to.have.length(4);
      expect(await exited).to.equal(0);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  /** Runs `cmsae serve ARGS` to its exit (these never get to listen). */
  async function serveExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(killer);
    return { code, stderr };
  }

  it('refuses a non-loopback host without --token or --insecure (exit 2)', async () => {
    const r = await serveExit(['--pair', tmp.dir, '--host', '0.0.0.0', '--port', '0']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/--token/);
  });

  it('refuses a port outside [0, 65535] and an empty --cors list as usage errors (exit 2)', async () => {
    for (const port of ['70000', '8080x']) {
      const r = await serveExit(['--pair', tmp.dir, '--port', port]);
      expect(r.code, port).to.equal(2);
      expect(r.stderr, port).to.match(/--port.*\[0, 65535\]/);
    }
    for (const cors of ['', ',,']) {
      const r = await serveExit(['--pair', tmp.dir, '--port', '0', '--cors', cors]);
      expect(r.code, JSON.stringify(cors)).to.equal(2);
      expect(r.stderr).to.match(/--cors.*origins/);
    }
  });

  it('refuses an --image-root that is missing or not a directory at startup (ERR_IO, exit 1)', async () => {
    const file = path.join(tmp.dir, 'not-a-dir');
    writeFileSync(file, 'x');
    for (const [root, why] of [[path.join(tmp.dir, 'nonexistent'), /does not exist/], [file, /not a directory/]] as const) {
      const r = await serveExit(['--pair', tmp.dir, '--port', '0', '--image-root', root]);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.match(/ERR_IO: image root/).and.match(why);
    }
  });
});
