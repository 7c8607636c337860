/**
 * Divergence checks shared by the CPU suite (test/sae/divergence.test.ts) and the device parity suite: a step
 * whose loss, gradient or update would be non-finite must fail with ERR_DIVERGED (or ERR_DEGENERATE_BATCH for a
 * batch too flat for FVU) and leave every bit of the model as it was, on every training entry point.
 */
import { expect } from 'chai';

import { DeviceRows, TopKSAE, type Matrix, type TopKSAEOptions } from '../../lib/index.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';

/** Every byte of the model's state: weights, moments, latent statistics, scalars, status. */
export function snapshot(sae: TopKSAE): Map<string, Uint8Array | string> {
  const out = new Map<string, Uint8Array | string>();
  const bytes = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  const w = sae.getWeights();
  out.set('W_enc', bytes(w.W_enc.data));
  out.set('b_enc', bytes(w.b_enc));
  out.set('W_dec', bytes(w.W_dec.data));
  out.set('b_dec', bytes(w.b_dec));
  const { arrays, ...scalars } = sae.getTrainingState();
  for (const [name, a] of Object.entries(arrays)) out.set(name, bytes(a));
  out.set('scalars', JSON.stringify(scalars));
  out.set('status', JSON.stringify(sae.status()));
  return out;
}

export function expectSameState(sae: TopKSAE, before: Map<string, Uint8Array | string>, what: string): void {
  const now = snapshot(sae);
  for (const [key, v] of before) expect(now.get(key), `${what}: ${key} changed`).to.deep.equal(v);
}

function allFinite(sae: TopKSAE): boolean {
  const w = sae.getWeights();
  const { arrays } = sae.getTrainingState();
  return [w.W_enc.data, w.b_enc, w.W_dec.data, w.b_dec, ...Object.values(arrays)].every((a) => a.every(Number.isFinite));
}

const batch = (rng: Rng, rows: number, d: number, scale: number): Matrix => ({ rows, cols: d, data: rng.normals(rows * d, scale) });

export interface DivergenceSetup {
  device: 'cpu' | 'cuda';
  /** Awkward by default: d 7, m 33, k 5, 13 rows. */
  d?: number;
  m?: number;
  k?: number;
  rows?: number;
  options?: Partial<TopKSAEOptions>;
}

function make(s: DivergenceSetup, extra: Partial<TopKSAEOptions> = {}): TopKSAE {
  return TopKSAE.create({ d: s.d ?? 7, m: s.m ?? 33, k: s.k ?? 5, seed: 5, device: s.device, ...s.options, ...extra });
}

/** A few ordinary steps so that moments, statistics and the step count are not at their initial values. */
function warm(sae: TopKSAE, rng: Rng, rows: number, pair = false): void {
  for (let i = 0; i < 3; i++) sae.step(batch(rng, rows, sae.d, 1), { lr: 1e-3, pair: pair ? batch(rng, rows, sae.d, 1) : undefined });
}

/** make() followed by warm() with a seeded batch stream: twins made with the same seed are identical. */
function warmed(s: DivergenceSetup, extra: Partial<TopKSAEOptions>, seed: number, rows: number): TopKSAE {
  const sae = make(s, extra);
  warm(sae, new Rng(seed), rows);
  return sae;
}

/**
 * After a failed step the model must continue exactly like a twin that never saw the failing batch: both take
 * the same ordinary step and must end bit-identical (this also covers state no accessor shows).
 */
function expectTwinContinues(a: TopKSAE, b: TopKSAE, rng: Rng, rows: number, pair: boolean): void {
  const x = batch(rng, rows, a.d, 1);
  const y = pair ? batch(rng, rows, a.d, 1) : undefined;
  const ra = a.step(x, { lr: 1e-3, pair: y });
  const rb = b.step(x, { lr: 1e-3, pair: y });
  expect(ra).to.deep.equal(rb);
  expectSameState(a, snapshot(b), 'twin after the failed step');
}

/**
 * MSE on inputs of scale 1e30: the gradient overflows float32 (b_dec mean init pending unless the batch is a
 * single row, which the mean would reconstruct exactly; b_dec must come back).
 */
export function checkNonFiniteGradient(s: DivergenceSetup, pair = false): void {
  const rows = s.rows ?? 13;
  const rng = new Rng(11);
  const opts: Partial<TopKSAEOptions> = { loss: 'mse', bDecInit: rows > 1 ? 'mean' : 'zeros', ...(pair ? { pairLoss: 'iso', pairLossWeight: 0.1 } : {}) };
  using sae = make(s, opts);
  using twin = make(s, opts);
  const before = snapshot(sae);
  const huge = batch(rng, rows, sae.d, 1e30);
  const hugePair = pair ? batch(rng, rows, sae.d, 1e30) : undefined;
  expectSaeError(() => sae.step(huge, { lr: 1e-3, pair: hugePair }), 'ERR_DIVERGED', /not finite.*left as it was/);
  expectSameState(sae, before, 'step');
  expectSaeError(() => sae.forwardBackward(huge, { pair: hugePair }), 'ERR_DIVERGED');
  expectSameState(sae, before, 'forwardBackward');
  expectSaeError(() => sae.applyUpdate(1e-3), 'ERR_STATE', /forwardBackward/);
  expectTwinContinues(sae, twin, rng, rows, pair);
}

