/** `cmsae toy`: write the toy VLM-like dataset (paired embeddings, labels, captions, class prompts, external embeddings). */
import { Command } from 'commander';

import { nonNegative as num } from '../parse.js';
import { generateToy, TOY_DEFAULTS, writeToy, type ToyOptions } from '../../eval/toy.js';

export function registerToy(program: Command): void {
  const c = program
    .command('toy')
    .description('write a toy VLM-like dataset (built on the synthetic generator) with a dataset.json manifest for `cmsae fit --dataset`')
    .requiredOption('--out <dir>', 'output directory');
  const flags: [keyof ToyOptions, string][] = [
    ['d', 'embedding width'],
    ['objects', 'shared object concepts'],
    ['alpha', 'cos(phi_c, psi_c) of every object concept'],
    ['gap', 'norm of the per-modality offset'],
    ['noise', 'observation noise std'],
    ['trainPairs', 'training pairs'],
    ['evalImages', 'evaluation images'],
    ['captionsPerImage', 'captions per evaluation image'],
    ['templates', 'class-prompt templates'],
    ['zeroShotImages', 'labeled zero-shot images'],
    ['seed', 'seed'],
  ];
  for (const [k, what] of flags) c.option(`--${k.replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} <x>`, `${what} (default ${TOY_DEFAULTS[k]})`, num);
  c.action(async (f: ToyOptions & { out: string }) => {
    const { out, ...opts } = f;
    const t0 = performance.now();
    const file = await writeToy(out, generateToy(opts));
    process.stdout.write(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  });
}
