/** `cmsae align`: post-hoc alignment of a run's two modality SAEs (correlation over the training pairs + assignment). */
import path from 'node:path';

import type { Command } from 'commander';
import { PairedEmbeddings } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { checkReplaceable } from '../../io/atomic.js';
import { ensureDirectory } from '../../io/files.js';
import { TopKSAE } from '../../sae/topk-sae.js';
import { alignModels } from '../../train/trainer.js';
import { readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../../run/layout.js';
import { nonNegativeInt, positiveInt } from '../parse.js';

interface AlignFlags {
  run: string;
  samples?: number;
  minFires?: number;
  abs?: boolean;
  out?: string;
}

export function registerAlign(program: Command): void {
  program
    .command('align')
    .description("align a run's image and text SAEs post hoc (writes <run>/final/pair)")
    .requiredOption('--run <dir>', 'a training run of method separate or posthoc')
    .option('--samples <n>', 'training pairs to correlate, in file order (default: the run config, 0 = all)', nonNegativeInt)
    .option('--min-fires <n>', 'a latent is alive when it fired this often (default 1)', positiveInt)
    .option('--abs', 'maximize the absolute correlation (the reference synthetic path) instead of the signed one')
    .option('--out <dir>', 'where to write the aligned pair (default <run>/final/pair); an existing directory is replaced only when it holds nothing but files crossmodal-sae writes')
    .addHelpText('after', '\nExample:\n  $ cmsae align --run runs/x\n')
    .action(async (f: AlignFlags) => {
      const cfg = await readRunConfig(f.run);
      if (cfg.method.startsWith('shared')) throw new SaeError('ERR_ARG', `run ${f.run} trained one shared SAE (method ${cfg.method}); post-hoc alignment needs separate image and text SAEs`);
      const run = runPaths(f.run);
      const out = f.out ?? run.final('pair');
      await checkReplaceable(out, [], 'aligned-pair');
      await ensureDirectory(path.dirname(path.resolve(out)), `parent directory of ${out}`);
      const norm = await readRunNormalizer(f.run);
      const image = await TopKSAE.load(run.final('image'));
      const text = await TopKSAE.load(run.final('text')).catch((e) => {
        image.dispose();
        throw e;
      });
      try {
        using data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
        const train = trainingRows(cfg, data.rows);
        const opts = { samples: f.samples ?? cfg.align.samples, minFires: f.minFires ?? cfg.align.minFires, signed: f.abs ? false : cfg.align.signed };
        const t0 = Date.now();
        using pair = await alignModels(image, text, data, train, norm, opts);
        await pair.save(out);
        const alive = (a: Uint8Array) => a.reduce((s, x) => s + x, 0);
        let both = 0, sum = 0;
        for (let i = 0; i < pair.perm.length; i++)
          if (pair.stats.aliveImage[i] && pair.stats.aliveText[pair.perm[i]]) {
            both++;
            sum += pair.stats.matchedCorrelation[i];
          }
        process.stdout.write(
          `aligned ${pair.perm.length} latents on ${pair.stats.n} pairs in ${((Date.now() - t0) / 1000).toFixed(1)} s: alive image ${alive(pair.stats.aliveImage)}, text ${alive(pair.stats.aliveText)}; ` +
            `mean matched correlation ${(both ? sum / both : 0).toFixed(4)} over ${both} alive pairs -> ${out}\n`,
        );
      } finally {
        image.dispose();
        text.dispose();
      }
    });
}
