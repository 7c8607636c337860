/** Errors as the service answers them: { error: { code, message } } with a 4xx/5xx status. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { SaeError } from '../errors.js';

/** Service-only codes (the rest are the library's SaeError codes). */
export type ServiceErrorCode = 'ERR_UNAUTHORIZED' | 'ERR_NOT_FOUND' | 'ERR_METHOD_NOT_ALLOWED' | 'ERR_UNSUPPORTED_MEDIA';

const STATUS: Record<string, number> = {
  ERR_ARG: 400,
  ERR_SHAPE: 400,
  ERR_DTYPE: 400,
  ERR_NONFINITE: 400,
  ERR_FORMAT: 400,
  ERR_RANGE: 400,
  ERR_NOT_FOUND: 404,
  ERR_UNAUTHORIZED: 401,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_UNSUPPORTED_MEDIA: 415,
  ERR_TOO_LARGE: 413,
  ERR_STATE: 409,
  ERR_BUSY: 503,
  ERR_IO: 500,
};

/** A SaeError that also says which HTTP status to answer with (overrides the code's default). */
export class HttpError extends SaeError {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

/** fastify's own errors (validation, body parsing, limits) as our codes. */
function fromFastify(e: FastifyError): { status: number; code: string; message: string } {
  if (e.validation) return { status: 400, code: 'ERR_ARG', message: `invalid request ${e.validationContext ?? ''}: ${e.message}`.replace(/\s+/g, ' ') };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'ERR_TOO_LARGE', message: `${e.message}: send fewer rows per request (or raise --body-limit)` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'ERR_UNSUPPORTED_MEDIA', message: `${e.message}: send application/json, or application/octet-stream (raw little-endian float32) where the route takes it` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'ERR_FORMAT', message: e.message };
  }
  if (e instanceof SyntaxError || e.statusCode === 400) return { status: 400, code: 'ERR_FORMAT', message: `the body is not valid JSON: ${e.message}` };
  return { status: e.statusCode && e.statusCode >= 400 ? e.statusCode : 500, code: 'ERR_INTERNAL', message: e.message };
}

/** The error body and status of any thrown value. */
export function errorReply(e: unknown): { status: number; code: string; message: string; headers: Record<string, string> } {
  if (e instanceof HttpError) return { status: e.status, code: e.code, message: e.message, headers: e.headers };
  if (e instanceof SaeError) return { status: STATUS[e.code] ?? 500, code: e.code, message: e.message, headers: e.code === 'ERR_BUSY' ? { 'retry-after': '1' } : {} };
  return { ...fromFastify(e as FastifyError), headers: {} };
}

/** Installs the error and not-found handlers on a fastify scope (noRoute: the 404 or 405 of a request no route took). */
export function installErrorHandlers(app: FastifyInstance, noRoute: (method: string, url: string) => HttpError): void {
  app.setErrorHandler((e: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const r = errorReply(e);
    if (r.status >= 500 && r.code !== 'ERR_BUSY') req.log.error(e);
    void reply.code(r.status).headers(r.headers).type('application/json').send({ error: { code: r.code, message: r.message } });
  });
  app.setNotFoundHandler(async (req: FastifyRequest) => {
    throw noRoute(req.method, req.url);
  });
}
