/**
 * The fused update (AdamW on W_enc and W_dec + decoder renorm + encoder repack, one pass per panel) against the
 * machine's in-place streaming floor, at (B, d, m, k) = (1024, 512, 8192, 32) by default.
 *   npx tsx bench/update-floor.ts [--reps N]
 * Bytes per update: W, Adam m and v of both matrices read and written (24 B per parameter), the gradients of the
 * latents that fired read (4 B per parameter of those rows), and the encode's copy written (BF16 VNNI panels, 2 B
 * per encoder weight, or the float32 panels, 4 B). floor = bytes / streamFloor (same threads, same pattern).
 */
import os from 'node:os';

import { TopKSAE, info } from '../lib/index.js';
import { native } from '../lib/native/load.js';
import { randomMatrix } from './random-matrix.js';

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] ?? 10) || 10;
const [B, d, m, k] = [1024, 512, 8192, 32];

const sae = TopKSAE.create({ d, m, k, seed: 1 });
const x = randomMatrix(B, d, 9);
let best = Infinity;
for (let r = 0; r < reps + 2; r++) {
  sae.forwardBackward(x);
  const t = process.hrtime.bigint();
  sae.applyUpdate(5e-4, 1);
  if (r >= 2) best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
}
const fired = new Set(sae.encode(x).indices).size; // latents with gradient rows (about the same every step)
sae.dispose();
const i = info();
const certified = i.encodePath !== 'fp32';
const params = 2 * m * d;
const bytes = 24 * params + 4 * 2 * fired * d + (certified ? 2 : 4) * m * d;
const gbps = native().streamFloor(16 * 1024 * 1024, 5);
const floorMs = (bytes / (gbps * 1e9)) * 1e3;
console.log(`machine: ${os.cpus()[0]?.model}, ${os.cpus().length} cpus, simd ${i.simd}, threads ${i.threads}, encode path ${i.encodePath}`);
console.log(`update of ${(params / 1e6).toFixed(1)} M parameters (${fired} latents fired): ${(bytes / 1e6).toFixed(0)} MB moved`);
console.log(`in-place streaming floor ${gbps.toFixed(1)} GB/s -> ${floorMs.toFixed(2)} ms`);
console.log(`fused update best of ${reps}: ${best.toFixed(2)} ms = ${(best / floorMs).toFixed(2)}x the floor`);
