/**
 * Load test of `cmsae serve` (issue 13 §5): /v1/encode of single 512-d embeddings against an m = 8192 pair (what
 * `cmsae train --method posthoc --m 16384` gives), 64 keep-alive connections, autocannon on loopback, JSON and
 * raw float32 bodies; side by side in the same run: (a) the service with --max-batch-rows 1, (b) a bare node:http
 * server that only parses the same JSON body and answers a constant (the machine's HTTP ceiling), (c) the
 * library's direct encode of 1024-row batches (the compute ceiling). RSS of the service before and after three
 * JSON runs. The pair's weights are random (encode costs the same for any weights); it is aligned on random codes.
 *
 *   npx tsx bench/serve-load.ts [--seconds 10] [--connections 64] [--json out.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';

import autocannon from 'autocannon';

import { AlignedPair, CorrelationAccumulator, Normalizer, TopKSAE, info } from '../lib/index.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '64' }, json: { type: 'string' } } });
const SECONDS = Number(args.seconds), CONNECTIONS = Number(args.connections);
const D = 512, M = 8192, K = 32;

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

async function buildPair(dir: string): Promise<void> {
  const t0 = performance.now();
  using image = TopKSAE.create({ d: D, m: M, k: K, seed: 1 });
  using text = TopKSAE.create({ d: D, m: M, k: K, seed: 2 });
  const rows = 8192;
  const x = { rows, cols: D, data: randn(rows * D, 3) };
  const norm = new Normalizer('l2');
  norm.apply('image', x.data, rows, D);
  using acc = new CorrelationAccumulator(M, M);
  await acc.addAsync(await image.encodeAsync(x), await text.encodeAsync(x));
  using pair = AlignedPair.fromCorrelation(image, text, acc.result(), { normalizer: norm });
  await pair.save(dir);
  console.error(`built an m = ${M} pair (d = ${D}, k = ${K}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

interface Server {
  child: ChildProcess;
  url: string;
}

async function start(cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const child = spawn(process.execPath, cmd, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`server exited (${c}) before listening`)));
  });
  const m = /^listening on (http:\/\/\S+)$/.exec(line);
  if (!m) throw new Error(`unexpected first line: ${line}`);
  return { child, url: m[1] };
}

async function stop(s: Server): Promise<void> {
  const done = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await done;
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Load {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

async function load(name: string, url: string, body: Buffer | string, headers: Record<string, string>): Promise<Load> {
  const r = await autocannon({ url, method: 'POST', connections: CONNECTIONS, duration: SECONDS, body, headers, pipelining: 1 });
  const out = { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total };
  console.error(`${name.padEnd(34)} ${out.rps.toFixed(0).padStart(7)} req/s  p50 ${String(out.p50).padStart(4)} ms  p99 ${String(out.p99).padStart(4)} ms  errors ${out.errors}  non-2xx ${out.non2xx}`);
  return out;
}

const ECHO = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (!Array.isArray(b.embeddings)) { res.statusCode = 400; return res.end('{}'); }
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
});
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + s.address().port));
process.on('SIGTERM', () => s.close(() => process.exit(0)));
`;

async function directEncode(pairDir: string): Promise<{ rowsPerSec: number }> {
  using pair = await AlignedPair.load(pairDir);
  const B = 1024;
  const x = { rows: B, cols: D, data: randn(B * D, 9) };
  await pair.image.encodeAsync(x);
  let rows = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < Math.min(5, SECONDS) * 1000) {
    await pair.image.encodeAsync(x);
    rows += B;
  }
  const rowsPerSec = rows / ((performance.now() - t0) / 1000);
  console.error(`${'(c) direct encode, 1024-row batches'.padEnd(34)} ${rowsPerSec.toFixed(0).padStart(7)} rows/s`);
  return { rowsPerSec };
}

const tmp = await mkdtemp(path.join(os.tmpdir(), 'cmsae-serve-load-'));
try {
  const pairDir = path.join(tmp, 'pair');
  await buildPair(pairDir);
  const one = Array.from(randn(D, 5));
  const json = JSON.stringify({ modality: 'image', embeddings: one });
  const binary = Buffer.from(Float32Array.from(one).buffer);
  const jsonHeaders = { 'content-type': 'application/json' };
  const binHeaders = { 'content-type': 'application/octet-stream', 'x-shape': `1,${D}`, 'x-modality': 'image' };
  const cli = ['--import', 'tsx', path.resolve('test/helpers/cli-entry.ts'), 'serve', '--pair', pairDir, '--port', '0'];
  console.error(`${info().simd} SIMD, ${os.cpus().length} cores, node ${process.version}; ${CONNECTIONS} connections, ${SECONDS} s per run, body ${json.length} B JSON / ${binary.length} B binary`);

  const echo = await start(['-e', ECHO]);
  const echoRun = await load('(b) node:http JSON echo', echo.url, json, jsonHeaders);
  await stop(echo);

  const batched = await start(cli);
  const url = `${batched.url}/v1/encode`;
  await load('warm-up (not counted)', url, json, jsonHeaders);
  const rssBefore = rssMB(batched.child.pid!);
  const jsonRuns: Load[] = [];
  for (let i = 1; i <= 3; i++) jsonRuns.push(await load(`batched JSON, run ${i}`, url, json, jsonHeaders));
  const rssAfter = rssMB(batched.child.pid!);
  const binRun = await load('batched binary', url, binary, binHeaders);
  const metrics = await (await fetch(`${batched.url}/metrics`)).text();
  await stop(batched);

  const single = await start([...cli, '--max-batch-rows', '1']);
  const unbatched = await load('(a) --max-batch-rows 1, JSON', `${single.url}/v1/encode`, json, jsonHeaders);
  await stop(single);

  const direct = await directEncode(pairDir);
  const best = jsonRuns.reduce((a, b) => (b.rps > a.rps ? b : a));
  const meanRps = jsonRuns.reduce((s, r) => s + r.rps, 0) / jsonRuns.length;
  const batchSum = Number(/cmsae_batch_rows_sum\{op="encode_image"\} (\S+)/.exec(metrics)?.[1]);
  const batchCount = Number(/cmsae_batch_rows_count\{op="encode_image"\} (\S+)/.exec(metrics)?.[1]);
  const summary = {
    machine: { cores: os.cpus().length, simd: info().simd, node: process.version },
    settings: { seconds: SECONDS, connections: CONNECTIONS, d: D, m: M, k: K },
    echo: echoRun,
    batchedJson: jsonRuns,
    batchedBinary: binRun,
    unbatchedJson: unbatched,
    direct,
    meanBatchRows: batchSum / batchCount,
    rssMB: { before: rssBefore, after: rssAfter, growth: rssAfter - rssBefore },
    ratios: { jsonVsEcho: meanRps / echoRun.rps, batchedVsUnbatched: meanRps / unbatched.rps, binaryVsJson: binRun.rps / meanRps },
    targets: {
      zeroErrors: [...jsonRuns, binRun, unbatched].every((r) => r.errors === 0 && r.non2xx === 0),
      jsonAtLeast85PercentOfEcho: meanRps >= 0.85 * echoRun.rps,
      batchingAtLeast4x: meanRps >= 4 * unbatched.rps,
      binaryAtLeast1_5xJson: binRun.rps >= 1.5 * meanRps,
      p99AtMost40ms: Math.max(...jsonRuns.map((r) => r.p99), binRun.p99) <= 40,
      rssGrowthAtMost50MB: rssAfter - rssBefore <= 50,
    },
    bestJson: best,
  };
  console.error(`mean batch ${summary.meanBatchRows.toFixed(1)} rows; RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MB`);
  console.error(`ratios: JSON/echo ${summary.ratios.jsonVsEcho.toFixed(2)}, batched/unbatched ${summary.ratios.batchedVsUnbatched.toFixed(2)}x, binary/JSON ${summary.ratios.binaryVsJson.toFixed(2)}x`);
  console.error(`targets: ${Object.entries(summary.targets).map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`).join(', ')}`);
  if (args.json) await writeFile(args.json, JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(JSON.stringify(summary) + '\n');
} finally {
  await rm(tmp, { recursive: true, force: true });
}
