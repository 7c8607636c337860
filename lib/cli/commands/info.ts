/** `cmsae info`: version, backend, SIMD level, threads and CUDA availability. */
import type { Command } from 'commander';

import { info } from '../../info.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print version, backend, SIMD level, threads and CUDA availability')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ cmsae info --json\n')
    .action((opts: { json?: boolean }) => {
      const i = info();
      if (opts.json) {
        process.stdout.write(JSON.stringify(i, null, 2) + '\n');
        return;
      }
      const cuda = i.cuda.available
        ? `available (${i.cuda.deviceCount} device(s), ${i.cuda.deviceName ?? ''})`
        : `${i.cuda.compiled ? 'compiled, ' : 'not compiled, '}no device: ${i.cuda.message}`;
      process.stdout.write(
        [
          `crossmodal-sae ${i.version}`,
          `backend   ${i.backend} (build: ${i.build})`,
          `simd      ${i.simd} (cpu supports ${i.simdDetected})`,
          `encode    ${i.encodePath} (setting ${i.encodeMode}; this cpu runs ${i.encodePaths.join(', ')})`,
          `threads   ${i.threads}`,
          `cuda      ${cuda}`,
          `addon     ${i.addonPath}`,
          `compiler  ${i.compiler}`,
          `node      ${i.node} ${i.platform}`,
        ].join('\n') + '\n',
      );
    });
}
