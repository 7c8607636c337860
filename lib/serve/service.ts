/** createService: the concept service as a ready fastify app (swagger + /openapi.json + the conceptService plugin). */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';

import { VERSION } from '../version.js';
import { resolveServiceOptions, type ServiceOptions } from './options.js';
import { conceptService } from './plugin.js';

/**
 * A fastify app serving an aligned pair (and, with a concept index, its concepts). Request bodies are validated
 * strictly (no type coercion: JSON null is NaN and refused; unknown fields are refused). Call app.listen() to
 * serve and app.close() to stop: close drains queued and running batches before it resolves.
 */
export async function createService(opts: ServiceOptions): Promise<FastifyInstance> {
  const o = resolveServiceOptions(opts);
  const app = Fastify({
    logger: o.logger,
    bodyLimit: o.bodyLimit,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'crossmodal-sae concept service', version: VERSION, description: 'Aligned sparse codes, concepts and search over a post-hoc aligned image/text SAE pair' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      ...(o.token ? { security: [{ bearer: [] }] } : {}),
    },
  });
  await app.register(conceptService, opts);
  await app.ready();
  return app;
}
