/**
 * The C++-only kernel tests (test/native-cpp/*_test.cc): configured with plain cmake (no cmake-js, no Node
 * headers), built (the sae_core library and the tests only) into build-ctest/ (kept between runs, so a rerun
 * rebuilds only what changed) and run with ctest. Skipped, saying so, only where cmake or a C++ compiler is missing.
 */
import { expect } from 'chai';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildDir = path.join(root, 'build-ctest');

// The plain toolchain: no sanitizer runtime preloaded into cmake and the compiler (npm run test:asan sets one).
const env: NodeJS.ProcessEnv = { ...process.env };
for (const key of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS']) delete env[key];

function run(cmd: string, args: string[], cwd = root): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 26 });
}

const output = (r: SpawnSyncReturns<string>) => `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').slice(-60).join('\n');

describe('C++-only kernel tests (cmake + ctest, no Node)', function () {
  this.timeout(900_000);

  it('encode, sparse backward and assignment match their plain references (ctest)', function () {
    const version = run('cmake', ['--version']);
    if (version.error) {
      console.log('      (skipped: cmake is not installed; the C++ kernel tests need cmake >= 3.18 and a C++17 compiler)');
      this.skip();
    }
    const configure = run('cmake', ['-S', root, '-B', buildDir, '-DSAE_TESTS=ON', '-DSAE_CUDA=OFF', '-DCMAKE_BUILD_TYPE=Release']);
    if (configure.status !== 0 && /No CMAKE_CXX_COMPILER could be found|CMAKE_CXX_COMPILER.*not set|is not a full path to an existing compiler/.test(output(configure))) {
      console.log('      (skipped: no C++ compiler found by cmake; the C++ kernel tests need a C++17 compiler)');
      this.skip();
    }
    expect(configure.status, `cmake configure failed:\n${output(configure)}`).to.equal(0);
    const jobs = String(Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 8)));
    const build = run('cmake', ['--build', buildDir, '--target', 'sae_kernel_tests', '--parallel', jobs]);
    expect(build.status, `build failed:\n${output(build)}`).to.equal(0);
    const ctest = run('ctest', ['--output-on-failure'], buildDir);
    expect(ctest.status, `ctest failed:\n${output(ctest)}`).to.equal(0);
    expect(ctest.stdout).to.match(/100% tests passed, 0 tests failed out of 3/);
  });
});
