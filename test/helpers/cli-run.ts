/** Runs the cmsae CLI inside the test process (fast; for commands that cannot hang or kill the process). */
import { main } from '../../lib/cli/main.js';

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export async function cmsaeInProcess(args: string[]): Promise<CliResult> {
  const out: string[] = [], err: string[] = [];
  const write = (sink: string[]) => ((chunk: unknown) => (sink.push(String(chunk)), true)) as typeof process.stdout.write;
  const [ow, ew] = [process.stdout.write, process.stderr.write];
  process.stdout.write = write(out);
  process.stderr.write = write(err);
  try {
    const status = await main(args);
    return { status, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}
