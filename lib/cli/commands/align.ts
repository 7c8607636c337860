/**
 * `cmsae align`: post-hoc alignment of a run's two modality SAEs (correlation over the training pairs +
 * assignment), in one pass over the rows or from code shards written by `cmsae correlate`.
 */
import path from 'node:path';

import { Option, type Command } from 'commander';
import { AlignedPair } from '../../align/aligned-pair.js';
import { CoactivationCodes, type AlignmentPlan } from '../../align/codes.js';
import { PairedEmbeddings } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { checkReplaceable } from '../../io/atomic.js';
import { ensureDirectory } from '../../io/files.js';
import type { TopKSAE } from '../../sae/topk-sae.js';
import { alignModelsPlanned } from '../../train/trainer.js';
import { alignmentRows, readRunConfig, readRunNormalizer, runPaths, trainingRows } from '../../run/layout.js';
import { nonNegativeInt, positive, positiveInt } from '../parse.js';
import { checkSeparateRun, codesTag, loadRunSaes } from './correlate.js';

type AlignPath = 'auto' | 'dense' | 'large';

interface AlignFlags {
  run: string;
  samples?: number;
  minFires?: number;
  abs?: boolean;
  out?: string;
  shards?: string[];
  path?: AlignPath;
  /** GiB. */
  memoryBudget?: number;
}

const GiB = 2 ** 30;
/** Bytes in GiB (in MiB below 10 MiB, where three GiB decimals would read 0.000). */
const gib = (bytes: number) => (bytes < 10 * 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(2)} MiB` : `${(bytes / GiB).toFixed(bytes < 10 * GiB ? 3 : 1)} GiB`);

/** The planned peak of the path the plan chose, and the budget, in words. */
function describePlan(p: AlignmentPlan): string {
  const held = p.codes + p.layout + p.scratch;
  return `plan ${p.path}, ${gib(held + (p.path === 'large' ? p.large : p.dense))} planned of a ${gib(p.budget)} budget`;
}

/**
 * The shards merged into the first one, each checked first: a code shard (ERR_FORMAT naming the file otherwise),
 * of the run's SAE widths and tag (ERR_SHAPE / ERR_ARG naming the file), not overlapping the others (ERR_ARG).
 */
async function readShards(files: string[], tag: string, runDir: string, image: TopKSAE, text: TopKSAE): Promise<CoactivationCodes> {
  const check = (s: CoactivationCodes, file: string) => {
    const info = s.info();
    if (info.mA !== image.m || info.mB !== text.m)
      throw new SaeError('ERR_SHAPE', `${file} holds codes of ${info.mA} image x ${info.mB} text latents but the SAEs of run ${runDir} have ${image.m} and ${text.m}: it is a shard of another run`);
    if (info.tag !== tag)
      throw new SaeError('ERR_ARG', `${file} was not encoded by the SAE pair of run ${runDir} (its tag ${info.tag ? `'${info.tag}'` : '(none)'}, the run's '${tag}'): correlate it again with cmsae correlate --run ${runDir}`);
  };
  const store = await CoactivationCodes.readShard(files[0]);
  try {
    check(store, files[0]);
    for (const file of files.slice(1)) {
      using s = await CoactivationCodes.readShard(file);
      check(s, file);
      try {
        store.merge(s);
      } catch (e) {
        throw e instanceof SaeError ? new SaeError(e.code, `${file}: ${e.message}`, { cause: e }) : e;
      }
    }
  } catch (e) {
    store.dispose();
    throw e;
  }
  return store;
}

