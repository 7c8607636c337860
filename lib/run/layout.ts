/**
 * The layout of a training run directory (`cmsae train` / `Trainer`), owned here and nowhere else:
 *
 *   <run>/config.json          the validated TrainConfig (+ library_version)
 *   <run>/normalization.json   the input normalization (kind + centring means)
 *   <run>/metrics.jsonl        one JSON line per logged step / validation
 *   <run>/checkpoint/          the latest training checkpoint (state.json + one SAE dir per model)
 *   <run>/final/{image,text}   the trained modality SAEs (or final/shared), final/pair for posthoc
 *
 * and the one rule that says which rows of the training files a run trained on (trainingRows) and which of
 * them its alignment correlates (alignmentRows).
 */
import path from 'node:path';

import { Normalizer, splitRows } from '../data/paired.js';
import { SaeError } from '../errors.js';
import { readTextFile, statOrNull } from '../io/files.js';
import { unsealJson } from '../io/json-seal.js';
import { METHODS, parseConfig, type Method, type TrainConfig } from '../train/config.js';

export const RUN_CONFIG_FILE = 'config.json';
export const RUN_NORMALIZATION_FILE = 'normalization.json';
export const RUN_METRICS_FILE = 'metrics.jsonl';
export const RUN_CHECKPOINT_DIR = 'checkpoint';
export const RUN_CHECKPOINT_STATE_FILE = 'state.json';
export const RUN_FINAL_DIR = 'final';

export type FinalModel = 'image' | 'text' | 'shared' | 'pair';

/** The paths of a run directory. */
export function runPaths(runDir: string) {
  if (typeof runDir !== 'string' || runDir.length === 0) throw new SaeError('ERR_ARG', `a run directory path is needed, got ${runDir === '' ? "''" : String(runDir)}`);
  const root = path.resolve(runDir);
  return {
    root,
    config: path.join(root, RUN_CONFIG_FILE),
    normalization: path.join(root, RUN_NORMALIZATION_FILE),
    metrics: path.join(root, RUN_METRICS_FILE),
    checkpoint: path.join(root, RUN_CHECKPOINT_DIR),
    checkpointState: path.join(root, RUN_CHECKPOINT_DIR, RUN_CHECKPOINT_STATE_FILE),
    finalDir: path.join(root, RUN_FINAL_DIR),
    final: (which: FinalModel) => path.join(root, RUN_FINAL_DIR, which),
    /** One model of the checkpoint (shared, or image and text). */
    checkpointModel: (which: Exclude<FinalModel, 'pair'>) => path.join(root, RUN_CHECKPOINT_DIR, which),
  };
}

