/**
 * Malformed safetensors files, one case per header field (length, JSON, metadata, dtype, shape, data_offsets,
 * coverage of the data section): parseSafetensors and the row reader (EmbeddingFile) both refuse each with a
 * typed error and never read header bytes as data; well-formed files in unusual layouts still read.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { EmbeddingFile, parseSafetensors, serializeSafetensors } from '../../lib/index.js';
import { expectSaeError } from '../helpers/expect-error.js';
import { tempDir } from '../helpers/tmp.js';

/** A safetensors file with the given header (any JSON value, or raw text) and data bytes; `len` overrides the length field. */
function craft(header: unknown, data: Uint8Array, opts: { raw?: string; len?: bigint } = {}): Uint8Array {
  const text = opts.raw ?? JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const f32 = (n: number, v = 1.5) => new Uint8Array(new Float32Array(n).fill(v).buffer);
const t = (shape: unknown, data_offsets: unknown, dtype: unknown = 'F32') => ({ dtype, shape, data_offsets });

describe('safetensors parsing: every header field is checked', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  let files = 0;
  /** Both readers on the same bytes: parseSafetensors and EmbeddingFile.open (tensor 'x' when it exists). */
  const both = (bytes: Uint8Array, code: string, why: RegExp, tensor?: string) => {
    expectSaeError(() => parseSafetensors(bytes, 'case.safetensors'), code, why);
    const p = path.join(dir, `c${files++}.safetensors`);
    writeFileSync(p, bytes);
    expectSaeError(() => EmbeddingFile.open(tensor ? { path: p, tensor } : p), code, why);
  };

  it('the length field: shorter than 8 bytes, 0, 1, past the end, 2^63', () => {
    both(new Uint8Array(5), 'ERR_FORMAT', /only 5 bytes/);
    for (const len of [0n, 1n, 1000n, 2n ** 63n]) both(craft({}, new Uint8Array(0), { len }), 'ERR_FORMAT', /header length/);
  });

  it('the header: null, an array, a string, a number, not JSON, not UTF-8', () => {
    for (const [raw, why] of [['null', /got null/], ['[1,2]', /an array/], ['"x"', /got string/], ['42', /got number/], ['{"a":', /not UTF-8 JSON/]] as const)
      both(craft(null, new Uint8Array(0), { raw }), 'ERR_FORMAT', why);
    const notUtf8 = craft(null, new Uint8Array(0), { raw: '{"a":"x"}' });
    notUtf8[8 + 6] = 0xff; // the 'x': a byte that is never valid UTF-8
    both(notUtf8, 'ERR_FORMAT', /not UTF-8 JSON/);
  });

  it('__metadata__ and entries that are not objects', () => {
    both(craft({ __metadata__: 'pt' }, new Uint8Array(0)), 'ERR_FORMAT', /__metadata__ must be an object/);
    both(craft({ __metadata__: { format: 1 } }, new Uint8Array(0)), 'ERR_FORMAT', /__metadata__.format must be a string/);
    both(craft({ x: 1 }, new Uint8Array(0)), 'ERR_FORMAT', /entry 'x' must be an object/);
    both(craft({ x: null }, new Uint8Array(0)), 'ERR_FORMAT', /entry 'x'/);
  });

  it("data_offsets: 5, negative (header bytes as data), fractional, strings, three entries, reversed, past the end", () => {
    const data = f32(8);
    for (const offs of [5, [-8, 24], [0.5, 32.5], ['0', '32'], [0, 16, 32], null])
      both(craft({ x: t([2, 4], offs) }, data), 'ERR_FORMAT', /data_offsets/);
    both(craft({ x: t([2, 4], [32, 0]) }, data), 'ERR_FORMAT', /outside/);
    both(craft({ x: t([2, 4], [8, 40]) }, data), 'ERR_FORMAT', /outside/);
  });

  it('shape: [2.5, 16], ["64", "16"], negative, not an array, a product too large for any file, a byte count that disagrees', () => {
    const data = f32(64);
    for (const shape of [[2.5, 16], ['64', '16'], [-1, 4], '64', null, [4, null]])
      both(craft({ x: t(shape, [0, 256]) }, data), 'ERR_FORMAT', /shape/);
    both(craft({ x: t([2 ** 40, 2 ** 40], [0, 256]) }, data), 'ERR_FORMAT', /too large/);
    both(craft({ x: t([4, 8], [0, 256]) }, data), 'ERR_FORMAT', /has 256 bytes but shape \[4,8\] x F32 needs 128/);
  });

  it('dtype: unknown, not a string; a spec dtype this reader cannot decode', () => {
    const data = f32(4);
    both(craft({ x: t([2, 2], [0, 16], 'F128') }, data), 'ERR_FORMAT', /not a safetensors dtype/);
    both(craft({ x: t([2, 2], [0, 16], 4) }, data), 'ERR_FORMAT', /not a safetensors dtype/);
    const u8 = craft({ x: t([4, 4], [0, 16], 'U8') }, data);
    expectSaeError(() => parseSafetensors(u8, 'u8'), 'ERR_FORMAT', /decodes/);
    const p = path.join(dir, 'u8.safetensors');
    writeFileSync(p, u8);
    expectSaeError(() => EmbeddingFile.open(p), 'ERR_DTYPE', /U8/);
  });

  it('coverage of the data section: overlap, the same bytes twice, a gap, trailing garbage', () => {
    const data = f32(16);
    both(craft({ x: t([2, 4], [0, 32]), y: t([2, 4], [16, 48]) }, f32(12)), 'ERR_FORMAT', /overlaps/, 'x');
    both(craft({ x: t([2, 4], [0, 32]), y: t([2, 4], [0, 32]) }, f32(8)), 'ERR_FORMAT', /overlaps|bytes after/, 'x');
    both(craft({ x: t([2, 4], [0, 32]), y: t([2, 2], [48, 64]) }, data), 'ERR_FORMAT', /gap at bytes 32..48/, 'x');
    both(craft({ x: t([2, 4], [0, 32]) }, data), 'ERR_FORMAT', /32 bytes after the last tensor/);
  });

  it('well-formed files in unusual layouts read correctly: offsets out of header order, empty tensors, no tensors', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([7, 8, 9, 10]);
    const bytes = craft({ b: t([2, 2], [24, 40]), e: t([0, 3], [24, 24]), a: t([3, 2], [0, 24]) }, new Uint8Array([...new Uint8Array(a.buffer), ...new Uint8Array(b.buffer)]));
    const st = parseSafetensors(bytes);
    expect(Array.from(st.tensors.get('a')!.data)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(Array.from(st.tensors.get('b')!.data)).to.deep.equal([7, 8, 9, 10]);
    expect(st.tensors.get('e')!.data.length).to.equal(0);
    const p = path.join(dir, 'order.safetensors');
    writeFileSync(p, bytes);
    using f = EmbeddingFile.open({ path: p, tensor: 'b' });
    const out = new Float32Array(4);
    f.readRange(0, 2, out);
    expect(Array.from(out)).to.deep.equal([7, 8, 9, 10]);
    expect(parseSafetensors(craft({ __metadata__: { format: 'pt' } }, new Uint8Array(0))).tensors.size).to.equal(0);
    // Our own writer's output (8-byte padded header) passes every check.
    const ours = serializeSafetensors({ w: { dtype: 'F32', shape: [3, 2], data: a } }, { note: 'ünïcode' });
    expect(parseSafetensors(ours).metadata.note).to.equal('ünïcode');
  });

  it('the writer refuses what the reader would refuse', () => {
    expectSaeError(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2.5, 2], data: new Float32Array(5) } }), 'ERR_SHAPE');
    expectSaeError(() => serializeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), 'ERR_ARG', /reserved/);
    expectSaeError(() => serializeSafetensors({}, { n: 5 as never }), 'ERR_ARG', /must be a string/);
  });
});
