// The explorer's calls to the service's JSON API (/v1/...); a 4xx/5xx answer becomes an ApiError with its code.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Where the service is mounted: the folder this module was served from ('/' or, under a plugin prefix, '/sae/'). */
export const BASE = new URL('./', import.meta.url).pathname;

/** A service path ('/v1/info') under BASE. */
export const at = (path) => BASE + path.replace(/^\//, '');

async function call(path, init) {
  let res;
  try {
    res = await fetch(at(path), { headers: { accept: 'application/json' }, ...init });
  } catch (e) {
    throw new ApiError(0, 'ERR_NETWORK', `the service did not answer (${e.message})`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* reported below */ }
  if (!res.ok) {
    const err = body && body.error ? body.error : {};
    throw new ApiError(res.status, err.code ?? `HTTP_${res.status}`, err.message ?? (text || res.statusText));
  }
  if (body === null) throw new ApiError(res.status, 'ERR_FORMAT', `${path} answered no JSON`);
  return body;
}

export const get = (path) => call(path);
export const post = (path, body) => call(path, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

let infoPromise = null;
/** GET /v1/info, once per page load. */
export function info() {
  infoPromise ??= get('/v1/info').catch((e) => { infoPromise = null; throw e; });
  return infoPromise;
}

/** The corpus sizes an /v1/info answer gives ({ images, texts }), or null when the service has no corpus. */
export function corpusSizes(i) {
  const c = i.corpus ? { images: i.corpus.images, texts: i.corpus.captions } : i.concepts && i.concepts.corpus ? i.concepts.corpus : null;
  return c && c.images > 0 && c.texts > 0 ? { images: c.images, texts: c.texts } : null;
}
