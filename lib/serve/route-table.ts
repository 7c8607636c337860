/**
 * The routes one service scope registered, by method and path pattern: an unknown path is answered 404
 * "no route GET /x", a known path asked with another method 405 with an Allow header.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

import { HttpError } from './http-errors.js';

/** Route config flag of a catch-all (the explorer's static files): it never makes a path "known". */
export const CATCH_ALL = { catchAll: true } as const;

/** A route url ('/sae/v1/concepts/:id', '/images/*') as a regular expression over request paths. */
function patternOf(url: string): RegExp {
  const parts = url.split('/').map((p) => (p === '*' ? '.*' : p.startsWith(':') ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

export class RouteTable {
  private readonly routes: { method: string; pattern: RegExp }[] = [];

  /** Records every route registered in `app`'s scope from now on (call before registering them). */
  track(app: FastifyInstance): void {
    app.addHook('onRoute', (r: RouteOptions) => {
      if ((r.config as { catchAll?: boolean } | undefined)?.catchAll) return;
      const pattern = patternOf(r.url ?? '');
      for (const method of [r.method].flat()) this.routes.push({ method, pattern });
    });
  }

  /** The methods some route answers on this path (sorted, deduplicated). */
  allowed(path: string): string[] {
    return [...new Set(this.routes.filter((r) => r.pattern.test(path)).map((r) => r.method))].sort();
  }

  /** 405 (with Allow) when the path is known under other methods, 404 otherwise. */
  noRoute(method: string, url: string): HttpError {
    const path = url.split('?')[0];
    const allow = this.allowed(path);
    if (allow.length > 0 && !allow.includes(method)) return new HttpError(405, 'ERR_METHOD_NOT_ALLOWED', `${method} ${path} is not a route: it answers ${allow.join(', ')}`, { allow: allow.join(', ') });
    return new HttpError(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`);
  }
}
