/** `cmsae export`: a trained SAE in SAELens or sparsify layout, computing our codes on raw embeddings. */
import type { Command } from 'commander';

import { SaeError } from '../../errors.js';
import { exportSae } from '../../io/export.js';
import { positiveInt } from '../parse.js';
import { loadCliModel, runEmbeddings } from '../model.js';

interface ExportFlags {
  model: string;
  format: string;
  out: string;
  side?: string;
  normalization?: string;
  normalizedInput?: boolean;
  dtype?: string;
  modelName?: string;
  hookName?: string;
  datasetPath?: string;
  contextSize?: number;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write an SAE in SAELens (cfg.json + sae_weights.safetensors) or sparsify (cfg.json + sae.safetensors) layout')
    .requiredOption('--model <dir>', 'an SAE checkpoint (e.g. runs/x/final/image) or an aligned pair (with --side)')
    .requiredOption('--format <saelens|sparsify>', 'the layout to write')
    .requiredOption('--out <dir>', 'the directory to write (new, empty, or an earlier export to replace)')
    .option('--side <image|text>', 'which SAE of an aligned pair')
    .option('--normalization <kind>', "the input normalization the SAE was trained with (default: its run's, as cmsae encode)")
    .option('--normalized-input', 'write the weights as trained, for inputs you normalize yourself (recorded in the metadata)')
    .option('--dtype <float32|float16|bfloat16>', 'tensor precision (default float32)')
    .option('--model-name <name>', 'SAELens model_name (the model the embeddings came from)')
    .option('--hook-name <name>', 'SAELens hook_name')
    .option('--dataset-path <path>', 'SAELens dataset_path (default: the training embeddings of the run)')
    .option('--context-size <n>', 'SAELens context_size (default 1: one embedding per input)', positiveInt)
    .addHelpText(
      'after',
      '\nExamples:\n  $ cmsae export --model runs/x/final/image --format saelens --out export/image-sae\n  $ cmsae export --model runs/x/final/pair --side text --format sparsify --out export/text --normalized-input\n\nAn l2-normalized model exports to SAELens exactly (normalize_activations constant_norm_rescale, weights scaled by sqrt(d)).\nSee docs/interop.md.\n',
    )
    .action(async (f: ExportFlags) => {
      if (f.format !== 'saelens' && f.format !== 'sparsify') throw new SaeError('ERR_ARG', `--format must be 'saelens' or 'sparsify', got '${f.format}'`);
      if (f.dtype !== undefined && !['float32', 'float16', 'bfloat16'].includes(f.dtype)) throw new SaeError('ERR_ARG', `--dtype must be float32, float16 or bfloat16, got '${f.dtype}'`);
      const model = await loadCliModel(f.model, f);
      try {
        const { sae, norm, side } = model;
        const embeddings = await runEmbeddings(model.run, side);
        const r = await exportSae(sae, f.out, {
          format: f.format,
          normalization: { kind: norm.kind, mean: norm.mean[side] },
          normalizedInput: f.normalizedInput,
          dtype: f.dtype as 'float32' | 'float16' | 'bfloat16' | undefined,
          source: {
            modelName: f.modelName,
            hookName: f.hookName,
            datasetPath: f.datasetPath,
            contextSize: f.contextSize,
            embeddings,
            side: model.format === 'saelens' || model.format === 'sparsify' ? undefined : side,
            run: model.run ?? undefined,
          },
        });
        process.stdout.write(`exported ${model.version} (d = ${sae.d}, m = ${sae.m}, k = ${sae.k}) as ${f.format} -> ${f.out}\n`);
        process.stdout.write(`normalization: ${norm.kind} (${model.normSource}); ${r.normalization}\n`);
        for (const note of r.notes) process.stdout.write(`note: ${note}\n`);
      } finally {
        model.release();
      }
    });
}
