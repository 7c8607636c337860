#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UBSan (Debug, CPU only) into build-asan/ and runs the whole
// mocha suite against it. Slow-ish (a few minutes); not part of `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'install.mjs'), '--asan'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, SAE_CUDA: 'OFF' },
});
if (build.status !== 0) process.exit(build.status ?? 1);
const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const env = {
  ...process.env,
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: 'detect_leaks=0:protect_shadow_gap=0:abort_on_error=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  CMSAE_NATIVE_BINDING: path.join(root, 'build-asan', 'Debug', 'cmsae.node'),
};
const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
const r = spawnSync(process.execPath, [mocha, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
