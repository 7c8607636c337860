/** The cmsae command line. Exit codes: 0 success, 1 failure (one-line message), 2 bad usage. */
import { Command, CommanderError } from 'commander';

import { SaeError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerAlign } from './commands/align.js';
import { registerConcepts } from './commands/concepts.js';
import { registerCorrelate } from './commands/correlate.js';
import { registerEncode } from './commands/encode.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerFit } from './commands/fit.js';
import { registerInfo } from './commands/info.js';
import { registerServe } from './commands/serve.js';
import { registerSynth } from './commands/synth.js';
import { registerToy } from './commands/toy.js';
import { registerTrain } from './commands/train.js';

/**
 * A reader that closes early (`cmsae ... | head`) ends the process quietly, as Unix tools do, instead of an
 * unhandled EPIPE 'error' event with a stack trace.
 */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') > 0) continue;
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe();
  const program = new Command('cmsae')
    .description('Modality-specific Top-K sparse autoencoders for vision-language embeddings')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerTrain(program);
  registerAlign(program);
  registerCorrelate(program);
  registerEncode(program);
  registerExport(program);
  registerFit(program);
  registerEval(program);
  registerToy(program);
  registerConcepts(program);
  registerSynth(program);
  registerServe(program);
  registerInfo(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version succeed; help shown because a subcommand is missing ('cmsae', 'cmsae eval') is bad usage.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
      return 2;
    }
    const msg = e instanceof SaeError ? `${e.code}: ${e.message.replace(/:\n\s*/g, ': ').replace(/\n\s*/g, '; ')}` : String((e as Error)?.message ?? e);
    process.stderr.write(`cmsae: ${msg}\n`);
    // Invalid arguments or configuration are usage errors.
    return e instanceof SaeError && e.code === 'ERR_ARG' ? 2 : 1;
  }
}
