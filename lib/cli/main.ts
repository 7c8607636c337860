/** The cmsae command line. Exit codes: 0 success, 1 failure (one-line message), 2 bad usage. */
import { Command, CommanderError } from 'commander';

import { SaeError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerInfo } from './commands/info.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('cmsae')
    .description('Modality-specific Top-K sparse autoencoders for vision-language embeddings')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerInfo(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    const msg = e instanceof SaeError ? `${e.code}: ${e.message.split('\n')[0]}` : String((e as Error)?.message ?? e);
    process.stderr.write(`cmsae: ${msg}\n`);
    return 1;
  }
}
