/**
 * Small JSON files with a checksum of their own: `sealJson` writes the object with a `checksum` field holding
 * "sha256:<hex>" of the object's compact JSON without that field; `unsealJson` parses such a file, verifies the
 * checksum when there is one (or demands it), and returns the object without the field. Used for the files of
 * a run and a pair that decide how embeddings are encoded (normalization.json, alignment.json, state.json).
 */

import { SaeError } from '../errors.js';
import { taggedSha256 } from './digest.js';

export const SEAL_FIELD = 'checksum';

const digest = (obj: Record<string, unknown>) => taggedSha256(JSON.stringify(obj));

/** `obj` as pretty-printed JSON text (with a trailing newline) carrying its checksum. */
export function sealJson(obj: Record<string, unknown>): string {
  const { [SEAL_FIELD]: _old, ...body } = obj;
  return JSON.stringify({ ...body, [SEAL_FIELD]: digest(body) }, null, 2) + '\n';
}

/**
 * Parses a sealed JSON object: ERR_FORMAT when it is not a JSON object, when its checksum does not match (a bit
 * flip or an edit), or when `required` (or `required(body)`, for formats where only some versions are sealed) and
 * it has none. Files written before sealing have none and pass unless
 * `required`.
 */
export function unsealJson(text: string, file: string, opts: { required?: boolean | ((body: Record<string, unknown>) => boolean) } = {}): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SaeError('ERR_FORMAT', `${file} is not JSON (truncated or not written by crossmodal-sae)`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SaeError('ERR_FORMAT', `${file} must hold a JSON object, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  const { [SEAL_FIELD]: claimed, ...body } = v as Record<string, unknown>;
  if (claimed === undefined) {
    if (typeof opts.required === 'function' ? opts.required(body) : opts.required) throw new SaeError('ERR_FORMAT', `${file} has no checksum; it was not written by this version of crossmodal-sae, or was edited`);
    return body;
  }
  if (typeof claimed !== 'string' || claimed !== digest(body))
    throw new SaeError('ERR_FORMAT', `${file} is corrupt or was edited: its content does not match the checksum it records; write it again (rerun the step that made it)`);
  return body;
}
