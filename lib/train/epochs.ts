/**
 * The training loop: epochs over seeded shuffles of the training rows (epochOrder), a batch of batchSize
 * rows at a time, one optimizer step each, with the event loop given control after every step. The Trainer
 * (files, checkpoints, resume) and the synthetic sweep (rows in memory) both run it.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import { epochOrder } from '../data/paired.js';
import type { TrainConfig } from './config.js';
import type { StepProgress } from './methods.js';
import { lrFactor } from './schedule.js';

/** Where a run stands: steps done, and the epoch and batch of the next step. */
export interface LoopPosition {
  step: number;
  epoch: number;
  batch: number;
}

export interface EpochPlan {
  /** The rows batches are drawn from (ids the step function understands, e.g. file rows). */
  rows: Int32Array;
  /** Seed of the per-epoch shuffles. */
  seed: number;
  epochs: number;
  batchSize: number;
  /** Batches per epoch: the last one of an epoch may hold fewer than batchSize rows. */
  stepsPerEpoch: number;
  /** Learning rate of the step after `step` steps. */
  lr: (step: number) => number;
}

/** The plan of a run's train settings over `rows` (stepsPerEpoch batches each epoch): lr(step) = lr * lrFactor(schedule). */
export function epochPlan(t: TrainConfig['train'], rows: Int32Array, stepsPerEpoch: number): EpochPlan {
  const total = stepsPerEpoch * t.epochs;
  return { rows, seed: t.seed, epochs: t.epochs, batchSize: t.batchSize, stepsPerEpoch, lr: (step) => t.lr * lrFactor(t.schedule, step, total, t.warmupRatio) };
}

export interface EpochHooks {
  /** Before each step, at the position it would start from (may throw, e.g. to stop). */
  beforeStep?: (at: LoopPosition) => Promise<void>;
  /** After each step: what it reported, the epoch it ran in, its learning rate, and the position after it. */
  afterStep?: (s: StepProgress, done: { epoch: number; lr: number; next: LoopPosition }) => Promise<void>;
  /** After each epoch's last step (steps done so far). */
  afterEpoch?: (epoch: number, step: number) => Promise<void>;
}

/**
 * Runs the plan from `from` (a fresh run: step 0, epoch 0, batch 0) to its end: step(rows, lr) is one optimizer
 * step on the batch of those rows. Returns the steps done and the last step's report (null when none ran).
 */
export async function runEpochs(
  plan: EpochPlan,
  step: (rows: Int32Array, lr: number) => StepProgress,
  from: LoopPosition = { step: 0, epoch: 0, batch: 0 },
  hooks: EpochHooks = {},
): Promise<{ step: number; last: StepProgress | null }> {
  const B = plan.batchSize;
  let done = from.step;
  let last: StepProgress | null = null;
  for (let epoch = from.epoch; epoch < plan.epochs; epoch++) {
    const order = epochOrder(plan.rows, plan.seed, epoch);
    for (let b = epoch === from.epoch ? from.batch : 0; b < plan.stepsPerEpoch; b++) {
      await hooks.beforeStep?.({ step: done, epoch, batch: b });
      const lr = plan.lr(done);
      last = step(order.subarray(b * B, Math.min(order.length, (b + 1) * B)), lr);
      done++;
      const endOfEpoch = b + 1 === plan.stepsPerEpoch;
      await hooks.afterStep?.(last, { epoch, lr, next: { step: done, epoch: endOfEpoch ? epoch + 1 : epoch, batch: endOfEpoch ? 0 : b + 1 } });
      await yieldToEventLoop();
    }
    await hooks.afterEpoch?.(epoch, done);
  }
  return { step: done, last };
}
