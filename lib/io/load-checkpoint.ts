/** loadCheckpoint: an SAE with where it came from and the input normalization it expects (files: ./checkpoint.ts). */
import type { TopKSAEOptions } from '../sae/options.js';
import { saeFromCheckpoint, type TopKSAE } from '../sae/topk-sae.js';
import { readCheckpoint, type CheckpointOrigin } from './checkpoint.js';

/** A checkpoint read by loadCheckpoint: the model, where it came from, and the input normalization it expects. */
export interface LoadedCheckpoint extends CheckpointOrigin {
  sae: TopKSAE;
}

/** Loads an SAE saved by save() or a SAELens / sparsify checkpoint, with its provenance and input normalization. */
export async function loadCheckpoint(dir: string, overrides: Partial<TopKSAEOptions> = {}): Promise<LoadedCheckpoint> {
  const contents = await readCheckpoint(dir, overrides);
  const { weights: _w, options: _o, state: _s, threshold: _t, ...origin } = contents;
  return { sae: saeFromCheckpoint(contents), ...origin };
}
