/** The value types of an SAE's public surface, shared by TopKSAE and the checkpoint formats (which do not need the class). */
import type { NativeStepStats } from '../native/types.js';
import type { Matrix } from '../types.js';

/** Weights in SAELens orientation: W_enc [d, m], b_enc [m], W_dec [m, d], b_dec [d]. */
export interface SaeWeights {
  W_enc: Matrix;
  b_enc: Float32Array;
  W_dec: Matrix;
  b_dec: Float32Array;
}

/**
 * Statistics of one training step: loss (reconstruction + AuxK), fvu (mean over the halves of a paired
 * batch), mse (per element), auxLoss, l0 (mean active latents per row), deadFraction (latents that have not
 * fired within min(deadWindow, samples seen)) and gradNorm (global gradient norm before clipping).
 */
export type StepResult = Omit<NativeStepStats, 'rows'>;

export interface StepOptions {
  lr: number;
  /** Paired batch (same rows as x) passed through the same SAE: loss = L(x) + L(pair) (or the mean). */
  pair?: Matrix;
}

/** Optimizer moments and latent statistics, for checkpoints (W_enc moments in [d, m] like W_enc). */
export interface TrainingState {
  arrays: Record<string, Float32Array | Float64Array>;
  step: number;
  samplesSeen: number;
  threshold: number;
  thresholdReady: boolean;
  bDecMeanInitPending: boolean;
}

export const MOMENT_NAMES = [
  'W_enc.exp_avg',
  'W_enc.exp_avg_sq',
  'b_enc.exp_avg',
  'b_enc.exp_avg_sq',
  'W_dec.exp_avg',
  'W_dec.exp_avg_sq',
  'b_dec.exp_avg',
  'b_dec.exp_avg_sq',
] as const;
