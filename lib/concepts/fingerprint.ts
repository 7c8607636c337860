/**
 * A fingerprint of an aligned pair's content (permutation, alignment statistics, both SAEs' biases and decoders),
 * recorded in a concept index so that the service refuses an index built from another pair, whether the pair
 * came from a directory or from memory.
 */
import { createHash } from 'node:crypto';

import type { AlignedPair } from '../align/aligned-pair.js';

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** "sha256:<hex>" over the pair's perm, alive masks, matched correlations, n, and each side's b_enc, b_dec and W_dec. */
export function pairFingerprint(pair: AlignedPair): string {
  const h = createHash('sha256');
  h.update(`cmsae-pair-fingerprint-1 n=${pair.stats.n};`);
  for (const a of [pair.perm, pair.stats.aliveImage, pair.stats.aliveText, pair.stats.matchedCorrelation]) h.update(bytes(a));
  for (const side of [pair.image, pair.text]) {
    const w = side.getWeights();
    for (const a of [w.b_enc, w.b_dec, w.W_dec.data]) h.update(bytes(a));
  }
  return `sha256:${h.digest('hex')}`;
}
