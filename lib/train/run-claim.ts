/**
 * Starting a new run in a directory: refused when it already holds a run (a config.json, a checkpoint or
 * final models), naming what is there, unless `force` replaces it; then only the run layout's own entries
 * are removed (config, normalization, metrics, the checkpoint and its leftover copies, the final models).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { fsError, readTextFile, statOrNull } from '../io/files.js';
import { foreignEntries, listSome } from '../io/atomic-common.js';
import { OWN_KIND_WORDS, kindOfDirectory } from '../io/own-directory.js';
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
 * Makes `runDir` ready for a new run: ERR_STATE when it holds one (unless `force`) or is another kind of our
 * directories (an SAE checkpoint, an aligned pair: never a run directory), ERR_IO when it is not a directory.
 * With `force`, removes the previous run's own entries and nothing else: the top-level run files, the
 * checkpoint and the final models, each only when it is recognisably ours; a user's file inside final/ stays,
 * and one inside checkpoint/ or a final model directory (which the new run must replace) is refused up front.
 */
export async function claimRunDirectory(runDir: string, opts: { force: boolean }): Promise<void> {
  const c = runContents(runDir);
  if (c.exists) {
    const kind = kindOfDirectory(runDir);
    if (kind !== null)
      throw new SaeError('ERR_STATE', `${runDir} is ${OWN_KIND_WORDS[kind]}, not a training run directory; choose another output directory`);
  }
  if (!c.isRun && !c.hasCheckpoint && !c.hasFinal) return;
  if (!opts.force) {
    throw new SaeError(
      'ERR_STATE',
      `${runDir} already holds ${await describeRun(runDir)}; continue it with --resume ({ resume: true }), choose another output directory, or replace it with --force ({ force: true })`,
    );
  }
  const p = runPaths(runDir);
  const list = async (dir: string) =>
    fs.readdir(dir).catch((e) => {
      throw fsError(e, 'cannot list', dir);
    });
  // Everything that will be removed is checked first, so that a refusal removes nothing.
  const doomed: string[] = [p.config, p.normalization, p.metrics].filter((f) => statOrNull(f));
  const leftovers = (await list(p.root)).filter((e) => e.startsWith(`${RUN_CHECKPOINT_DIR}.tmp-`) || e.startsWith(`${RUN_CHECKPOINT_DIR}.old-`));
  doomed.push(...leftovers.map((e) => path.join(p.root, e)));
  const ownDirectory = async (dir: string, what: string) => {
    const foreign = await foreignEntries(dir, new Set(), true);
    if (foreign.length || (kindOfDirectory(dir) === null && (await list(dir)).length > 0))
      throw new SaeError('ERR_IO', `--force would replace ${what} ${dir}, but it holds files crossmodal-sae did not write (${listSome(foreign.length ? foreign : await list(dir))}); move them away first`);
    doomed.push(dir);
  };
  if (statOrNull(p.checkpoint)?.isDirectory()) await ownDirectory(p.checkpoint, 'the checkpoint');
  if (statOrNull(p.finalDir)?.isDirectory())
    for (const model of ['image', 'text', 'shared', 'pair'] as const) if (statOrNull(p.final(model))?.isDirectory()) await ownDirectory(p.final(model), 'the final model');
  for (const entry of doomed)
    await fs.rm(entry, { recursive: true, force: true }).catch((e) => {
      throw fsError(e, "cannot remove the previous run's", entry);
    });
  // final/ goes too when nothing of the user's is left in it.
  if (statOrNull(p.finalDir)?.isDirectory() && (await list(p.finalDir)).length === 0) await fs.rmdir(p.finalDir).catch(() => undefined);
}
