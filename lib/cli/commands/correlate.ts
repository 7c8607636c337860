/**
 * `cmsae correlate`: one shard of a run's post-hoc alignment. Encodes a range of the alignment rows with the
 * run's image and text SAEs into a code store (CoactivationCodes) and writes it as a shard file; `cmsae align
 * --shards` merges the shards (in any number, produced anywhere) and aligns them, bit for bit as one pass over
 * all the rows would.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError, type Command } from 'commander';
import { PairedEmbeddings, type Normalizer } from '../../data/paired.js';
import { encodeToCodes, fileBatches } from '../../align/encode-correlate.js';
import { SaeError } from '../../errors.js';
import { checkOutputFile, fsError } from '../../io/files.js';
import { TopKSAE } from '../../sae/topk-sae.js';
import type { TrainConfig } from '../../train/config.js';
import { alignmentRows, readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../../run/layout.js';
import { nonNegativeInt } from '../parse.js';

/** `--rows a:b`: two integers with 0 <= a < b (b is clamped to the rows there are later). */
export const rowRange = (v: string): [number, number] => {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(v);
  const a = m ? Number(m[1]) : NaN, b = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(a) || !Number.isSafeInteger(b)) throw new InvalidArgumentError('expected a:b, two integers (positions in the run\'s alignment rows, b exclusive), e.g. 0:50000');
  if (!(a < b)) throw new InvalidArgumentError(`expected a:b with a < b, got ${a}:${b}`);
  return [a, b];
};

/** A run that has separate image and text SAEs (post-hoc alignment applies to it), else ERR_ARG. */
export function checkSeparateRun(cfg: TrainConfig, runDir: string): void {
  if (cfg.method.startsWith('shared')) throw new SaeError('ERR_ARG', `run ${runDir} trained one shared SAE (method ${cfg.method}); post-hoc alignment needs separate image and text SAEs`);
}

async function hashDirectory(h: ReturnType<typeof createHash>, dir: string): Promise<void> {
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch (e) {
    throw fsError(e, 'cannot list', dir);
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch (e) {
      throw fsError(e, 'cannot read', file);
    }
    h.update(`${name}\0${bytes.length}\0`);
    h.update(bytes);
  }
}

/**
 * What a run's code shards are tagged with: sha256 over the files of its final image and text SAE checkpoints,
 * its normalization and the order of its training rows (shard row numbers are positions in that order). Shards
 * with different tags refuse to merge, and `cmsae align --shards` refuses shards whose tag is not its run's.
 */
export async function codesTag(runDir: string, norm: Normalizer, train: Int32Array): Promise<string> {
  const run = runPaths(runDir);
  const h = createHash('sha256');
  h.update('cmsae-codes-tag-1\0');
  for (const side of ['image', 'text'] as const) {
    h.update(`${side}\0`);
    await hashDirectory(h, run.final(side));
  }
  h.update(`normalization\0${JSON.stringify(norm.toJSON())}\0rows\0${train.length}\0`);
  h.update(new Uint8Array(train.buffer, train.byteOffset, train.byteLength));
  return `sae-pair:sha256:${h.digest('hex')}`;
}

/** The run's final image and text SAEs (the text one disposed again when the image one loads and it does not). */
export async function loadRunSaes(runDir: string): Promise<{ image: TopKSAE; text: TopKSAE }> {
  const run = runPaths(runDir);
  const image = await TopKSAE.load(run.final('image'));
  const text = await TopKSAE.load(run.final('text')).catch((e) => {
    image.dispose();
    throw e;
  });
  return { image, text };
}

interface CorrelateFlags {
  run: string;
  rows: [number, number];
  out: string;
  samples?: number;
}

export function registerCorrelate(program: Command): void {
  program
    .command('correlate')
    .description("encode rows a:b of a run's alignment rows with its image and text SAEs into a code shard (cmsae align --shards merges them)")
    .requiredOption('--run <dir>', 'a training run of method separate or posthoc')
    .requiredOption('--rows <a:b>', "positions [a, b) in the run's alignment rows (the first --samples training rows in file order); b is clamped to their number", rowRange)
    .requiredOption('--out <file>', 'the shard file to write (atomically; format CMSAECS1)')
    .option('--samples <n>', 'training pairs the alignment correlates, in file order (default: the run config, 0 = all); give every shard and align the same value', nonNegativeInt)
    .addHelpText(
      'after',
      '\nExample (two shards of a 100000-row alignment, then the alignment):\n' +
        '  $ cmsae correlate --run runs/x --rows 0:50000 --out shards/s0.codes\n' +
        '  $ cmsae correlate --run runs/x --rows 50000:100000 --out shards/s1.codes\n' +
        '  $ cmsae align --run runs/x --shards shards/s0.codes shards/s1.codes\n',
    )
    .action(async (f: CorrelateFlags) => {
      const cfg = await readRunConfig(f.run);
      checkSeparateRun(cfg, f.run);
      checkOutputFile(f.out, 'shard file');
      const norm = await readRunNormalizer(f.run);
      const { image, text } = await loadRunSaes(f.run);
      try {
        using data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
        const train = trainingRows(cfg, data.rows);
        const use = alignmentRows(cfg, data.rows, f.samples ?? cfg.align.samples);
        const [a, want] = f.rows;
        if (a >= use.length) throw new SaeError('ERR_ARG', `--rows ${a}:${want} starts past the end: the run's alignment has ${use.length} rows (positions 0:${use.length})`);
        const b = Math.min(want, use.length);
        const tag = await codesTag(f.run, norm, train);
        const t0 = Date.now();
        using store = await encodeToCodes(image, text, fileBatches(data, use.subarray(a, b), norm), { rowStart: a, tag });
        await store.writeShard(f.out);
        const info = store.info();
        const size = (await fs.stat(f.out)).size;
        process.stdout.write(
          `correlated rows ${a}:${b} (${info.rows} of ${use.length} alignment rows) in ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
            `${info.nnzA + info.nnzB} nonzeros (image ${info.nnzA}, text ${info.nnzB}), ${size} bytes -> ${f.out}\n`,
        );
      } finally {
        image.dispose();
        text.dispose();
      }
    });
}
