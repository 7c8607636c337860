/** `cmsae toy`: write the toy VLM-like dataset (paired embeddings, labels, captions, class prompts, external embeddings). */
import { Command, InvalidArgumentError } from 'commander';

import { nonNegative, nonNegativeInt, positiveInt, unitInterval } from '../parse.js';
import { checkToyOutput, generateToy, TOY_DEFAULTS, writeToy, type ToyOptions } from '../../eval/toy.js';

export function registerToy(program: Command): void {
  const c = program
    .command('toy')
    .description('write a toy VLM-like dataset (built on the synthetic generator) with a dataset.json manifest for `cmsae fit --dataset`')
    .requiredOption('--out <dir>', 'output directory (an existing one is replaced only when it holds an earlier toy dataset)');
  const int1 = [positiveInt, 'an integer >= 1'] as const, int0 = [nonNegativeInt, 'an integer >= 0'] as const, real0 = [nonNegative, 'a number >= 0'] as const;
  const flags: [keyof ToyOptions, string, readonly [(v: string) => number, string]][] = [
    ['d', 'embedding width', int1],
    ['objects', 'shared object concepts', int1],
    ['alpha', 'cos(phi_c, psi_c) of every object concept', [unitInterval, 'a number in [0, 1]']],
    ['gap', 'norm of the per-modality offset', real0],
    ['noise', 'observation noise std', real0],
    ['trainPairs', 'training pairs', int1],
    ['evalImages', 'evaluation images', int1],
    ['captionsPerImage', 'captions per evaluation image', int1],
    ['templates', 'class-prompt templates', int1],
    ['zeroShotImages', 'labeled zero-shot images', int1],
    ['seed', 'seed', int0],
  ];
  for (const [k, what, [parse, expected]] of flags) {
    const named = (v: string) => {
      try {
        return parse(v);
      } catch {
        throw new InvalidArgumentError(`${k} must be ${expected}`);
      }
    };
    c.option(`--${k.replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} <x>`, `${what} (default ${TOY_DEFAULTS[k]})`, named);
  }
  c.addHelpText('after', '\nExample:\n  $ cmsae toy --out data/toy --train-pairs 50000\n');
  c.action(async (f: ToyOptions & { out: string }) => {
    const { out, ...opts } = f;
    const t0 = performance.now();
    await checkToyOutput(out);
    const file = await writeToy(out, generateToy(opts));
    process.stdout.write(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  });
}
