/**
 * conceptService: the service as a fastify plugin (register it under a prefix in another app; createService
 * wraps it with swagger and /openapi.json). Routes: /healthz, /metrics, /v1/*, /images/*, and the explorer at /.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';

import cors from '@fastify/cors';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

import { AlignedPair } from '../align/aligned-pair.js';
import { SaeError } from '../errors.js';
import { readRegularFile, statOrNull } from '../io/files.js';
import { taggedSha256 } from '../io/digest.js';
import { ConceptIndex } from '../concepts/concept-index.js';
import type { ServiceContext } from './context.js';
import { CorpusView } from './corpus.js';
import { PairEngine } from './engine.js';
import { HttpError, installErrorHandlers } from './http-errors.js';
import { ServiceMetrics } from './metrics.js';
import { checkImageRoot, resolveServiceOptions, type ServiceOptions } from './options.js';
import { RouteTable } from './route-table.js';
import { conceptRoutes } from './routes/concepts.js';
import { modelRoutes } from './routes/model.js';
import { staticRoutes } from './routes/static.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Whether an Authorization header is "Bearer <token>": the scheme in any case (RFC 7235), the credentials compared
 * in constant time (as digests, so neither their length nor their content shows in the timing).
 */
export function bearerOk(header: string | undefined, token: string): boolean {
  const m = /^bearer +(\S*) *$/i.exec(header ?? '');
  return timingSafeEqual(sha256(m ? m[1] : ''), sha256(token)) && m !== null;
}

/** The image root: the option, else the one the concept index records (when it is still a directory here). */
function imageRootOf(given: string | null, index: ConceptIndex | null, app: FastifyInstance): string | null {
  if (given !== null) return given;
  const recorded = index?.meta.imageRoot ?? null;
  if (recorded === null) return null;
  try {
    return checkImageRoot(recorded, 'the image root the concept index records,');
  } catch (e) {
    app.log.warn(`serving no image files: ${(e as Error).message} (give the imageRoot option / --image-root)`);
    return null;
  }
}

export const conceptService: FastifyPluginAsync<ServiceOptions> = async (app: FastifyInstance, raw: ServiceOptions) => {
  // fastify hands its own register options (prefix, logLevel, logSerializers) to the plugin with ours.
  const { prefix: _prefix, logLevel: _logLevel, logSerializers: _logSerializers, ...own } = raw as ServiceOptions & { prefix?: unknown; logLevel?: unknown; logSerializers?: unknown };
  const { pair: pairOpt, concepts: conceptsOpt, corpus: corpusOpt } = own;
  const o = resolveServiceOptions(own);
  let pair: AlignedPair, ownPair = false;
  let provenance: ServiceContext['provenance'] = { dir: null, checksum: null };
  if (typeof pairOpt === 'string') {
    pair = await AlignedPair.load(pairOpt);
    ownPair = true;
    const meta = path.join(pairOpt, 'alignment.json');
    provenance = { dir: path.resolve(pairOpt), checksum: statOrNull(meta) ? taggedSha256(await readRegularFile(meta, 'aligned-pair file')) : null };
  } else if (pairOpt instanceof AlignedPair) pair = pairOpt;
  else throw new SaeError('ERR_ARG', 'service option pair must be an AlignedPair or the directory of one');
  try {
    const index = conceptsOpt === undefined ? null : typeof conceptsOpt === 'string' ? await ConceptIndex.load(conceptsOpt) : conceptsOpt;
    let engine: PairEngine | null = null;
    const metrics = new ServiceMetrics(() => engine?.queueDepth() ?? {});
    engine = new PairEngine(pair, o, metrics);
    const corpus = new CorpusView(pair, index, corpusOpt ?? null);
    const options = { ...o, imageRoot: imageRootOf(o.imageRoot, index, app) };
    const ctx: ServiceContext = { engine, corpus, options, metrics, provenance, labels: index ? index.summaries().map((s) => s.label) : null };

    const routes = new RouteTable();
    routes.track(app);
    installErrorHandlers(app, (method, url) => routes.noRoute(method, url));
    // x-shape is not a CORS-safelisted response header: a browser script reads it only when it is exposed.
    if (o.cors) await app.register(cors, { origin: o.cors === true ? true : o.cors, exposedHeaders: ['x-shape', 'retry-after'] });
    app.removeContentTypeParser('text/plain'); // JSON or raw float32 only: anything else is 415
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: o.bodyLimit }, (req, body, done) => {
      // Only routes marked RAW_FLOAT32 (POST /v1/encode) take a raw body; on the others it is a media-type error.
      if ((req.routeOptions.config as { rawFloat32?: boolean }).rawFloat32) done(null, body);
      else done(new HttpError(415, 'ERR_UNSUPPORTED_MEDIA', `${req.method} ${req.url.split('?')[0]} takes application/json only (application/octet-stream is for POST /v1/encode)`), undefined);
    });
    const healthz = `${app.prefix}/healthz`;
    if (o.token) {
      const token = o.token;
      app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        if (req.routeOptions.url === healthz) return;
        if (!bearerOk(req.headers.authorization, token)) {
          void reply.header('www-authenticate', 'Bearer');
          throw new HttpError(401, 'ERR_UNAUTHORIZED', 'this service needs the header Authorization: Bearer <token> (the --token it was started with)');
        }
      });
    }
    app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
      metrics.observe(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    });
    app.addHook('preClose', async () => {
      await engine.drain();
    });
    app.addHook('onClose', async () => {
      if (ownPair) pair.dispose();
    });

    app.get('/healthz', { schema: { summary: 'Liveness', response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
    app.get('/metrics', { schema: { summary: 'Prometheus metrics (text format)', hide: false } }, async (_req, reply) => {
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
    // The OpenAPI document of the app this plugin sits in (createService registers @fastify/swagger; a host app may too).
    const withSwagger = app as FastifyInstance & { swagger?: () => unknown };
    if (typeof withSwagger.swagger === 'function') app.get('/openapi.json', { schema: { hide: true } }, async () => withSwagger.swagger!());
    modelRoutes(app, ctx);
    conceptRoutes(app, ctx);
    staticRoutes(app, options, routes);
  } catch (e) {
    if (ownPair) pair.dispose();
    throw e;
  }
};
