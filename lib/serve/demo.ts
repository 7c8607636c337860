/**
 * The one-command demo (`cmsae serve --demo`): the toy dataset, a small posthoc pair trained and aligned on it,
 * and its concept index, each reused when already in `out` (a rerun only loads them).
 */
import path from 'node:path';

import { AlignedPair } from '../align/aligned-pair.js';
import { SaeError } from '../errors.js';
import { generateToy, writeToy, type ToyOptions } from '../eval/toy.js';
import { statOrNull } from '../io/files.js';
import { Trainer } from '../train/trainer.js';

/** Small enough for about ten seconds on 2 cores, large enough for readable concepts (40 objects, 256 latents per side). */
export const DEMO_TOY: ToyOptions = { trainPairs: 20_000, evalImages: 1000, captionsPerImage: 3, seed: 7 };
export const DEMO_TRAIN = { method: 'posthoc', sae: { m: 512, k: 8 }, train: { epochs: 20, lr: 2e-3, batchSize: 256, seed: 0 } } as const;

export interface DemoPaths {
  toy: string;
  run: string;
  pair: string;
}

export function demoPaths(out: string): DemoPaths {
  const run = path.join(out, 'run');
  return { toy: path.join(out, 'toy'), run, pair: path.join(run, 'final', 'pair') };
}

/** Builds (or reuses) the toy dataset and the aligned pair under `out`; says what it did through `log`. */
export async function prepareDemoPair(out: string, log: (line: string) => void): Promise<DemoPaths> {
  const p = demoPaths(out);
  if (statOrNull(path.join(p.toy, 'dataset.json'))?.isFile()) log(`demo: reusing the toy dataset in ${p.toy}`);
  else {
    const t0 = performance.now();
    await writeToy(p.toy, generateToy(DEMO_TOY));
    log(`demo: wrote the toy dataset to ${p.toy} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const reusable = await AlignedPair.load(p.pair).then(
    (pair) => (pair.dispose(), true),
    () => false,
  );
  if (reusable) log(`demo: reusing the aligned pair in ${p.pair}`);
  else {
    const t0 = performance.now();
    const cfg = { ...DEMO_TRAIN, data: { image: { path: path.join(p.toy, 'train_image.npy') }, text: { path: path.join(p.toy, 'train_text.npy') } } };
    const trainer = new Trainer(cfg, { out: p.run, force: statOrNull(p.run) !== null });
    const r = await trainer.run();
    if (!r.models.pair) throw new SaeError('ERR_STATE', `the demo run in ${p.run} wrote no aligned pair`);
    log(`demo: trained and aligned a posthoc pair (m = ${DEMO_TRAIN.sae.m}, k = ${DEMO_TRAIN.sae.k}, ${r.steps} steps) in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${p.pair}`);
  }
  return p;
}
