/**
 * The model a CLI command runs on raw embeddings: an SAE checkpoint (ours, SAELens, sparsify) or an
 * aligned pair, with the input normalization its weights expect and where that choice came from:
 *   aligned pair                  -> the pair's normalization
 *   cmsae checkpoint in a run     -> the run's normalization.json
 *   cmsae checkpoint elsewhere    -> the normalization recorded in its cfg.json, else 'l2' (cmsae train's
 *                                    default), said so in the output
 *   SAELens / sparsify checkpoint -> 'none' (their forward passes normalize nothing), or 'l2' for
 *                                    SAELens constant_norm_rescale (folded into the weights)
 * --normalization overrides all of these.
 */
import path from 'node:path';

import { AlignedPair } from '../align/aligned-pair.js';
import { Normalizer, type Modality, type Normalization } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { CFG_FILE } from '../io/checkpoint.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../io/load-checkpoint.js';
import { statOrNull } from '../io/files.js';
import { readRunConfig, readRunNormalizer, runOfModelDir } from '../run/layout.js';
import type { TopKSAE } from '../sae/topk-sae.js';

export interface CliModel {
  sae: TopKSAE;
  norm: Normalizer;
  /** Which modality the rows are (picks the centring mean of center+l2). */
  side: Modality;
  /** Where the normalization came from, in words. */
  normSource: string;
  /** e.g. "crossmodal-sae format 1", "SAELens 5.10.7 (topk)". */
  version: string;
  format: 'cmsae' | 'saelens' | 'sparsify' | 'pair';
  /** The run directory the model belongs to, if any. */
  run: string | null;
  notes: string[];
  release: () => void;
}

const KINDS = ['l2', 'none', 'center+l2'];

function checkKind(kind: string | undefined): Normalization | undefined {
  if (kind !== undefined && !KINDS.includes(kind)) throw new SaeError('ERR_ARG', `--normalization must be 'l2', 'none' or 'center+l2', got '${kind}'`);
  return kind as Normalization | undefined;
}

/**
 * A checkpoint that records its normalization (checksummed in its cfg.json) must agree with its run's
 * normalization.json: the kind, and for center+l2 this side's mean. A disagreement means one of them was
 * edited or comes from another run: ERR_FORMAT rather than codes computed with the wrong input.
 */
function checkRecordedAgrees(recorded: LoadedCheckpoint['normalization'], saved: Normalizer, side: Modality, run: string, modelDir: string): void {
  if (!recorded) return;
  const mean = saved.mean[side];
  const same =
    recorded.kind === saved.kind &&
    (recorded.mean === undefined ? mean === undefined || saved.kind !== 'center+l2' : mean !== undefined && mean.length === recorded.mean.length && mean.every((v, i) => v === recorded.mean![i]));
  if (!same)
    throw new SaeError(
      'ERR_FORMAT',
      `${path.join(run, 'normalization.json')} (${saved.kind}) disagrees with the normalization recorded in ${path.join(modelDir, CFG_FILE)} (${recorded.kind}${recorded.mean ? ', with its mean' : ''}): one of them was edited or belongs to another run; restore the run's files, or pass --normalization explicitly`,
    );
}

export async function loadCliModel(modelDir: string, f: { side?: string; normalization?: string }): Promise<CliModel> {
  const override = checkKind(f.normalization);
  if (f.side !== undefined && f.side !== 'image' && f.side !== 'text') throw new SaeError('ERR_ARG', `--side must be 'image' or 'text', got '${f.side}'`);
  if (statOrNull(path.join(modelDir, 'alignment.json'))) {
    if (f.side !== 'image' && f.side !== 'text') throw new SaeError('ERR_ARG', `${modelDir} is an aligned pair: choose --side image or --side text`);
    const pair = await AlignedPair.load(modelDir);
    const norm = override ? new Normalizer(override, pair.normalizer.mean) : pair.normalizer;
    return {
      sae: f.side === 'image' ? pair.image : pair.text,
      norm,
      side: f.side,
      normSource: override ? '--normalization' : 'the aligned pair',
      version: 'crossmodal-sae aligned pair',
      format: 'pair',
      run: runOfModelDir(modelDir),
      notes: [],
      release: () => pair.dispose(),
    };
  }
  const base = path.basename(path.resolve(modelDir));
  const side: Modality = (f.side as Modality | undefined) ?? (base === 'text' ? 'text' : 'image');
  const c = await loadCheckpoint(modelDir);
  try {
    const run = c.format === 'cmsae' ? runOfModelDir(modelDir) : null;
    const recorded = c.normalization;
    const mean = recorded?.mean ? { [side]: recorded.mean } : {};
    let norm: Normalizer;
    let normSource: string;
    if (run) {
      const saved = await readRunNormalizer(run);
      checkRecordedAgrees(recorded, saved, side, run, modelDir);
      norm = override ? new Normalizer(override, saved.mean) : saved;
      normSource = override ? '--normalization' : `run ${run}`;
    } else if (override) {
      norm = new Normalizer(override, mean);
      normSource = '--normalization';
    } else if (c.format === 'cmsae') {
      norm = recorded ? new Normalizer(recorded.kind, mean) : new Normalizer('l2');
      normSource = recorded
        ? `recorded in ${path.join(modelDir, CFG_FILE)}`
        : "assumed: a crossmodal-sae checkpoint outside its run directory that records no normalization ('l2' is cmsae train's default; pass --normalization to choose)";
    } else {
      norm = new Normalizer(recorded?.kind ?? 'none');
      normSource = norm.kind === 'none' ? `${c.version}: its forward pass normalizes nothing` : `${c.version}: ${c.notes.find((n) => n.includes('constant_norm_rescale')) ?? 'folded'}`;
    }
    return { sae: c.sae, norm, side, normSource, version: c.version, format: c.format, run, notes: c.notes, release: () => c.sae.dispose() };
  } catch (e) {
    c.sae.dispose();
    throw e;
  }
}

/** Provenance of a model's training data from its run configuration (for an export's metadata). */
export async function runEmbeddings(run: string | null, side: Modality): Promise<string | undefined> {
  if (!run) return undefined;
  try {
    const cfg = await readRunConfig(run);
    const file = side === 'text' ? cfg.data.text.path : cfg.data.image.path;
    // The run records its files as they were given; a relative path is relative to where training ran, not to here.
    return path.isAbsolute(file) ? file : `${file} (relative to the directory cmsae train ran in, for run ${path.resolve(run)})`;
  } catch {
    return undefined;
  }
}
