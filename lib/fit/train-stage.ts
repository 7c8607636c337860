/**
 * One training run of `fit`, reused when it can be: a finished run with the same configuration and training
 * files (path, size, mtime in training-data.json) is kept, an interrupted one resumes from its checkpoint, and
 * a run with another configuration or other data is an error unless `force` retrains it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ensureDirectory, readTextFile } from '../io/files.js';
import { readRunConfig, runPaths } from '../run/layout.js';
import type { Method, TrainConfig } from '../train/config.js';
import { Trainer, type TrainProgress } from '../train/trainer.js';

export const TRAINING_DATA_FILE = 'training-data.json';

/** The final models a finished run of this method holds. */
export function finalComplete(dir: string, method: Method): boolean {
  const p = runPaths(dir);
  if (method.startsWith('shared')) return existsSync(path.join(p.final('shared'), 'cfg.json'));
  return existsSync(path.join(p.final('image'), 'cfg.json')) && existsSync(path.join(p.final('text'), 'cfg.json')) && existsSync(path.join(p.final('pair'), 'alignment.json'));
}

/** The run at `dir` when it was trained with exactly `cfg` on the training files of `dataKey`. */
export async function sameRun(dir: string, cfg: TrainConfig, dataKey: string): Promise<boolean> {
  try {
    return JSON.stringify(await readRunConfig(dir)) === JSON.stringify(cfg) && (await readTextFile(path.join(dir, TRAINING_DATA_FILE), 'training data key')) === dataKey;
  } catch {
    return false;
  }
}

export async function trainOrReuse(
  dir: string,
  cfg: TrainConfig,
  dataKey: string,
  o: { force?: boolean; signal?: AbortSignal },
  onProgress: (p: TrainProgress) => void,
  onStatus: (s: 'start' | 'resumed') => void,
): Promise<'reused' | 'resumed' | 'trained'> {
  let resume = false;
  // Replacing a run goes through the Trainer's own rule (only the run's entries are removed, never other files).
  let replace = false;
  if (existsSync(runPaths(dir).config)) {
    if (!(await sameRun(dir, cfg, dataKey))) {
      if (!o.force)
        throw new SaeError('ERR_STATE', `${dir} holds a training run with a different configuration or other training data (size or mtime changed): use another --out, or --force to retrain it`);
      replace = true;
    } else if (finalComplete(dir, cfg.method)) return 'reused';
    else if (existsSync(runPaths(dir).checkpointState)) resume = true;
    else replace = true; // the same run, stopped before its first checkpoint: start it again
  }
  if (!resume) {
    await ensureDirectory(dir, 'training run directory');
    await writeFileAtomic(path.join(dir, TRAINING_DATA_FILE), dataKey);
  }
  onStatus(resume ? 'resumed' : 'start');
  const trainer = new Trainer(cfg, { out: dir, resume, force: replace });
  trainer.on('progress', onProgress);
  await trainer.run({ signal: o.signal });
  return resume ? 'resumed' : 'trained';
}
