/**
 * The checksums of everything crossmodal-sae saves, in one leaf module (it imports nothing of ours but errors):
 * sha256 in hex, its "sha256:<hex>" form (aligned pairs, sealed JSON), and the self-checksum of a cfg.json,
 * which covers its own text with that digest written as ZERO_DIGEST.
 */
import { createHash } from 'node:crypto';

import { SaeError } from '../errors.js';

export const ZERO_DIGEST = '0'.repeat(64);

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** "sha256:<hex>", the form alignment.json and sealed JSON files record. */
export const taggedSha256 = (data: Uint8Array | string): string => `sha256:${sha256(data)}`;

/** cfg.json text with its self-checksum filled in: `cfg.cmsae.checksums[name]` must hold ZERO_DIGEST. */
export function sealConfigText(text: string): string {
  const marker = `"${ZERO_DIGEST}"`;
  if (text.indexOf(marker) !== text.lastIndexOf(marker) || text.indexOf(marker) < 0) throw new SaeError('ERR_INTERNAL', 'cfg.json checksum placeholder is not unique');
  return text.replace(marker, `"${sha256(text)}"`);
}

/** Checks cfg.json's self-checksum (`claimed`) against its text. */
export function verifyConfigText(text: string, claimed: string, file: string): void {
  const quoted = `"${claimed}"`;
  const at = text.indexOf(quoted);
  if (at < 0 || text.indexOf(quoted, at + 1) >= 0) throw new SaeError('ERR_FORMAT', `${file}: its checksum field cannot be located (corrupt file)`);
  const zeroed = text.slice(0, at) + `"${ZERO_DIGEST}"` + text.slice(at + quoted.length);
  if (sha256(zeroed) !== claimed) throw new SaeError('ERR_FORMAT', `${file} is corrupt: its sha256 does not match the checksum it records (bit flip or edited file)`);
}

export function verifyFileChecksum(bytes: Uint8Array, claimed: string | undefined, file: string, cfgFile: string): void {
  if (claimed === undefined) throw new SaeError('ERR_FORMAT', `${file} is not part of this checkpoint: ${cfgFile} records no checksum for it`);
  if (sha256(bytes) !== claimed) throw new SaeError('ERR_FORMAT', `${file} is corrupt: its sha256 does not match the one recorded in ${cfgFile} (bit flip, truncation or a file from another checkpoint)`);
}