/** A run's saved configuration (ERR_IO when absent, ERR_FORMAT when it does not validate). */
export async function readRunConfig(runDir: string): Promise<TrainConfig> {
  if (typeof runDir !== 'string' || runDir.length === 0) throw new SaeError('ERR_ARG', `a run directory path is needed, got ${runDir === '' ? "''" : String(runDir)}`);
  const file = runPaths(runDir).config;
  let raw: string;
  try {
    raw = await readTextFile(file, 'run configuration');
  } catch (e) {
    throw new SaeError('ERR_IO', `${(e as Error).message}: is ${runDir} a training run directory?`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new SaeError('ERR_FORMAT', `${file} is not valid JSON (truncated or not a run configuration)`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SaeError('ERR_FORMAT', `${file} is not a JSON object`);
  try {
    const { library_version: _v, ...cfg } = json as Record<string, unknown>;
    return parseConfig(cfg);
  } catch (e) {
    throw new SaeError('ERR_FORMAT', `${file}: ${(e as Error).message}`);
  }
}

/**
 * Only the method of a run's config.json (ERR_FORMAT when it names none). Readers that need nothing else (the
 * evaluation loader) use this rather than readRunConfig, so that a finished run whose configuration a later
 * version validates more strictly still evaluates.
 */
export async function readRunMethod(runDir: string): Promise<Method> {
  const file = runPaths(runDir).config;
  let method: unknown;
  try {
    method = (JSON.parse(await readTextFile(file, 'run configuration')) as { method?: unknown } | null)?.method;
  } catch (e) {
    throw new SaeError(e instanceof SaeError ? e.code : 'ERR_FORMAT', `${file}: ${(e as Error).message}`);
  }
  if (typeof method !== 'string' || !(METHODS as readonly string[]).includes(method))
    throw new SaeError('ERR_FORMAT', `${file} names no training method (got ${JSON.stringify(method)}): is ${runDir} a cmsae training run?`);
  return method as Method;
}

/** A run's normalization.json (ERR_FORMAT when missing or malformed). */
export async function readRunNormalizer(runDir: string): Promise<Normalizer> {
  const file = runPaths(runDir).normalization;
  let text: string;
  try {
    text = await readTextFile(file, 'normalization file');
  } catch (e) {
    throw new SaeError('ERR_FORMAT', `${file} is missing or unreadable (${(e as Error).message}): is ${runDir} a complete training run?`);
  }
  // Sealed with a checksum since issue 12 (earlier runs have none); an edited or corrupt file is refused.
  const j = unsealJson(text, file) as Parameters<typeof Normalizer.fromJSON>[0];
  try {
    return Normalizer.fromJSON(j);
  } catch (e) {
    throw new SaeError('ERR_FORMAT', `${file}: ${(e as Error).message}`);
  }
}

/**
 * The rows of a run's training files that it trained on (and that alignment, fit's zero-shot filter and
 * heterogeneity correlate): all rows when the run has separate validation files (valImage and valText),
 * else the training part of the seeded split.
 */
export function trainingRows(cfg: TrainConfig, rows: number): Int32Array {
  return cfg.data.valImage && cfg.data.valText ? Int32Array.from({ length: rows }, (_, i) => i) : splitRows(rows, cfg.data.valFraction, cfg.train.seed).train;
}

/**
 * The rows post-hoc alignment correlates (and heterogeneity, which must see the same correlation): the first
 * `samples` of the training rows in file order (0 = all of them), as the reference's build_perm.
 */
export function alignmentRows(cfg: TrainConfig, rows: number, samples = cfg.align.samples): Int32Array {
  const train = trainingRows(cfg, rows);
  return samples > 0 ? train.subarray(0, Math.min(train.length, samples)) : train;
}

/**
 * The run directory a model directory belongs to (`<run>/final/<model>` or `<run>/checkpoint/<model>` of a
 * directory with a config.json), or null for a model that stands alone (e.g. a foreign checkpoint).
 */
export function runOfModelDir(modelDir: string): string | null {
  const abs = path.resolve(modelDir);
  const parent = path.dirname(abs);
  const base = path.basename(parent);
  if (base !== RUN_FINAL_DIR && base !== RUN_CHECKPOINT_DIR) return null;
  const run = path.dirname(parent);
  return statOrNull(path.join(run, RUN_CONFIG_FILE))?.isFile() ? run : null;
}

/** What a directory holds, seen as a run directory (for refusing to overwrite another run). */
export interface RunContents {
  exists: boolean;
  /** It holds a config.json (a run directory). */
  isRun: boolean;
  hasCheckpoint: boolean;
  hasFinal: boolean;
}

export function runContents(runDir: string): RunContents {
  const p = runPaths(runDir);
  const st = statOrNull(p.root);
  if (!st) return { exists: false, isRun: false, hasCheckpoint: false, hasFinal: false };
  if (!st.isDirectory()) throw new SaeError('ERR_IO', `${runDir} exists and is not a directory; choose another output directory`);
  return {
    exists: true,
    isRun: statOrNull(p.config) !== null,
    hasCheckpoint: statOrNull(p.checkpointState) !== null,
    hasFinal: statOrNull(p.finalDir) !== null,
  };
}
