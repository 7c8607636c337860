/** `cmsae concepts`: build (or reuse) the concept index of an aligned pair on a corpus and print its top concepts. */
import { Command, InvalidArgumentError } from 'commander';

import { SaeError } from '../../errors.js';
import { conceptIndexFor } from '../../concepts/build.js';
import { addCorpusOptions, corpusSpecOf, type CorpusFlags } from '../corpus-flags.js';
import { positiveInt } from '../parse.js';

interface ConceptsFlags extends CorpusFlags {
  pair: string;
  imageRoot?: string;
  out?: string;
  topN?: number;
  partners?: number;
  show?: number;
  json?: boolean;
}

const int = (what: string) => (v: string) => {
  try {
    return positiveInt(v);
  } catch {
    throw new InvalidArgumentError(`${what} must be an integer >= 1`);
  }
};

export function registerConcepts(program: Command): void {
  const cmd = program
    .command('concepts')
    .description('build the concept index of an aligned pair on a corpus (fire rates, correlations, decoder distances, top images and captions, labels, partners), or reuse an up-to-date one')
    .requiredOption('--pair <dir>', 'aligned pair (<run>/final/pair or a fit run\'s pair)');
  addCorpusOptions(cmd)
    .option('--image-root <dir>', 'where the image paths resolve (recorded for the service)')
    .option('--out <dir>', 'index directory (default: <pair>/../concepts)')
    .option('--top-n <n>', 'top images and captions kept per concept (default 12)', int('--top-n'))
    .option('--partners <n>', 'partners kept per concept and side (default 5)', int('--partners'))
    .option('--show <n>', 'concepts printed (default 15)', int('--show'))
    .option('--json', 'print the summaries of every concept as JSON instead of a table')
    .addHelpText('after', '\nExamples:\n  $ cmsae concepts --pair runs/toy/final/pair --toy data/toy\n  $ cmsae concepts --pair runs/cc3m/final/pair --image img.npy --text txt.npy --captions captions.json\n')
    .action(async (f: ConceptsFlags) => {
      const corpus = corpusSpecOf(f);
      if (!corpus) throw new SaeError('ERR_ARG', 'give --toy <dir>, or --image, --text and --captions');
      const t0 = performance.now();
      const { index, reused, dir } = await conceptIndexFor(f.pair, corpus, {
        topN: f.topN, partners: f.partners, imageRoot: f.imageRoot, out: f.out,
        onProgress: f.json ? undefined : (stage) => process.stderr.write(`${stage}...\n`),
      });
      const all = index.summaries();
      if (f.json) {
        process.stdout.write(JSON.stringify({ dir, reused, meta: index.meta, concepts: all }) + '\n');
        return;
      }
      const alive = all.filter((s) => s.alive.image && s.alive.text);
      const shown = alive.sort((a, b) => b.corpusCorrelation - a.corpusCorrelation || a.id - b.id).slice(0, f.show ?? 15);
      const pad = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s.padEnd(n));
      const num = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '  -  ').padStart(7);
      process.stdout.write(`${'id'.padStart(6)}  ${pad('label', 28)} ${'corr'.padStart(7)} ${'corpus'.padStart(7)} ${'dist'.padStart(7)} ${'fire I'.padStart(7)} ${'fire T'.padStart(7)}\n`);
      for (const s of shown)
        process.stdout.write(`${String(s.id).padStart(6)}  ${pad(s.label || '(none)', 28)} ${num(s.correlation)} ${num(s.corpusCorrelation)} ${num(s.decoderDistance)} ${num(s.fireRate.image)} ${num(s.fireRate.text)}\n`);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      process.stdout.write(`${alive.length} of ${index.m} concepts fire on both sides of the corpus; ${reused ? 'reused the up-to-date index in' : `saved the index (encode ${index.meta.seconds.encode.toFixed(1)} s, index ${index.meta.seconds.index.toFixed(1)} s) to`} ${dir} (${secs} s)\n`);
    });
}
