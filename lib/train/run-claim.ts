/**
 * Starting a new run in a directory: refused when it already holds a run (a config.json, a checkpoint or
 * final models), naming what is there, unless `force` replaces it; then only the run layout's own entries
 * are removed (config, normalization, metrics, checkpoint and its leftover copies, final/).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { fsError, readTextFile, statOrNull } from '../io/files.js';
import { RUN_CHECKPOINT_DIR, runContents, runPaths } from '../run/layout.js';

async function jsonField(file: string, field: string): Promise<unknown> {
  try {
    return (JSON.parse(await readTextFile(file, 'run file')) as Record<string, unknown>)?.[field];
  } catch {
    return undefined;
  }
}

/** What a run directory holds, in words ('' when it holds no run). */
export async function describeRun(runDir: string): Promise<string> {
  const c = runContents(runDir);
  const p = runPaths(runDir);
  const parts: string[] = [];
  if (c.isRun) {
    const method = await jsonField(p.config, 'method');
    parts.push(typeof method === 'string' ? `a ${method} run (config.json)` : 'a config.json');
  }
  if (c.hasCheckpoint) {
    const step = await jsonField(p.checkpointState, 'step');
    parts.push(typeof step === 'number' ? `a checkpoint at step ${step}` : 'a checkpoint');
  }
  if (c.hasFinal) {
    const names = await fs.readdir(p.finalDir).catch(() => [] as string[]);
    parts.push(names.length ? `final models (${names.sort().join(', ')})` : 'a final/ directory');
  }
  return parts.join(', ');
}

/**
 * Makes `runDir` ready for a new run: ERR_STATE when it holds one (unless `force`), ERR_IO when it is not a
 * directory. With `force`, removes the previous run's entries and nothing else.
 */
export async function claimRunDirectory(runDir: string, opts: { force: boolean }): Promise<void> {
  const c = runContents(runDir);
  if (!c.isRun && !c.hasCheckpoint && !c.hasFinal) return;
  if (!opts.force) {
    throw new SaeError(
      'ERR_STATE',
      `${runDir} already holds ${await describeRun(runDir)}; continue it with --resume ({ resume: true }), choose another output directory, or replace it with --force ({ force: true })`,
    );
  }
  const p = runPaths(runDir);
  const entries = await fs.readdir(p.root).catch((e) => {
    throw fsError(e, 'cannot list', p.root);
  });
  const leftovers = entries.filter((e) => e.startsWith(`${RUN_CHECKPOINT_DIR}.tmp-`) || e.startsWith(`${RUN_CHECKPOINT_DIR}.old-`));
  for (const entry of [p.config, p.normalization, p.metrics, p.checkpoint, p.finalDir, ...leftovers.map((e) => path.join(p.root, e))])
    if (statOrNull(entry)) await fs.rm(entry, { recursive: true, force: true }).catch((e) => {
      throw fsError(e, 'cannot remove the previous run\'s', entry);
    });
}