export function registerAlign(program: Command): void {
  program
    .command('align')
    .description("align a run's image and text SAEs post hoc (writes <run>/final/pair)")
    .requiredOption('--run <dir>', 'a training run of method separate or posthoc (with --shards: the SAEs the shards were encoded with)')
    .option('--samples <n>', 'training pairs to correlate, in file order (default: the run config, 0 = all)', nonNegativeInt)
    .option('--min-fires <n>', 'a latent is alive when it fired this often (default 1)', positiveInt)
    .option('--abs', 'maximize the absolute correlation (the reference synthetic path) instead of the signed one')
    .option('--shards <files...>', 'align from code shards written by cmsae correlate (merged; together they must hold every alignment row once) instead of encoding the rows here')
    .addOption(
      new Option('--path <path>', "'auto' (default): the dense correlation when it fits --memory-budget, the large-m path otherwise; 'dense' / 'large' force one (same optimum)").choices([
        'auto',
        'dense',
        'large',
      ]),
    )
    .option('--memory-budget <GiB>', 'memory the alignment may plan for, in GiB (default: the run config, else half of physical memory)', positive)
    .option('--out <dir>', 'where to write the aligned pair (default <run>/final/pair); an existing directory is replaced only when it holds nothing but files crossmodal-sae writes')
    .addHelpText('after', '\nExamples:\n  $ cmsae align --run runs/x\n  $ cmsae align --run runs/x --shards shards/*.codes --memory-budget 64\n')
    .action(async (f: AlignFlags) => {
      const cfg = await readRunConfig(f.run);
      checkSeparateRun(cfg, f.run);
      const run = runPaths(f.run);
      const out = f.out ?? run.final('pair');
      await checkReplaceable(out, [], 'aligned-pair');
      await ensureDirectory(path.dirname(path.resolve(out)), `parent directory of ${out}`);
      const norm = await readRunNormalizer(f.run);
      const { image, text } = await loadRunSaes(f.run);
      try {
        using data = PairedEmbeddings.open(cfg.data.image, cfg.data.text);
        const train = trainingRows(cfg, data.rows);
        const samples = f.samples ?? cfg.align.samples;
        const signed = f.abs ? false : cfg.align.signed;
        const minFires = f.minFires ?? cfg.align.minFires;
        const alignPath: AlignPath = f.path ?? cfg.align.path ?? 'auto';
        const memoryBudget = f.memoryBudget !== undefined ? Math.round(f.memoryBudget * GiB) : cfg.align.memoryBudget;
        const t0 = Date.now();
        let pair: AlignedPair;
        let plan: string;
        if (f.shards) {
          const tag = await codesTag(f.run, norm, train);
          using store = await readShards(f.shards, tag, f.run, image, text);
          const want = alignmentRows(cfg, data.rows, samples).length;
          if (store.rows !== want)
            throw new SaeError(
              'ERR_ARG',
              `the shards (${f.shards.length}) hold ${store.rows} rows but the alignment of run ${f.run} has ${want} (--samples ${samples}): ` +
                'a shard is missing, or the shards were correlated with another --samples (give align the same one)',
            );
          const r = await store.alignAsync({ signed, minFires, path: alignPath, memoryBudget });
          pair = AlignedPair.fromCodesAlignment(image, text, r, { normalizer: norm });
          plan = describePlan(r.plan);
        } else {
          const done = await alignModelsPlanned(image, text, data, train, norm, { samples, minFires, signed, path: alignPath, memoryBudget });
          pair = done.pair;
          plan = `plan ${done.plan.path}, ${gib(done.plan.planned)} planned of a ${gib(done.plan.budget)} budget`;
        }
        using _pair = pair;
        await pair.save(out);
        const alive = (a: Uint8Array) => a.reduce((s, x) => s + x, 0);
        let both = 0, sum = 0;
        for (let i = 0; i < pair.perm.length; i++)
          if (pair.stats.aliveImage[i] && pair.stats.aliveText[pair.perm[i]]) {
            both++;
            sum += pair.stats.matchedCorrelation[i];
          }
        process.stdout.write(
          `aligned ${pair.perm.length} latents on ${pair.stats.n} pairs${f.shards ? ` from ${f.shards.length} shards` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s: alive image ${alive(pair.stats.aliveImage)}, text ${alive(pair.stats.aliveText)}; ` +
            `mean matched correlation ${(both ? sum / both : 0).toFixed(4)} over ${both} alive pairs; ${plan} -> ${out}\n`,
        );
      } finally {
        image.dispose();
        text.dispose();
      }
    });
}
