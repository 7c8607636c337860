/** The result types of a fit, shared by fit.ts, summary.ts and report.ts (which import this, not each other). */
import type { HeterogeneityResult } from '../eval/heterogeneity.js';
import type { MsResult } from '../eval/monosemanticity.js';
import type { ReconstructionResult } from '../eval/reconstruction.js';
import type { RetrievalResult } from '../eval/retrieval.js';
import type { SteeringResult } from '../eval/steering.js';
import type { ZeroShotResult } from '../eval/zeroshot.js';
import type { Method } from '../train/config.js';
import type { Activation, FitSetting } from './settings.js';

export interface MethodSeedResults {
  reconstruction?: ReconstructionResult & { zeroShot?: { mse: number; fvu: number } };
  retrieval?: RetrievalResult;
  zeroshot?: ZeroShotResult;
  steering?: SteeringResult;
  monosemanticity?: MsResult;
}

/** The results of one setting (one K and activation). */
export interface SettingResults extends FitSetting {
  label: string;
  results: Record<string, Record<number, MethodSeedResults>>;
  summary: FitSummary;
}

/** Figure 2: which run it was computed from, and its result per seed. */
export interface Figure2Results {
  protocol: 'table1' | 'd1';
  /** In words, for the report. */
  description: string;
  /** The run's training: method, K, activation, epochs, latents per modality SAE, and where it lives. */
  run: { method: Method; k: number; activation: Activation; epochs: number; latentsPerModality: number; setting: string; sharedWith: string | null };
  seeds: Record<number, HeterogeneityResult>;
}

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

export interface TableRow {
  /** Reconstruction MSE on the evaluation set (mean of image and text). */
  reconMse: Stat;
  i2t: { r1: Stat; r5: Stat; r10: Stat };
  t2i: { r1: Stat; r5: Stat; r10: Stat };
  /** Image reconstruction MSE on the zero-shot images, and top-1 accuracy. */
  zsMse: Stat;
  zsAccuracy: Stat;
}

export interface FitSummary {
  table: Record<string, TableRow>;
  steering: Record<string, { alpha: number; mapImg: Stat; mrrImg: Stat; mapTxt: Stat; mrrTxt: Stat; preserve: Stat }[]>;
  /** Concepts steered per seed, and how many of them through a dead image latent / from a dead text latent. */
  steeringSlots: Record<string, { evaluated: Stat; deadImageSlot: Stat; deadTextSlot: Stat }>;
  monosemanticity: Record<string, { image: { mean: Stat; median: Stat; latents: Stat }; text: { mean: Stat; median: Stat; latents: Stat } }>;
}
