/** The explorer at /, the vega builds at /vendor/*, image files at /images/<relpath> (under imageRoot only). */
import type { FastifyInstance } from 'fastify';

import { readRegularFile } from '../../io/files.js';
import { HttpError } from '../http-errors.js';
import type { ResolvedServiceOptions } from '../options.js';
import { CATCH_ALL, type RouteTable } from '../route-table.js';
import { CONTENT_TYPES, IMAGE_EXTENSIONS, explorerDir, readContained, vendorFiles } from '../static-files.js';

const EXPLORER_EXTENSIONS = ['.html', '.js', '.mjs', '.css', '.json', '.svg', '.png', '.ico'];
const hidden = { hide: true } as const;
/** Paths of the API, never explorer files: a request there no route took is a 404/405 of the API. */
const API_PATH = /^(v1|images|vendor)(\/|$)|^(healthz|metrics|openapi\.json)$/;

export function staticRoutes(app: FastifyInstance, o: ResolvedServiceOptions, routes: RouteTable): void {
  app.get('/images/*', { schema: { summary: 'An image file under the image root', params: { type: 'object', properties: { '*': { type: 'string' } } } } }, async (req, reply) => {
    if (!o.imageRoot) throw new HttpError(404, 'ERR_NOT_FOUND', 'this service serves no image files: start it with --image-root <dir>');
    const { body, type } = await readContained(o.imageRoot, (req.params as { '*': string })['*'], IMAGE_EXTENSIONS);
    // An SVG may carry script: sandboxed, never sniffed.
    return reply.type(type).header('x-content-type-options', 'nosniff').header('content-security-policy', "sandbox; default-src 'none'; style-src 'unsafe-inline'").send(body);
  });
  if (!o.explorer) return;
  const dir = explorerDir();
  const vendor = vendorFiles();
  app.get('/vendor/:file', { schema: hidden }, async (req, reply) => {
    const file = vendor[(req.params as { file: string }).file];
    if (!file) throw new HttpError(404, 'ERR_NOT_FOUND', `no vendor file ${(req.params as { file: string }).file}`);
    return reply.type(CONTENT_TYPES['.js']).header('cache-control', 'public, max-age=3600').send(await readRegularFile(file, 'vendor file'));
  });
  const page = async (rel: string) => readContained(dir, rel, EXPLORER_EXTENSIONS);
  // Under a prefix, /sae answers a redirect to /sae/: the explorer's relative asset paths need the slash.
  if (app.prefix !== '') app.get('/', { schema: hidden, prefixTrailingSlash: 'no-slash' }, async (req, reply) => reply.redirect(`${app.prefix}/${req.url.slice(app.prefix.length)}`, 308));
  app.get('/', { schema: hidden, prefixTrailingSlash: 'slash' }, async (_req, reply) => {
    const { body, type } = await page('index.html').catch(() => {
      throw new HttpError(404, 'ERR_NOT_FOUND', `the web explorer is not installed here (no ${dir}/index.html)`);
    });
    return reply.type(type).header('x-content-type-options', 'nosniff').send(body);
  });
  app.get('/*', { schema: hidden, config: CATCH_ALL }, async (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    if (API_PATH.test(rel)) throw routes.noRoute(req.method, req.url);
    const { body, type } = await page(rel);
    return reply.type(type).header('x-content-type-options', 'nosniff').send(body);
  });
}
