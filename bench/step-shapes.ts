/**
 * Median times of the training step and the encode over a few configurations (TopK, paired + pair loss, AuxK,
 * BatchTopK), ours only, as JSON lines. Used for before/after comparisons of engine changes: run it from two
 * checkouts in turn (`npx tsx bench/step-shapes.ts --label after`) and compare the medians (bench/RESULTS.md).
 */
import { performance } from 'node:perf_hooks';

import { TopKSAE, info, type TopKSAEOptions } from '../lib/index.js';

const label = process.argv.includes('--label') ? process.argv[process.argv.indexOf('--label') + 1] : 'run';
const reps = Number(process.env.REPS ?? 15);

interface Shape { name: string; B: number; d: number; m: number; k: number; options: Omit<TopKSAEOptions, 'd' | 'm' | 'k'>; paired: boolean }
const SHAPES: Shape[] = [
  { name: 'topk', B: 1024, d: 512, m: 8192, k: 32, options: {}, paired: false },
  { name: 'paired+iso', B: 512, d: 512, m: 8192, k: 32, options: { pairLoss: 'iso', pairLossWeight: 0.1 }, paired: true },
  { name: 'auxk', B: 1024, d: 512, m: 8192, k: 32, options: { auxCoef: 1 / 32, deadWindow: 2048 }, paired: false },
  { name: 'batchtopk', B: 1024, d: 512, m: 8192, k: 32, options: { activation: 'batchtopk' }, paired: false },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

for (const sh of SHAPES) {
  const sae = TopKSAE.create({ d: sh.d, m: sh.m, k: sh.k, seed: 1, device: 'cpu', ...sh.options });
  const x = { rows: sh.B, cols: sh.d, data: new Float32Array(sh.B * sh.d).map((_, i) => Math.sin(i * 0.37)) };
  const y = { rows: sh.B, cols: sh.d, data: new Float32Array(sh.B * sh.d).map((_, i) => Math.cos(i * 0.11)) };
  const step = () => sae.step(x, { lr: 5e-4, pair: sh.paired ? y : undefined });
  for (let i = 0; i < 3; i++) step();
  const stepMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    step();
    stepMs.push(performance.now() - t0);
  }
  const encMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    sae.encode(x);
    encMs.push(performance.now() - t0);
  }
  sae.dispose();
  console.log(JSON.stringify({ label, shape: sh.name, B: sh.B, d: sh.d, m: sh.m, k: sh.k, stepMs: median(stepMs), encodeMs: median(encMs), simd: info().simd, threads: info().threads }));
}
