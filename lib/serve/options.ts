/** Options of the concept service (createService / conceptService), their defaults and their validation. */
import path from 'node:path';

import { SaeError } from '../errors.js';
import { fileKind, statOrNull } from '../io/files.js';
import type { AlignedPair } from '../align/aligned-pair.js';
import type { ConceptCorpus } from '../concepts/types.js';
import type { ConceptIndex } from '../concepts/concept-index.js';

/**
 * Batching defaults, measured with bench/serve-load.ts (64 connections of single 512-d rows against an m = 8192
 * pair on 2 cores; see docs/serve.md "Batching"): a 1 ms window gathers most of the concurrent requests without
 * adding visible latency, and 256 rows keep one native call under ~10 ms so a batch never holds the queue long.
 */
export const SERVE_DEFAULTS = {
  maxBatchRows: 256,
  maxWaitMs: 1,
  maxQueueRows: 8192,
  bodyLimit: 16 * 1024 * 1024,
} as const;

export interface ServiceOptions {
  /** The aligned pair (an AlignedPair, kept open: the caller disposes it) or its directory (loaded, disposed on close). */
  pair: AlignedPair | string;
  /** The concept index (a ConceptIndex or its directory): enables the concept, search and corpus routes. */
  concepts?: ConceptIndex | string;
  /** The corpus embeddings (for steering retrieval and row-based steer/explain). */
  corpus?: ConceptCorpus;
  /** Image files are served from under this directory only (GET /images/<relpath>); it must exist. Default: the one the concept index records, when it is a directory here. */
  imageRoot?: string;
  /** Most rows one native encode/decode call gathers (1 turns batching off). */
  maxBatchRows?: number;
  /** Longest a request waits for others to join its batch (0: only those that arrive in the same tick). */
  maxWaitMs?: number;
  /** Most rows waiting or running per operation; beyond it requests get 503 + Retry-After. */
  maxQueueRows?: number;
  /** Largest request body in bytes (413 beyond it). */
  bodyLimit?: number;
  /** Bearer token required on every route but /healthz. */
  token?: string;
  /** CORS: off unless true (any origin) or a list of allowed origins. */
  cors?: boolean | string[];
  /** Serve the web explorer at / (default true). */
  explorer?: boolean;
  /** fastify's logger (default false). */
  logger?: boolean;
}

export interface ResolvedServiceOptions extends Required<Pick<ServiceOptions, 'maxBatchRows' | 'maxWaitMs' | 'maxQueueRows' | 'bodyLimit' | 'explorer' | 'logger'>> {
  token: string | null;
  cors: boolean | string[];
  imageRoot: string | null;
}

const KNOWN = ['pair', 'concepts', 'corpus', 'imageRoot', 'maxBatchRows', 'maxWaitMs', 'maxQueueRows', 'bodyLimit', 'token', 'cors', 'explorer', 'logger'];

function intIn(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new SaeError('ERR_ARG', `service option ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** The absolute path of an image root that is a directory (ERR_IO naming it otherwise). */
export function checkImageRoot(dir: string, what = 'image root'): string {
  const st = statOrNull(dir);
  if (!st) throw new SaeError('ERR_IO', `${what} ${dir} does not exist: give the directory the image paths are relative to`);
  if (!st.isDirectory()) throw new SaeError('ERR_IO', `${what} ${dir} is ${fileKind(st)}, not a directory: give the directory the image paths are relative to`);
  return path.resolve(dir);
}

/** Checks the options by name and fills in the defaults (ERR_ARG naming the option). */
export function resolveServiceOptions(o: ServiceOptions): ResolvedServiceOptions {
  if (typeof o !== 'object' || o === null) throw new SaeError('ERR_ARG', 'createService needs options with at least { pair }');
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) throw new SaeError('ERR_ARG', `unknown service option '${k}' (known: ${KNOWN.join(', ')})`);
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length < 8 || /\s/.test(o.token)))
    throw new SaeError('ERR_ARG', 'service option token must be a string of at least 8 characters without spaces');
  if (o.cors !== undefined && typeof o.cors !== 'boolean' && !(Array.isArray(o.cors) && o.cors.length > 0 && o.cors.every((s) => typeof s === 'string' && s.length > 0)))
    throw new SaeError('ERR_ARG', 'service option cors must be a boolean or a non-empty list of origins');
  for (const k of ['explorer', 'logger'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new SaeError('ERR_ARG', `service option ${k} must be a boolean`);
  if (o.imageRoot !== undefined && (typeof o.imageRoot !== 'string' || o.imageRoot.length === 0)) throw new SaeError('ERR_ARG', 'service option imageRoot must be a directory path');
  const maxBatchRows = intIn(o.maxBatchRows, 'maxBatchRows', 1, 1 << 20, SERVE_DEFAULTS.maxBatchRows);
  return {
    maxBatchRows,
    maxWaitMs: intIn(o.maxWaitMs, 'maxWaitMs', 0, 10_000, SERVE_DEFAULTS.maxWaitMs),
    maxQueueRows: intIn(o.maxQueueRows, 'maxQueueRows', 1, 1 << 24, Math.max(SERVE_DEFAULTS.maxQueueRows, maxBatchRows)),
    bodyLimit: intIn(o.bodyLimit, 'bodyLimit', 1024, 1 << 30, SERVE_DEFAULTS.bodyLimit),
    explorer: o.explorer ?? true,
    logger: o.logger ?? false,
    token: o.token ?? null,
    cors: o.cors ?? false,
    imageRoot: o.imageRoot === undefined ? null : checkImageRoot(o.imageRoot),
  };
}

/** Loopback hosts the service may bind without a token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** ERR_ARG unless a non-loopback bind has a token or an explicit insecure opt-in. */
export function checkBindSecurity(host: string, token: string | undefined, insecure: boolean): void {
  if (!isLoopback(host) && !token && !insecure)
    throw new SaeError('ERR_ARG', `binding ${host} exposes the service beyond this machine: give --token <secret> (bearer auth on every route but /healthz) or --insecure`);
}
