/**
 * Export of a trained SAE to another library's layout, computing what our model computes on raw inputs:
 * - 'saelens': cfg.json + sae_weights.safetensors (SAELens 4.4-6.x). Our 'l2' input normalization
 *   (x / ||x||) is SAELens's constant_norm_rescale (x * sqrt(d) / ||x||) with W_enc / sqrt(d),
 *   b_dec * sqrt(d), W_dec * sqrt(d): the same codes, and SAELens returns x_hat = ||x|| * (our decode of
 *   the normalized row). A BatchTopK SAE becomes JumpReLU with its threshold (see docs/interop.md for
 *   the per-row cap that JumpReLU lacks).
 * - 'sparsify': <dir>/cfg.json + <dir>/sae.safetensors, one hookpoint directory; sparsify has no input
 *   normalization and no threshold inference, so only Top-K SAEs trained on un-normalized inputs export
 *   exactly.
 * A normalization a layout cannot express ('center+l2'; 'l2' for sparsify) is refused unless
 * `normalizedInput` says the caller normalizes the inputs itself (recorded in the export's metadata).
 */
import type { Normalization } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { TopKSAE } from '../sae/topk-sae.js';
import { VERSION } from '../version.js';
import { writeDirectoryAtomic } from './atomic.js';
import { copyWeights, firstNonFinite, foldInputScale, tensorIn, type Json } from './formats/common.js';
import { saelensConfig, SAELENS_WEIGHTS_FILE, type ExportSource } from './formats/saelens.js';
import { sparsifyFiles } from './formats/sparsify.js';
import { serializeSafetensors, type TensorToWrite } from './safetensors.js';

export type ExportFormat = 'saelens' | 'sparsify';

export interface ExportOptions {
  format: ExportFormat;
  /** The input normalization the SAE was trained with (its run's normalization.json). Default 'none'. */
  normalization?: Normalization | { kind: Normalization; mean?: ArrayLike<number> };
  /**
   * Write the weights as trained, for inputs the caller normalizes the way training did; nothing is folded
   * and the normalization (with its mean) is recorded in the metadata. Needed for a normalization the
   * layout cannot express.
   */
  normalizedInput?: boolean;
  /** Tensor precision (SAELens cfg.dtype; sparsify follows the tensors). Default 'float32'. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** Provenance: SAELens 5.x requires model_name, hook_name, context_size, dataset_path (placeholders otherwise). */
  source?: ExportSource & { embeddings?: string; side?: string; run?: string };
}

export interface ExportResult {
  dir: string;
  format: ExportFormat;
  files: string[];
  /** How the input normalization was carried: folded into the weights, none needed, or left to the caller. */
  normalization: 'none' | 'folded as constant_norm_rescale' | 'caller normalizes';
  notes: string[];
}

/** Files an SAE checkpoint directory (ours, SAELens, sparsify) may hold: only such a directory is replaced. */
function normalizationOf(n: ExportOptions['normalization']): { kind: Normalization; mean?: number[] } {
  if (n === undefined) return { kind: 'none' };
  const kind = typeof n === 'string' ? n : n?.kind;
  if (kind !== 'none' && kind !== 'l2' && kind !== 'center+l2') throw new SaeError('ERR_ARG', `normalization must be 'none', 'l2' or 'center+l2', got ${JSON.stringify(kind)}`);
  const mean = typeof n === 'object' && n.mean !== undefined ? Array.from(n.mean) : undefined;
  return { kind, mean };
}

