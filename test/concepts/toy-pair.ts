/** A small toy dataset with a trained post-hoc pair, built once per test process and removed when it exits (a few seconds on 2 cores). */
import path from 'node:path';

import { Trainer, generateToy, writeToy } from '../../lib/index.js';
import { tempDir } from '../helpers/tmp.js';

export interface ToyPair {
  root: string;
  toyDir: string;
  pairDir: string;
}

let cached: Promise<ToyPair> | null = null;

export function toyPair(): Promise<ToyPair> {
  cached ??= (async () => {
    const { dir, cleanup } = tempDir('cmsae-concepts-');
    process.once('exit', cleanup); // shared by the suites of this folder
    const toyDir = path.join(dir, 'toy');
    const toy = generateToy({ trainPairs: 8000, evalImages: 600, seed: 3 });
    await writeToy(toyDir, toy);
    const t = new Trainer(
      {
        method: 'posthoc',
        data: { image: { path: path.join(toyDir, 'train_image.npy') }, text: { path: path.join(toyDir, 'train_text.npy') }, valFraction: 0 },
        sae: { m: 128, k: 4 },
        train: { epochs: 12, batchSize: 256, lr: 2e-3, schedule: 'warmup-constant', warmupRatio: 0.02 },
      },
      { out: path.join(dir, 'run') },
    );
    const r = await t.run();
    return { root: dir, toyDir, pairDir: r.models.pair };
  })();
  return cached;
}
