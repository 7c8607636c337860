/** `cmsae serve`: the concept service over HTTP (JSON API, micro-batching, metrics, the web explorer). */
import { InvalidArgumentError, type Command } from 'commander';

import { SaeError } from '../../errors.js';
import { setThreads } from '../../info.js';
import type { ConceptCorpus } from '../../concepts/types.js';
import { ConceptIndex } from '../../concepts/concept-index.js';
import { conceptIndexFor } from '../../concepts/build.js';
import { loadConceptCorpus } from '../../concepts/corpus.js';
import { prepareDemoPair } from '../../serve/demo.js';
import { SERVE_DEFAULTS, checkBindSecurity, checkImageRoot } from '../../serve/options.js';
import { createService } from '../../serve/service.js';
import { addCorpusOptions, corpusSpecOf, type CorpusFlags } from '../corpus-flags.js';
import { nonNegativeInt, positiveInt } from '../parse.js';

interface ServeFlags extends CorpusFlags {
  pair?: string;
  concepts?: string;
  imageRoot?: string;
  port: number;
  host: string;
  token?: string;
  insecure?: boolean;
  maxBatchRows?: number;
  maxWaitMs?: number;
  maxQueueRows?: number;
  bodyLimit?: number;
  cors?: string[] | true;
  explorer: boolean;
  demo?: boolean;
  out?: string;
  threads?: number;
  log?: boolean;
}

/** A TCP port: an integer in [0, 65535] (0 picks a free one). */
function port(v: string): number {
  const n = /^\s*\d{1,5}\s*$/.test(v) ? Number(v) : NaN;
  if (!(n <= 65535)) throw new InvalidArgumentError('expected a port number in [0, 65535] (0 picks a free one)');
  return n;
}

/** --cors's origins: a comma-separated list of at least one (an empty list would refuse every origin silently). */
function origins(v: string): string[] {
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (xs.length === 0) throw new InvalidArgumentError('expected a comma-separated list of origins (or --cors alone for any origin)');
  return xs;
}

function hostUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve an aligned pair (and its concepts) over HTTP: /v1 JSON API, /metrics, the web explorer at /')
    .option('--pair <dir>', 'an aligned pair (<run>/final/pair, or cmsae align --out)')
    .option('--concepts <dir>', 'its concept index (cmsae concepts); default: built or reused from the corpus flags');
  addCorpusOptions(cmd)
    .option('--image-root <dir>', 'serve image files from under this directory only')
    .option('--port <n>', 'port in [0, 65535] (0 picks a free one)', port, 8080)
    .option('--host <host>', 'interface to bind (anything but loopback needs --token or --insecure)', '127.0.0.1')
    .option('--token <secret>', 'bearer token required on every route but /healthz')
    .option('--insecure', 'allow a non-loopback --host without a token')
    .option('--max-batch-rows <n>', `rows per native call (default ${SERVE_DEFAULTS.maxBatchRows}; 1 turns batching off)`, positiveInt)
    .option('--max-wait-ms <n>', `longest a request waits for a batch to fill (default ${SERVE_DEFAULTS.maxWaitMs})`, nonNegativeInt)
    .option('--max-queue-rows <n>', `rows waiting or running per operation before 503 (default ${SERVE_DEFAULTS.maxQueueRows})`, positiveInt)
    .option('--body-limit <bytes>', `largest request body (default ${SERVE_DEFAULTS.bodyLimit})`, positiveInt)
    .option('--cors [origins]', 'allow cross-origin requests (any origin, or a comma-separated list)', origins)
    .option('--no-explorer', 'do not serve the web explorer at /')
    .option('--demo', 'build (or reuse) a toy dataset, a small posthoc pair and its concept index, and serve them')
    .option('--out <dir>', 'with --demo: where to keep them (default cmsae-demo)')
    .option('--threads <n>', 'native threads (default: all cores)', positiveInt)
    .option('--log', "fastify's request log on stderr")
    .addHelpText(
      'after',
      `
The first line of standard output is always "listening on http://HOST:PORT". SIGTERM or Ctrl-C stops taking
requests, finishes the ones in flight and exits 0.

Examples:
  $ cmsae serve --demo --out demo --port 8080
  $ cmsae serve --pair runs/x/final/pair --toy data/toy --port 0
  $ cmsae serve --pair runs/x/final/pair --concepts runs/x/final/concepts --host 0.0.0.0 --token "$TOKEN"
`,
    )
    .action(async (f: ServeFlags) => {
      if (f.threads !== undefined) setThreads(f.threads);
      checkBindSecurity(f.host, f.token, f.insecure === true);
      if (f.out && !f.demo) throw new SaeError('ERR_ARG', '--out is for --demo (where the demo keeps its dataset, pair and index)');
      // Checked before a concept index may be built (createService checks it again, for library users).
      const imageRoot = f.imageRoot === undefined ? undefined : checkImageRoot(f.imageRoot);
      const log = (s: string) => process.stderr.write(s + '\n');
      let pairDir = f.pair, spec = corpusSpecOf(f);
      if (f.demo) {
        if (f.pair || spec || f.concepts) throw new SaeError('ERR_ARG', '--demo builds its own pair, corpus and concepts: give it without --pair, --concepts or corpus flags');
        const p = await prepareDemoPair(f.out ?? 'cmsae-demo', log);
        pairDir = p.pair;
        spec = { toy: p.toy };
      }
      if (!pairDir) throw new SaeError('ERR_ARG', 'serve needs --pair <dir> (or --demo)');
      let concepts: ConceptIndex | undefined, corpus: ConceptCorpus | undefined;
      if (f.concepts || spec) {
        if (spec) corpus = await loadConceptCorpus(spec);
        if (f.concepts) concepts = await ConceptIndex.load(f.concepts);
        else {
          const t0 = performance.now();
          const r = await conceptIndexFor(pairDir, spec!, {});
          concepts = r.index;
          log(`${r.reused ? 'reusing' : 'built'} the concept index in ${r.dir}${r.reused ? '' : ` (${((performance.now() - t0) / 1000).toFixed(1)} s)`}`);
        }
      }
      const app = await createService({
        pair: pairDir,
        ...(concepts ? { concepts } : {}),
        ...(corpus ? { corpus } : {}),
        ...(imageRoot ? { imageRoot } : {}),
        ...(f.maxBatchRows !== undefined ? { maxBatchRows: f.maxBatchRows } : {}),
        ...(f.maxWaitMs !== undefined ? { maxWaitMs: f.maxWaitMs } : {}),
        ...(f.maxQueueRows !== undefined ? { maxQueueRows: f.maxQueueRows } : {}),
        ...(f.bodyLimit !== undefined ? { bodyLimit: f.bodyLimit } : {}),
        ...(f.token ? { token: f.token } : {}),
        ...(f.cors ? { cors: f.cors === true ? true : f.cors } : {}),
        explorer: f.explorer,
        logger: f.log === true,
      });
      let done: (e?: unknown) => void = () => undefined;
      const closed = new Promise<void>((resolve, reject) => (done = (e) => (e ? reject(e) : resolve())));
      await app.listen({ port: f.port, host: f.host });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : f.port;
      process.stdout.write(`listening on ${hostUrl(f.host, port)}\n`);
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) process.exit(130); // a second signal does not wait
        stopping = true;
        log(`cmsae serve: ${sig}: finishing the requests in flight (again to quit at once)`);
        app.close().then(() => done(), done);
      };
      const onTerm = () => stop('SIGTERM'), onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      try {
        await closed;
      } finally {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
      }
    });
}