/** Writes `sae` to `dir` in another library's layout (atomically; only an empty or checkpoint directory is replaced). */
export async function exportSae(sae: TopKSAE, dir: string, opts: ExportOptions): Promise<ExportResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw new SaeError('ERR_ARG', 'export needs a directory path');
  if (typeof opts !== 'object' || opts === null) throw new SaeError('ERR_ARG', "export options must be an object with format 'saelens' or 'sparsify'");
  const { format } = opts;
  if (format !== 'saelens' && format !== 'sparsify') throw new SaeError('ERR_ARG', `format must be 'saelens' or 'sparsify', got ${JSON.stringify(format)}`);
  const dtype = opts.dtype ?? 'float32';
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) throw new SaeError('ERR_ARG', `dtype must be 'float32', 'float16' or 'bfloat16', got ${JSON.stringify(dtype)}`);
  const norm = normalizationOf(opts.normalization);
  const o = sae.options;
  if (norm.mean !== undefined && (norm.mean.length !== o.d || firstNonFinite(norm.mean) >= 0))
    throw new SaeError('ERR_ARG', `normalization.mean must hold d = ${o.d} finite numbers (the mean of the SAE's modality)`);
  const batch = o.activation === 'batchtopk';
  const notes: string[] = [];
  const w = copyWeights(sae.getWeights());
  for (const [name, a] of [['W_enc', w.W_enc.data], ['b_enc', w.b_enc], ['W_dec', w.W_dec.data], ['b_dec', w.b_dec]] as const)
    if (firstNonFinite(a) >= 0) throw new SaeError('ERR_NONFINITE', `cannot export: ${name} holds non-finite values (the model diverged)`);

  let carried: ExportResult['normalization'] = 'none';
  if (norm.kind !== 'none') {
    if (opts.normalizedInput) carried = 'caller normalizes';
    else if (format === 'saelens' && norm.kind === 'l2') {
      foldInputScale(w, 1 / Math.sqrt(o.d));
      carried = 'folded as constant_norm_rescale';
    } else
      throw new SaeError(
        'ERR_ARG',
        `${format} cannot express the '${norm.kind}' input normalization this SAE was trained with` +
          (format === 'sparsify' && norm.kind === 'l2' ? " (sparsify normalizes nothing; export to 'saelens', which folds 'l2' exactly)" : " (SAELens has no centring before its norm)") +
          '; or export with normalizedInput (--normalized-input) and normalize the inputs yourself as recorded in the metadata',
      );
  }
  if (carried === 'caller normalizes') notes.push(`inputs must be normalized with '${norm.kind}' before this model (as in training)`);
  if (norm.kind === 'center+l2' && carried === 'caller normalizes' && !norm.mean) throw new SaeError('ERR_ARG', "'center+l2' needs the mean of the SAE's modality to record it");

  const capacity = Math.min(Math.max(o.batchCapacity > 0 ? o.batchCapacity : 4 * o.k, o.k), o.m);
  const threshold = sae.status().threshold ?? 0;
  if (batch) {
    if (format === 'sparsify') throw new SaeError('ERR_ARG', "sparsify has no threshold (JumpReLU) inference for a BatchTopK SAE; export it with format 'saelens'");
    notes.push(
      capacity >= o.m
        ? `BatchTopK as JumpReLU (threshold ${threshold}); batchCapacity = m, so both keep every latent above the threshold`
        : `BatchTopK as JumpReLU (threshold ${threshold}): SAELens keeps every latent above the threshold, crossmodal-sae at most ${capacity} per row (batchCapacity); rows with more differ`,
    );
  }
  const record: Json = {
    source_format: 'crossmodal-sae',
    activation: o.activation,
    k: o.k,
    ...(batch ? { threshold, batch_capacity: capacity } : {}),
    input_normalization: norm.kind,
    ...(carried === 'caller normalizes' && norm.mean ? { input_normalization_mean: norm.mean } : {}),
    normalization_carried: carried,
    ...(opts.source?.embeddings ? { embeddings: opts.source.embeddings } : {}),
    ...(opts.source?.side ? { side: opts.source.side } : {}),
    ...(opts.source?.run ? { run: opts.source.run } : {}),
    notes,
  };

  let files: Record<string, Uint8Array | string>;
  if (format === 'saelens') {
    const t = (shape: number[], data: Float32Array): TensorToWrite => tensorIn(dtype, shape, data);
    const tensors: Record<string, TensorToWrite> = {
      W_enc: t([o.d, o.m], w.W_enc.data),
      b_enc: t([o.m], w.b_enc),
      W_dec: t([o.m, o.d], w.W_dec.data),
      b_dec: t([o.d], w.b_dec),
    };
    if (batch) tensors.threshold = t([o.m], new Float32Array(o.m).fill(threshold));
    const cfg = saelensConfig({
      architecture: batch ? 'jumprelu' : 'topk',
      d: o.d,
      m: o.m,
      k: o.k,
      dtype,
      normalizeActivations: carried === 'folded as constant_norm_rescale' ? 'constant_norm_rescale' : 'none',
      source: { ...opts.source, datasetPath: opts.source?.datasetPath ?? opts.source?.embeddings, hookName: opts.source?.hookName ?? (opts.source?.side ? `embeddings.${opts.source.side}` : undefined) },
      metadata: { cmsae_export: record },
    });
    files = { [SAELENS_WEIGHTS_FILE]: serializeSafetensors(tensors, { format: 'pt' }), 'cfg.json': JSON.stringify(cfg, null, 2) + '\n' };
  } else {
    files = sparsifyFiles(w, { k: o.k, normalizeDecoder: o.normalizeDecoder, dtype, metadata: { format: 'pt', cmsae_version: VERSION, cmsae_export: JSON.stringify(record) } });
  }
  await writeDirectoryAtomic(dir, files); // replaces only an empty directory or an earlier export
  return { dir, format, files: Object.keys(files), normalization: carried, notes };
}
