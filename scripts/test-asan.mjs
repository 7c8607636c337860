#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UBSan (Debug configuration at -O2, CPU only) into build-asan/ and runs
// the mocha suite against it (extra arguments go to mocha). Run by .ci/run after `npm test`.
// -O2: at the Debug default -O0 (or -O1) the SIMD kernels run tens of times slower and the synthetic-benchmark
// tests alone take over 20 minutes on 2 cores.
// Without arguments the suite runs whole except two tests that `npm test` runs unsanitized on every submission:
// README's main job (`synth alpha-sweep --quick`, an end-to-end run of about 5 minutes unsanitized and over an hour
// under ASan on 2 cores; every native kernel it calls is exercised under the sanitizers by the unit tests) and the
// web explorer in headless Chromium (a browser test: Chromium would inherit the preloaded ASan runtime; the
// service's native parts run sanitized in the other serve and concept tests).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEBUG_FLAGS = '-O2 -g';
// cmake-js only reconfigures a fresh build folder: one configured with other debug flags is removed first.
const cache = path.join(root, 'build-asan', 'CMakeCache.txt');
if (existsSync(cache) && !readFileSync(cache, 'utf8').includes(`CMAKE_CXX_FLAGS_DEBUG:STRING=${DEBUG_FLAGS}\n`)) {
  console.log(`[test-asan] build-asan/ was configured with other debug flags: rebuilding it with ${DEBUG_FLAGS}`);
  rmSync(path.join(root, 'build-asan'), { recursive: true, force: true });
}
const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'install.mjs'), '--asan'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, SAE_CUDA: 'OFF', SAE_CMAKE_OPTION_CMAKE_CXX_FLAGS_DEBUG: DEBUG_FLAGS },
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
const args = process.argv.length > 2 ? process.argv.slice(2) : ['--grep', "README's main job|^web explorer in headless Chromium", '--invert'];
const r = spawnSync(process.execPath, [mocha, ...args], { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
