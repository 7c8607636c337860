/**
 * AlignedPair files: the round trip, the checksums of format 2, format 1 without them, and every malformed
 * alignment.json / alignment.safetensors a user could hand it (typed errors, never a half-built pair).
 */
import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, CorrelationAccumulator, Normalizer, TopKSAE, serializeSafetensors } from '../../lib/index.js';
import { sealJson } from '../../lib/io/json-seal.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

const [d, m, k, n] = [6, 10, 2, 400];

function trainedPair(): AlignedPair {
  const rng = new Rng(8);
  using image = TopKSAE.create({ d, m, k, seed: 1, device: 'cpu' });
  using text = TopKSAE.create({ d, m, k, seed: 2, device: 'cpu' });
  const x = { rows: n, cols: d, data: rng.normals(n * d) };
  const y = { rows: n, cols: d, data: x.data.map((v) => v + 0.1 * rng.normal()) };
  using acc = new CorrelationAccumulator(m, m, { device: 'cpu' });
  acc.add(image.encode(x), text.encode(y));
  return AlignedPair.fromCorrelation(image, text, acc.result(), { normalizer: new Normalizer('l2') });
}

describe('AlignedPair: save, load and validation', () => {
  const { dir, cleanup } = tempDir();
  const pair = trainedPair();
  const good = path.join(dir, 'pair');
  before(async () => {
    await pair.save(good);
  });
  after(() => {
    pair.dispose();
    cleanup();
  });

  /** A copy of the saved pair with one file replaced (by bytes, or by a function of the old bytes/JSON). */
  let copies = 0;
  function variant(file: string, edit: (old: Buffer) => Uint8Array | string, meta?: (j: Record<string, unknown>) => unknown): string {
    const out = path.join(dir, `v${copies++}`);
    for (const f of ['alignment.json', 'alignment.safetensors', 'image/cfg.json', 'image/sae_weights.safetensors', 'text/cfg.json', 'text/sae_weights.safetensors']) {
      const src = readFileSync(path.join(good, f));
      const dst = path.join(out, f);
      mkdirSync(path.dirname(dst), { recursive: true });
      writeFileSync(dst, f === file ? edit(src) : src);
    }
    if (meta) {
      // An edit resealed (as a writer that knows the format would), so that the field checks behind the seal are reached.
      const mf = path.join(out, 'alignment.json');
      const { checksum: _seal, ...body } = JSON.parse(readFileSync(mf, 'utf8')) as Record<string, unknown>;
      const edited = meta(body);
      const sealable = typeof edited === 'object' && edited !== null && !Array.isArray(edited) && (edited as Record<string, unknown>).format_version !== 1;
      writeFileSync(mf, sealable ? sealJson(edited as Record<string, unknown>) : JSON.stringify(edited));
    }
    return out;
  }
  const noChecksums = (j: Record<string, unknown>) => ({ ...j, format_version: 1, checksums: undefined });

  it('round-trips (format 2 with checksums) and encodes both sides into one index space', async () => {
    const meta = JSON.parse(readFileSync(path.join(good, 'alignment.json'), 'utf8'));
    expect(meta.format_version).to.equal(2);
    expect(Object.keys(meta.checksums).sort()).to.deep.equal(['alignment.safetensors', 'image/cfg.json', 'image/sae_weights.safetensors', 'text/cfg.json', 'text/sae_weights.safetensors']);
    using back = await AlignedPair.load(good);
    expect(back.perm).to.deep.equal(pair.perm);
    expect(back.stats.matchedCorrelation).to.deep.equal(pair.stats.matchedCorrelation);
    expect(back.text.getWeights().W_dec.data).to.deep.equal(pair.text.getWeights().W_dec.data);
    const x = { rows: 3, cols: d, data: new Rng(2).normals(3 * d) };
    expect(back.encode('text', x)).to.deep.equal(pair.encode('text', x));
  });

  it('a changed byte in any file of a format-2 pair is ERR_FORMAT naming the file', async () => {
    for (const f of ['alignment.safetensors', 'image/sae_weights.safetensors', 'text/cfg.json']) {
      const v = variant(f, (b) => {
        const c = Buffer.from(b);
        c[c.length - 2] ^= 0x10;
        return c;
      });
      await expectSaeRejection(AlignedPair.load(v), 'ERR_FORMAT', new RegExp(`${f.replace('/', '.')}.*checksum`));
    }
    await expectSaeRejection(AlignedPair.load(variant('', (b) => b, (j) => ({ ...j, checksums: { ...(j.checksums as object), 'text/cfg.json': 'sha256:00' } }))), 'ERR_FORMAT', /malformed checksum/);
    await expectSaeRejection(AlignedPair.load(variant('', (b) => b, (j) => ({ ...j, checksums: {} }))), 'ERR_FORMAT', /lists checksums/);
    // alignment.json itself: its normalization decides the codes, so an edit that is not resealed is refused.
    const meta = path.join(variant('', (b) => b), 'alignment.json');
    writeFileSync(meta, readFileSync(meta, 'utf8').replace('"l2"', '"none"'));
    await expectSaeRejection(AlignedPair.load(path.dirname(meta)), 'ERR_FORMAT', /alignment\.json is corrupt or was edited/);
    const unsealed = path.join(variant('', (b) => b), 'alignment.json');
    const { checksum: _c, ...body } = JSON.parse(readFileSync(unsealed, 'utf8')) as Record<string, unknown>;
    writeFileSync(unsealed, JSON.stringify(body));
    await expectSaeRejection(AlignedPair.load(path.dirname(unsealed)), 'ERR_FORMAT', /no checksum/);
  });

  it('format 1 (no checksums) still loads', async () => {
    using back = await AlignedPair.load(variant('', (b) => b, noChecksums));
    expect(back.perm).to.deep.equal(pair.perm);
  });

  it('alignment.json that is null, not JSON, an array, or has bad fields is ERR_FORMAT', async () => {
    for (const [text, why] of [['null', /JSON object, got null/], ['[1]', /an array/], ['{', /not JSON/], ['"pair"', /got string/]] as const)
      await expectSaeRejection(AlignedPair.load(variant('alignment.json', () => text)), 'ERR_FORMAT', why);
    const bad: [(j: Record<string, unknown>) => unknown, RegExp][] = [
      [(j) => ({ ...j, format_version: '1' }), /format_version "1"/],
      [(j) => ({ ...j, format_version: 3 }), /format_version 3/],
      [(j) => ({ ...j, n: -1 }), /n = -1/],
      [(j) => ({ ...j, n: 2.5 }), /n = 2.5/],
      [(j) => ({ ...j, normalization: null }), /normalization/],
      [(j) => ({ ...j, normalization: { kind: 'cosine' } }), /kind "cosine"/],
      [(j) => ({ ...j, normalization: { kind: 'center+l2', mean: { image: [1, 2] } } }), /image and text means/],
      [(j) => ({ ...j, normalization: { kind: 'l2', mean: { audio: [1] } } }), /'image' or 'text'/],
      [(j) => ({ ...j, normalization: { kind: 'l2', mean: { image: ['x'] } } }), /finite numbers/],
    ];
    for (const [edit, why] of bad) await expectSaeRejection(AlignedPair.load(variant('', (b) => b, edit)), 'ERR_FORMAT', why);
  });

  it('alignment.safetensors: a permutation that is not a bijection, masks and stats of the wrong length or range are ERR_FORMAT', async () => {
    const tensors = (over: Record<string, { dtype: 'I32' | 'F32'; shape: number[]; data: Int32Array | Float32Array }>) =>
      serializeSafetensors({
        perm: { dtype: 'I32', shape: [m], data: pair.perm },
        alive_image: { dtype: 'I32', shape: [m], data: Int32Array.from(pair.stats.aliveImage) },
        alive_text: { dtype: 'I32', shape: [m], data: Int32Array.from(pair.stats.aliveText) },
        matched_correlation: { dtype: 'F32', shape: [m], data: pair.stats.matchedCorrelation },
        ...over,
      });
    const dup = Int32Array.from(pair.perm);
    dup[1] = dup[0];
    const alive = Int32Array.from({ length: m }, () => 1);
    const cases: [Record<string, { dtype: 'I32' | 'F32'; shape: number[]; data: Int32Array | Float32Array }>, RegExp][] = [
      [{ perm: { dtype: 'I32', shape: [m], data: dup } }, /not a bijection/],
      [{ perm: { dtype: 'I32', shape: [m], data: Int32Array.from(pair.perm, (v) => (v === 0 ? m : v)) } }, /not a bijection/],
      [{ perm: { dtype: 'F32', shape: [m], data: Float32Array.from(pair.perm) } }, /1-D I32/],
      [{ alive_image: { dtype: 'I32', shape: [m - 1], data: new Int32Array(m - 1) } }, /has 9 entries/],
      [{ alive_text: { dtype: 'I32', shape: [m], data: Int32Array.from({ length: m }, () => 2) } }, /only 0 and 1/],
      [{ alive_image: { dtype: 'I32', shape: [m], data: alive }, alive_text: { dtype: 'I32', shape: [m], data: alive }, matched_correlation: { dtype: 'F32', shape: [m], data: new Float32Array(m).fill(1e30) } }, /not a correlation/],
      [{ alive_image: { dtype: 'I32', shape: [m], data: alive }, alive_text: { dtype: 'I32', shape: [m], data: alive }, matched_correlation: { dtype: 'F32', shape: [m], data: new Float32Array(m).fill(NaN) } }, /not a correlation/],
      [{ alive_image: { dtype: 'I32', shape: [m], data: new Int32Array(m) }, matched_correlation: { dtype: 'F32', shape: [m], data: new Float32Array(m).fill(0.5) } }, /dead/],
    ];
    for (const [over, why] of cases) await expectSaeRejection(AlignedPair.load(variant('alignment.safetensors', () => tensors(over), noChecksums)), 'ERR_FORMAT', why);
    const short = serializeSafetensors({
      perm: { dtype: 'I32', shape: [m - 1], data: Int32Array.from({ length: m - 1 }, (_, i) => i) },
      alive_image: { dtype: 'I32', shape: [m - 1], data: new Int32Array(m - 1) },
      alive_text: { dtype: 'I32', shape: [m - 1], data: new Int32Array(m - 1) },
      matched_correlation: { dtype: 'F32', shape: [m - 1], data: new Float32Array(m - 1) },
    });
    await expectSaeRejection(AlignedPair.load(variant('alignment.safetensors', () => short, noChecksums)), 'ERR_FORMAT', /9 entries but the SAEs have 10/);
  });

  it('load(null), load(""), a missing directory and a missing file are typed errors', async () => {
    await expectSaeRejection(AlignedPair.load(null as never), 'ERR_ARG', /directory/);
    await expectSaeRejection(AlignedPair.load('' as never), 'ERR_ARG');
    await expectSaeRejection(AlignedPair.load(path.join(dir, 'nope')), 'ERR_IO', /aligned pair/);
    await expectSaeRejection(AlignedPair.load(path.join(good, 'image')), 'ERR_IO', /alignment.json/);
  });

  it('fromCorrelation checks its arguments', () => {
    using acc = new CorrelationAccumulator(m, m, { device: 'cpu' });
    const r = acc.result();
    expectSaeError(() => AlignedPair.fromCorrelation(pair.image, pair.text, r, null as never), 'ERR_ARG', /options must be an object/);
    expectSaeError(() => AlignedPair.fromCorrelation(pair.image, pair.text, r, { normalizer: 'l2' as never }), 'ERR_ARG', /Normalizer/);
    expectSaeError(() => AlignedPair.fromCorrelation(pair.image, {} as never, r), 'ERR_ARG', /TopKSAE/);
  });

  it('encode refuses modalities other than image and text (no silent fallback to the text SAE)', () => {
    const x = { rows: 2, cols: d, data: new Float32Array(2 * d).fill(0.3) };
    expectSaeError(() => pair.encode('audio' as never, x), 'ERR_ARG', /'image' or 'text', got 'audio'/);
    expectSaeError(() => pair.encode(undefined as never, x, { normalized: true }), 'ERR_ARG', /'image' or 'text'/);
    expectSaeError(() => new Normalizer('l2').apply('Text' as never, x.data, 2, d), 'ERR_ARG', /got 'Text'/);
  });
});
