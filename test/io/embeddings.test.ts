import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { EmbeddingFile, Normalizer, PairedEmbeddings, npyBytes, serializeSafetensors } from '../../lib/index.js';
import { readBatch, scanRows, splitRows } from '../../lib/data/paired.js';
import { packageRoot } from '../../lib/native/load.js';
import { expectSaeError } from '../helpers/expect-error.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

/** float32 -> float16 bits (round to nearest even) and bfloat16 bits (truncation after rounding). */
function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (e <= 0) return sign; // tiny values flush to zero in this helper (the test data avoids them)
  const h = sign | (e << 10) | (mant >>> 13);
  return mant & 0x1000 ? h + 1 : h;
}
function halfBytes(data: Float32Array): Uint8Array {
  return new Uint8Array(Uint16Array.from(data, toHalf).buffer);
}
function npyWith(descr: string, shape: number[], payload: Uint8Array, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(payload, 10 + header.length);
  return out;
}

describe('embedding files', () => {
  const rng = new Rng(17);
  const [n, d] = [37, 5];
  const data = Float32Array.from({ length: n * d }, () => Math.fround(rng.normal()));
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const file = (name: string, bytes: Uint8Array) => {
    const p = path.join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const rowsOf = (f: EmbeddingFile, idx: number[]) => {
    const out = new Float32Array(idx.length * f.dim);
    f.readRows(idx, out);
    return out;
  };
  const idx = [36, 0, 5, 6, 7, 5, 20];
  const want = (src: Float32Array) => Float32Array.from(idx.flatMap((r) => Array.from(src.subarray(r * d, (r + 1) * d))));

  it('reads .npy float32 (C order) by row, in any order with repeats', () => {
    using f = EmbeddingFile.open(file('a.npy', npyBytes({ rows: n, cols: d, data })));
    expect([f.rows, f.dim, f.dtype]).to.deep.equal([n, d, 'f32']);
    expect(rowsOf(f, idx)).to.deep.equal(want(data));
    const range = new Float32Array(3 * d);
    f.readRange(34, 3, range);
    expect(range).to.deep.equal(data.subarray(34 * d));
  });

  it('reads .npy float16 and Fortran-order float32', () => {
    const half = Float32Array.from(data, (v) => Math.round(v * 64) / 64); // exactly representable in float16
    using h = EmbeddingFile.open(file('h.npy', npyWith('<f2', [n, d], halfBytes(half))));
    expect(h.dtype).to.equal('f16');
    expect(rowsOf(h, idx)).to.deep.equal(want(half));
    const fortran = new Float32Array(n * d);
    for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) fortran[c * n + r] = data[r * d + c];
    using f = EmbeddingFile.open(file('f.npy', npyWith('<f4', [n, d], new Uint8Array(fortran.buffer), true)));
    expect(rowsOf(f, idx)).to.deep.equal(want(data));
  });

  it('reads named F32 / F16 / BF16 tensors of one safetensors file, and raw float32 with a shape', () => {
    const bf = Float32Array.from(data, (v) => {
      const b = new Float32Array([v]);
      const u = new Uint32Array(b.buffer);
      u[0] &= 0xffff0000;
      return b[0];
    });
    const bfBits = new Uint16Array(bf.length);
    bf.forEach((v, i) => (bfBits[i] = new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16));
    const half = Float32Array.from(data, (v) => Math.round(v * 64) / 64);
    const st = serializeSafetensors({
      image: { dtype: 'F32', shape: [n, d], data },
      text_h: { dtype: 'F16', shape: [n, d], data: Uint16Array.from(half, toHalf) },
      text_b: { dtype: 'BF16', shape: [n, d], data: bfBits },
    });
    const p = file('both.safetensors', st);
    using a = EmbeddingFile.open({ path: p, tensor: 'image' });
    using b = EmbeddingFile.open({ path: p, tensor: 'text_h' });
    using c = EmbeddingFile.open({ path: p, tensor: 'text_b' });
    expect(rowsOf(a, idx)).to.deep.equal(want(data));
    expect(rowsOf(b, idx)).to.deep.equal(want(half));
    expect(rowsOf(c, idx)).to.deep.equal(want(bf));
    expectSaeError(() => EmbeddingFile.open(p), 'ERR_ARG', /3 2-D tensors.*name one/);
    expectSaeError(() => EmbeddingFile.open({ path: p, tensor: 'nope' }), 'ERR_ARG', /no tensor 'nope'/);
    using raw = EmbeddingFile.open({ path: file('r.bin', new Uint8Array(data.buffer)), shape: [n, d] });
    expect(rowsOf(raw, idx)).to.deep.equal(want(data));
  });

  it('gives typed errors for truncated, foreign and unsupported files, and mismatched pairs', () => {
    const good = npyBytes({ rows: n, cols: d, data });
    expectSaeError(() => EmbeddingFile.open(file('t.npy', good.subarray(0, good.length - 7))), 'ERR_FORMAT', /truncated/);
    expectSaeError(() => EmbeddingFile.open(file('x.npy', Buffer.from('PK\x03\x04 not numpy at all'))), 'ERR_FORMAT', /magic/);
    expectSaeError(() => EmbeddingFile.open(file('i.npy', npyWith('<i4', [n, d], new Uint8Array(n * d * 4)))), 'ERR_DTYPE', /float32/);
    expectSaeError(() => EmbeddingFile.open(file('b.npy', npyWith('>f4', [n, d], new Uint8Array(n * d * 4)))), 'ERR_DTYPE');
    expectSaeError(() => EmbeddingFile.open(file('3d.npy', npyWith('<f4', [n, d, 1], new Uint8Array(n * d * 4)))), 'ERR_SHAPE', /2-D/);
    expectSaeError(() => EmbeddingFile.open(file('s.safetensors', Buffer.from('{"a": 1}'))), 'ERR_FORMAT');
    expectSaeError(() => EmbeddingFile.open(file('r2.bin', new Uint8Array(data.buffer))), 'ERR_ARG', /shape/);
    expectSaeError(() => EmbeddingFile.open({ path: file('r3.bin', new Uint8Array(data.buffer)), shape: [n + 1, d] }), 'ERR_FORMAT', /bytes/);
    expectSaeError(() => EmbeddingFile.open(path.join(dir, 'missing.npy')), 'ERR_IO');
    const short = file('short.npy', npyBytes({ rows: n - 1, cols: d, data: data.subarray(0, (n - 1) * d) }));
    expectSaeError(() => PairedEmbeddings.open(file('p.npy', good), short), 'ERR_SHAPE', /same rows/);
  });

  it('.npy: every header field is checked for type, range and consistency with the file size', () => {
    const payload = new Uint8Array(data.buffer);
    /** An .npy file with the given raw dict text (version 1 layout unless `v2`). */
    const npyRaw = (dict: string, body: Uint8Array = payload, opts: { version?: number; len?: number } = {}) => {
      const version = opts.version ?? 1;
      const lenBytes = version === 1 ? 2 : 4;
      const header = dict + ' '.repeat(63 - ((8 + lenBytes + dict.length) % 64)) + '\n';
      const out = new Uint8Array(8 + lenBytes + header.length + body.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
      const dv = new DataView(out.buffer);
      if (lenBytes === 2) dv.setUint16(8, opts.len ?? header.length, true);
      else dv.setUint32(8, opts.len ?? header.length, true);
      out.set(Buffer.from(header, 'latin1'), 8 + lenBytes);
      out.set(body, 8 + lenBytes + header.length);
      return out;
    };
    const dict = (descr: string, fortran: string, shape: string) => `{'descr': ${descr}, 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    const ok = dict("'<f4'", 'False', `(${n}, ${d})`);
    using v2 = EmbeddingFile.open(file('v2.npy', npyRaw(ok, payload, { version: 2 })));
    expect(rowsOf(v2, idx)).to.deep.equal(want(data));
    const cases: [Uint8Array, string, RegExp][] = [
      [npyRaw(dict('5', 'False', `(${n}, ${d})`)), 'ERR_FORMAT', /descr must be a dtype string|unsupported value/],
      [npyRaw(dict("'<f4'", "'no'", `(${n}, ${d})`)), 'ERR_FORMAT', /fortran_order must be True or False/],
      [npyRaw(dict("'<f4'", '1', `(${n}, ${d})`)), 'ERR_FORMAT', /unsupported value/],
      [npyRaw(dict("'<f4'", 'False', `(${n}.5, ${d})`)), 'ERR_FORMAT', /shape tuple/],
      [npyRaw(dict("'<f4'", 'False', `('${n}', '${d}')`)), 'ERR_FORMAT', /whole numbers/],
      [npyRaw(dict("'<f4'", 'False', `(-1, ${d})`)), 'ERR_FORMAT', /whole numbers/],
      [npyRaw(dict("'<f4'", 'False', `[${n}, ${d}]`)), 'ERR_FORMAT', /unsupported value/],
      [npyRaw(dict("'<f4'", 'False', '(1099511627776, 1099511627776)')), 'ERR_FORMAT', /too large/],
      [npyRaw(`{'descr': '<f4', 'shape': (${n}, ${d}), }`), 'ERR_FORMAT', /exactly descr, fortran_order and shape/],
      [npyRaw(`{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), 'extra': 1}`), 'ERR_FORMAT', /unsupported value|exactly/],
      [npyRaw(`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d})}`), 'ERR_FORMAT', /twice/],
      [npyRaw(ok + " {'x': 1}"), 'ERR_FORMAT', /text after its dict/],
      [npyRaw(ok.slice(0, -1)), 'ERR_FORMAT', /malformed|unterminated/],
      [npyRaw(ok, payload, { len: 60000 }), 'ERR_FORMAT', /runs past the end/],
      [npyRaw(ok, payload, { version: 9 }), 'ERR_FORMAT', /unsupported format version 9/],
      [npyRaw(ok, new Uint8Array([...payload, 1, 2, 3, 4])), 'ERR_FORMAT', /trailing data/],
      [npyRaw(ok, payload.subarray(4)), 'ERR_FORMAT', /truncated/],
      [npyRaw(dict("'<f4'", 'False', `(${n}, ${d}, 1)`)), 'ERR_SHAPE', /2-D/],
      [npyRaw(dict("'<f4'", 'False', `(0, ${d})`), new Uint8Array(0)), 'ERR_SHAPE', /empty/],
      [npyRaw(dict("'|u1'", 'False', `(${n}, ${d})`)), 'ERR_DTYPE', /'\|u1'/],
    ];
    cases.forEach(([bytes, code, why], i) => expectSaeError(() => EmbeddingFile.open(file(`bad${i}.npy`, bytes)), code, why));
  });

  it('rows must be whole numbers in range: readRange(0.5, 2) and readRows([1.5]) are refused, not read mid-row', () => {
    using f = EmbeddingFile.open(file('rows.npy', npyBytes({ rows: n, cols: d, data })));
    const out = new Float32Array(4 * d);
    expectSaeError(() => f.readRange(0.5, 2, out), 'ERR_ARG', /whole row numbers/);
    expectSaeError(() => f.readRange(0, 1.5, out), 'ERR_ARG');
    expectSaeError(() => f.readRange(NaN, 1, out), 'ERR_ARG');
    expectSaeError(() => f.readRange(n - 1, 2, out), 'ERR_RANGE');
    expectSaeError(() => f.readRange(0, 2, new Float32Array(3)), 'ERR_SHAPE');
    expectSaeError(() => f.readRange(0, 1, [] as never), 'ERR_DTYPE');
    expectSaeError(() => f.readRows([0, 1.5], out), 'ERR_ARG', /position 1/);
    expectSaeError(() => f.readRows([2, NaN], out), 'ERR_ARG');
    expectSaeError(() => f.readRows([3, -1], out), 'ERR_RANGE', /row -1/);
    expectSaeError(() => f.readRows([n], out), 'ERR_RANGE');
    expectSaeError(() => f.readRows(null as never, out), 'ERR_ARG');
    expectSaeError(() => EmbeddingFile.open({ path: file('r9.bin', new Uint8Array(data.buffer)), shape: [n / 5, d * 5] as never }), 'ERR_ARG', /whole numbers/);
  });

  it('a directory, a device or a FIFO is ERR_IO at once (never a blocking read)', function () {
    expectSaeError(() => EmbeddingFile.open(dir), 'ERR_IO', /directory/);
    expectSaeError(() => EmbeddingFile.open({ path: '/dev/zero', shape: [1, 1] }), 'ERR_IO', /device/);
    const fifo = path.join(dir, 'pipe.npy');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return; // no mkfifo here: the two checks above still ran
    // In a child with a timeout, so that a regression shows as a failure rather than a hung suite.
    const script = `import('./lib/index.ts').then((m) => { try { m.EmbeddingFile.open(${JSON.stringify(fifo)}); console.log('opened'); } catch (e) { console.log(e.code, e.message); } });`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: packageRoot(), encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, 'the open blocked on the FIFO').to.equal(null);
    expect(r.stdout).to.match(/^ERR_IO .*FIFO/);
  });

  it('finds NaN/Inf rows (naming the row), splits by seed, normalizes', () => {
    const bad = Float32Array.from(data);
    bad[13 * d + 2] = NaN;
    using f = EmbeddingFile.open(file('nan.npy', npyBytes({ rows: n, cols: d, data: bad })));
    expectSaeError(() => scanRows(f, Int32Array.from({ length: n }, (_, i) => i)), 'ERR_NONFINITE', /row 13 of .*nan\.npy/);
    const s1 = splitRows(1000, 0.1, 7), s2 = splitRows(1000, 0.1, 7), s3 = splitRows(1000, 0.1, 8);
    expect(s1.val.length).to.equal(100);
    expect(Array.from(s1.val)).to.deep.equal(Array.from(s2.val));
    expect(Array.from(s1.val)).to.not.deep.equal(Array.from(s3.val));
    expect(new Set([...s1.train, ...s1.val]).size).to.equal(1000);
    using pair = PairedEmbeddings.open(file('n1.npy', npyBytes({ rows: n, cols: d, data })), file('n2.npy', npyBytes({ rows: n, cols: d, data })));
    const x = readBatch(pair, 'image', [0, 1], new Normalizer('l2'));
    for (let r = 0; r < 2; r++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += x.data[r * d + c] ** 2;
      expect(s).to.be.closeTo(1, 1e-6);
    }
    const mu = Float32Array.from({ length: d }, (_, c) => data[c]);
    const centred = readBatch(pair, 'text', [0], new Normalizer('center+l2', { text: mu }));
    expect(Array.from(centred.data).every((v) => v === 0)).to.equal(true); // row 0 minus itself
    expectSaeError(() => readBatch(pair, 'text', [0], new Normalizer('center+l2')), 'ERR_STATE');
  });
});
