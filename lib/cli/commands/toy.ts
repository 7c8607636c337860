/** `cmsae toy`: write the toy VLM-like dataset (paired embeddings, labels, captions, class prompts, external embeddings). */
import { Command } from 'commander';

import { nonNegative, nonNegativeInt, positiveInt, unitInterval } from '../parse.js';
import { checkToyOutput, generateToy, TOY_DEFAULTS, writeToy, type ToyOptions } from '../../eval/toy.js';

export function registerToy(program: Command): void {
  const c = program
    .command('toy')
    .description('write a toy VLM-like dataset (built on the synthetic generator) with a dataset.json manifest for `cmsae fit --dataset`')
    .requiredOption('--out <dir>', 'output directory (an existing one is replaced only when it holds an earlier toy dataset)');
  const flags: [keyof ToyOptions, string, (v: string) => number][] = [
    ['d', 'embedding width', positiveInt],
    ['objects', 'shared object concepts', positiveInt],
    ['alpha', 'cos(phi_c, psi_c) of every object concept', unitInterval],
    ['gap', 'norm of the per-modality offset', nonNegative],
    ['noise', 'observation noise std', nonNegative],
    ['trainPairs', 'training pairs', positiveInt],
    ['evalImages', 'evaluation images', positiveInt],
    ['captionsPerImage', 'captions per evaluation image', positiveInt],
    ['templates', 'class-prompt templates', positiveInt],
    ['zeroShotImages', 'labeled zero-shot images', positiveInt],
    ['seed', 'seed', nonNegativeInt],
  ];
  for (const [k, what, parse] of flags) c.option(`--${k.replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} <x>`, `${what} (default ${TOY_DEFAULTS[k]})`, parse);
  c.addHelpText('after', '\nExample:\n  $ cmsae toy --out data/toy --train-pairs 50000\n');
  c.action(async (f: ToyOptions & { out: string }) => {
    const { out, ...opts } = f;
    const t0 = performance.now();
    await checkToyOutput(out);
    const file = await writeToy(out, generateToy(opts));
    process.stdout.write(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  });
}
