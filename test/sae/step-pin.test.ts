// Pins the CPU engine's training step bit for bit: 20 steps of several configurations, hashed (weights,
// AdamW moments, latent statistics, threshold, step count). Written before the backend redesign (issue 14) so that
// the redesign provably changes no CPU number. A hash depends on the SIMD level and the thread count (the
// partial sums of the batch statistics are per thread), so both are fixed here, one test per SIMD level.
import { createHash } from 'node:crypto';

import { expect } from 'chai';

import { info, setSimdLevel, setThreads, getThreads, TopKSAE, type TopKSAEOptions } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';

interface PinCase {
  name: string;
  options: Omit<TopKSAEOptions, 'd' | 'm' | 'k'>;
  paired: boolean;
  /** Drive the step as forwardBackward(extraDval) + applyUpdate instead of step(). */
  extraDval: boolean;
}

const d = 24, m = 96, k = 4, B = 48, STEPS = 20;

const CASES: PinCase[] = [
  { name: 'topk fvu, b_dec mean, weight decay', options: { bDecInit: 'mean', weightDecay: 1e-3 }, paired: false, extraDval: false },
  { name: 'topk mse, paired sum, iso pair loss', options: { loss: 'mse', pairLoss: 'iso', pairLossWeight: 0.1 }, paired: true, extraDval: false },
  { name: 'topk, paired mean, group pair loss, no projection', options: { pairedReduction: 'mean', pairLoss: 'group', pairLossWeight: 0.05, projectDecoderGrad: false }, paired: true, extraDval: false },
  { name: 'topk with AuxK (dead window 64)', options: { auxCoef: 1 / 32, kAux: 8, deadWindow: 64 }, paired: false, extraDval: false },
  { name: 'batchtopk with AuxK, capacity 6', options: { activation: 'batchtopk', batchCapacity: 6, auxCoef: 0.1, deadWindow: 96, thresholdMomentum: 0.5 }, paired: false, extraDval: false },
  { name: 'topk, extra dL/dval, clipping 0.05', options: { maxGradNorm: 0.05 }, paired: false, extraDval: true },
];

function runCase(c: PinCase): string {
  const rng = new Rng(1234);
  const sae = TopKSAE.create({ d, m, k, seed: 7, device: 'cpu', ...c.options });
  const batch = () => ({ rows: B, cols: d, data: rng.normals(B * d) });
  let auxSteps = 0;
  for (let s = 0; s < STEPS; s++) {
    const x = batch();
    const pair = c.paired ? batch() : undefined;
    if (c.extraDval) {
      const extraDval = Float32Array.from({ length: B * k }, () => 0.01 * rng.normal());
      sae.forwardBackward(x, { extraDval });
      sae.applyUpdate(1e-2, 0.5);
    } else {
      if (sae.step(x, { lr: 1e-2, pair }).auxLoss > 0) auxSteps++;
    }
  }
  // The AuxK cases must exercise AuxK (dead latents exist after a few steps), or the pin would not cover it.
  if (c.options.auxCoef) expect(auxSteps, `${c.name}: steps with an AuxK loss`).to.be.at.least(STEPS / 2);
  const h = createHash('sha256');
  const w = sae.getWeights();
  for (const a of [w.W_enc.data, w.b_enc, w.W_dec.data, w.b_dec]) h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  const st = sae.getTrainingState();
  for (const name of Object.keys(st.arrays).sort()) {
    const a = st.arrays[name];
    h.update(name);
    h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  }
  const status = sae.status();
  h.update(JSON.stringify([st.step, st.samplesSeen, st.threshold, st.thresholdReady, st.bDecMeanInitPending, status.deadFraction]));
  sae.dispose();
  return h.digest('hex').slice(0, 24);
}

// Hashes measured on the code before the backend redesign (commit 778bdab), 2 threads, per SIMD level.
const PINNED: Record<string, string[]> = {
  scalar: ['7a111910f143c48cb2d8df17', '8eea33b0de1b33d87ec8fce3', '9b9adcbc5440e6f9b6bdf678', '26961c70bf2d9194a9a34fd9', '1c886b50a790336d35554026', '28fd930793ff710b2e986a39'],
  avx2: ['4343d7a8c8e7ce5e5a39d0a6', '419ce2c59da2009d1e0342ee', 'b8a312f2ad9f3353a244e5ff', 'bebda5d289d092cdf07439dd', '524bb41fca67fe42d2abeca2', '56123b9821c8e02f2d5889ca'],
  avx512: ['ce4a28df21c16330bbc84725', 'dc17b2c7036e314bd7302885', '5440ed65738af6bc4102ee6b', '7539323bbc3affe6e103a1c7', '337740748a924652ec94608c', '7710fde6cc7009392cba7a95'],
};

describe('training step pin (CPU engine, bit for bit)', () => {
  let threads = 0;
  let level = '';
  before(() => {
    threads = getThreads();
    level = info().simd;
    setThreads(2);
  });
  after(() => {
    setThreads(threads);
    setSimdLevel(level as 'scalar' | 'avx2' | 'avx512');
  });
  for (const want of ['scalar', 'avx2', 'avx512'] as const) {
    it(`20 steps of ${CASES.length} configurations hash as pinned at SIMD level ${want}`, function () {
      if (setSimdLevel(want) !== want) this.skip(); // the CPU lacks this level: nothing of it can be checked here
      const got = CASES.map(runCase);
      if (process.env.CMSAE_PRINT_PINS) console.log(`${want}: ${JSON.stringify(got)}`);
      if (process.env.CMSAE_NATIVE_BINDING) {
        // Another build of the addon (npm run test:asan's -O2 sanitizer build): other compiler flags give other
        // float bits, so the pins (of the Release build npm install makes) do not apply; the run must still be
        // deterministic.
        console.log(`      (pins are for the Release build; ${process.env.CMSAE_NATIVE_BINDING} is checked for determinism)`);
        expect(CASES.map(runCase)).to.deep.equal(got);
        return;
      }
      expect(got).to.deep.equal(PINNED[want]);
    });
  }
});
