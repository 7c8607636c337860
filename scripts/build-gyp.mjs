#!/usr/bin/env node
// CPU-only build of the addon with node-gyp (for machines without CMake), into build-gyp/ so that it never
// wipes the cmake-js build in build/. x86-64 only (the SIMD kernels are compiled per ISA).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(root, 'build-gyp', 'work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
// node-gyp always builds into <cwd>/build, so run it in a scratch copy of the sources.
for (const p of ['binding.gyp', 'native', 'package.json']) cpSync(path.join(root, p), path.join(work, p), { recursive: true });
const nodeGyp = process.env.npm_config_node_gyp;
const cmd = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['npx', ['--yes', 'node-gyp', 'rebuild']];
const env = { ...process.env, NODE_PATH: path.join(root, 'node_modules') };
const r = spawnSync(cmd[0], cmd[1], { cwd: work, stdio: 'inherit', env });
if (r.status !== 0) process.exit(r.status ?? 1);
mkdirSync(path.join(root, 'build-gyp', 'Release'), { recursive: true });
cpSync(path.join(work, 'build', 'Release', 'cmsae.node'), path.join(root, 'build-gyp', 'Release', 'cmsae.node'));
console.log('[cmsae] node-gyp build ready: build-gyp/Release/cmsae.node');