/** The same through stepAsync: the promise rejects with the code and nothing changes. */
export async function checkNonFiniteGradientAsync(s: DivergenceSetup): Promise<void> {
  const rows = s.rows ?? 13;
  const rng = new Rng(12);
  using sae = warmed(s, { loss: 'mse' }, 1, rows);
  using twin = warmed(s, { loss: 'mse' }, 1, rows);
  const before = snapshot(sae);
  await expectSaeRejection(sae.stepAsync(batch(rng, rows, sae.d, 1e30), { lr: 1e-3 }), 'ERR_DIVERGED');
  expectSameState(sae, before, 'stepAsync');
  expectTwinContinues(sae, twin, rng, rows, false);
}

/** lr 1e10: the weights grow by ~1e5 per step until a step fails; that step leaves the model as it was. */
export function checkExplodingLearningRate(s: DivergenceSetup): number {
  const rows = s.rows ?? 13;
  const rng = new Rng(13);
  using sae = make(s);
  for (let i = 0; i < 40; i++) {
    const x = batch(rng, rows, sae.d, 1);
    const before = snapshot(sae);
    try {
      sae.step(x, { lr: 1e10 });
    } catch (e) {
      expect((e as { code?: string }).code, String(e)).to.equal('ERR_DIVERGED');
      expectSameState(sae, before, `step ${i}`);
      expect(allFinite(sae)).to.equal(true);
      return i;
    }
    expect(allFinite(sae), `step ${i} left non-finite values without an error`).to.equal(true);
  }
  throw new Error('lr 1e10 never diverged within 40 steps');
}

/** forwardBackward succeeds; applyUpdate with an absurd gradient scale overflows, is refused, and a sane one still works. */
export function checkUpdateOverflow(s: DivergenceSetup): void {
  const rows = s.rows ?? 13;
  const rng = new Rng(14);
  using sae = make(s);
  warm(sae, new Rng(2), rows);
  sae.forwardBackward(batch(rng, rows, sae.d, 1));
  const before = snapshot(sae);
  expectSaeError(() => sae.applyUpdate(1e-3, 1e30), 'ERR_DIVERGED', /AdamW update/);
  expectSameState(sae, before, 'applyUpdate');
  sae.applyUpdate(1e-3);
  expect(sae.status().step).to.equal(4);
  expect(allFinite(sae)).to.equal(true);
}

/** Inputs of scale 1e-21 under FVU: the loss scale overflows float32, a typed error, nothing changes. */
export function checkTinyFvuBatch(s: DivergenceSetup): void {
  const rows = s.rows ?? 13;
  const rng = new Rng(15);
  using sae = make(s, { bDecInit: 'mean' });
  const before = snapshot(sae);
  const tiny = batch(rng, rows, sae.d, 1e-21);
  expectSaeError(() => sae.step(tiny, { lr: 1e-3 }), 'ERR_DEGENERATE_BATCH', /too small.*mse/);
  expectSaeError(() => sae.forwardBackward(tiny), 'ERR_DEGENERATE_BATCH');
  expectSameState(sae, before, 'tiny FVU batch');
  // Rescaled, the same batch trains (FVU is scale-free), with finite results.
  const r = sae.step({ ...tiny, data: tiny.data.map((v) => v * 1e21) }, { lr: 1e-3 });
  expect(Number.isFinite(r.loss) && Number.isFinite(r.gradNorm)).to.equal(true);
}

/** Resident rows (device 'cuda' only): stepRows, stepRowsAsync and forwardBackwardRows over rows of scale 1e30. */
export async function checkResidentRows(s: DivergenceSetup): Promise<void> {
  const rows = s.rows ?? 13;
  const rng = new Rng(16);
  using sae = warmed(s, { loss: 'mse' }, 3, rows);
  using twin = warmed(s, { loss: 'mse' }, 3, rows);
  using xr = new DeviceRows(rows + 4, sae.d);
  using yr = new DeviceRows(rows + 4, sae.d);
  xr.upload(0, batch(rng, rows + 4, sae.d, 1e30));
  yr.upload(0, batch(rng, rows + 4, sae.d, 1e30));
  const idx = Int32Array.from({ length: rows }, (_, i) => (i * 3) % (rows + 4));
  const before = snapshot(sae);
  expectSaeError(() => sae.stepRows(xr, idx, { lr: 1e-3 }), 'ERR_DIVERGED');
  expectSaeError(() => sae.stepRows(xr, idx, { lr: 1e-3, pair: yr }), 'ERR_DIVERGED');
  expectSaeError(() => sae.forwardBackwardRows(xr, idx), 'ERR_DIVERGED');
  await expectSaeRejection(sae.stepRowsAsync(xr, idx, { lr: 1e-3 }), 'ERR_DIVERGED');
  expectSameState(sae, before, 'resident rows');
  expectTwinContinues(sae, twin, rng, rows, false);
}
