#!/usr/bin/env node
// Builds the native addon with cmake-js: always the CPU code, plus the CUDA backend when nvcc is found
// (SAE_CUDA=ON|OFF forces the choice). Flags: --asan (AddressSanitizer+UBSan debug build in build-asan/),
// --native (-march=native). Extra CMake options: SAE_CMAKE_OPTION_<NAME>=value.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const asan = args.includes('--asan');

function findNvcc() {
  if (process.env.CUDACXX && existsSync(process.env.CUDACXX)) return process.env.CUDACXX;
  const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  for (const dir of [process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean)) {
    const p = path.join(dir, 'bin', 'nvcc');
    if (existsSync(p)) return p;
  }
  return null;
}

const env = { ...process.env };
let cuda = (process.env.SAE_CUDA ?? '').toUpperCase();
const nvcc = findNvcc();
if (cuda !== 'ON' && cuda !== 'OFF') cuda = nvcc ? 'ON' : 'OFF';
if (cuda === 'ON' && !nvcc) {
  console.error('[cmsae] SAE_CUDA=ON but no nvcc was found (set CUDACXX or CUDA_PATH)');
  process.exit(1);
}
if (cuda === 'ON' && !env.CUDACXX) env.CUDACXX = nvcc;
env.SAE_CUDA = cuda;

const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const out = asan ? 'build-asan' : 'build';
const cli = [cmakeJs, 'compile', '--out', out, `--CDSAE_CUDA=${cuda}`];
if (asan) cli.push('--debug', '--CDSAE_SANITIZE=address,undefined');
if (args.includes('--native')) cli.push('--CDSAE_NATIVE=ON');
for (const [k, v] of Object.entries(process.env)) {
  if (k.startsWith('SAE_CMAKE_OPTION_')) cli.push(`--CD${k.slice('SAE_CMAKE_OPTION_'.length)}=${v}`);
}
console.log(`[cmsae] building the native addon (${cuda === 'ON' ? 'CPU + CUDA' : 'CPU only'}) into ${out}/`);
const r = spawnSync(process.execPath, cli, { cwd: root, env, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('[cmsae] native build failed: needs cmake >= 3.18 and a C++17 compiler; see README.md "Building"');
  process.exit(r.status ?? 1);
}
