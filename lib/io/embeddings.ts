/**
 * Embedding files read by row, never whole: `.npy` (float32/float16, C order; Fortran order is loaded and
 * transposed when it fits in a quarter of RAM), `.safetensors` (2-D F32/F16/BF16 tensors, one or two per
 * file) and raw little-endian float32 with an explicit shape. Rows are read with positioned reads into a
 * reused buffer, so training from a file larger than RAM works.
 */
import { closeSync, readSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SaeError } from '../errors.js';
import { openRegularFileSync } from './files.js';
import { halfToFloat, parseSafetensorsHeader, safetensorsHeaderLength } from './safetensors.js';

export type EmbeddingDtype = 'f32' | 'f16' | 'bf16';

/** Where one modality's embeddings live. */
export interface EmbeddingSpec {
  path: string;
  /** safetensors: the tensor's name (needed when the file holds more than one 2-D tensor). */
  tensor?: string;
  /** Raw float32 files: [rows, dim]. */
  shape?: [number, number];
}

const BYTES: Record<EmbeddingDtype, number> = { f32: 4, f16: 2, bf16: 2 };

let halfTable: Float32Array | null = null;
/** float16 bit pattern -> float32 value, for all 65,536 patterns. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
  return halfTable;
}

/** Converts `count` values of `dtype` from bytes to float32. */
function convert(dtype: EmbeddingDtype, src: Buffer, srcOffset: number, count: number, out: Float32Array, outOffset: number): void {
  if (dtype === 'f32') {
    if ((src.byteOffset + srcOffset) % 4 === 0) out.set(new Float32Array(src.buffer, src.byteOffset + srcOffset, count), outOffset);
    else for (let i = 0; i < count; i++) out[outOffset + i] = src.readFloatLE(srcOffset + 4 * i);
    return;
  }
  const u16 = (i: number) => src[srcOffset + 2 * i] | (src[srcOffset + 2 * i + 1] << 8);
  if (dtype === 'f16') {
    const t = halfToFloatTable();
    for (let i = 0; i < count; i++) out[outOffset + i] = t[u16(i)];
    return;
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * outOffset, count);
  for (let i = 0; i < count; i++) bits[i] = u16(i) << 16;
}

/** One modality's embedding matrix on disk, read by row. */
export class EmbeddingFile {
  readonly path: string;
  readonly rows: number;
  readonly dim: number;
  readonly dtype: EmbeddingDtype;
  /** Byte offset of row 0 (C order). */
  readonly #dataOffset: number;
  #fd: number | null;
  /** Fortran-order files: the whole matrix, transposed to C order in memory. */
  readonly #inMemory: Float32Array | null;
  #buf: Buffer = Buffer.alloc(0);

  private constructor(p: string, fd: number, rows: number, dim: number, dtype: EmbeddingDtype, dataOffset: number, inMemory: Float32Array | null) {
    this.path = p;
    this.#fd = fd;
    this.rows = rows;
    this.dim = dim;
    this.dtype = dtype;
    this.#dataOffset = dataOffset;
    this.#inMemory = inMemory;
  }

  /**
   * Opens a file; the format follows the extension (.npy, .safetensors, anything else = raw float32 with
   * `shape`). Every header field is checked for type, range and consistency with the file size (ERR_FORMAT,
   * ERR_DTYPE, ERR_SHAPE); a FIFO, directory or device is ERR_IO at once (never a blocking read).
   */
  static open(spec: EmbeddingSpec | string): EmbeddingFile {
    const s: EmbeddingSpec = typeof spec === 'string' ? { path: spec } : spec;
    if (typeof s !== 'object' || s === null) throw new SaeError('ERR_ARG', 'embedding file: give a path or { path, tensor?, shape? }');
    if (typeof s.path !== 'string' || s.path === '') throw new SaeError('ERR_ARG', 'embedding file: give a path');
    if (s.tensor !== undefined && (typeof s.tensor !== 'string' || s.tensor === '')) throw new SaeError('ERR_ARG', `embedding file ${s.path}: tensor must be a non-empty string`);
    const { fd, size } = openRegularFileSync(s.path, 'embedding file');
    try {
      const ext = path.extname(s.path).toLowerCase();
      const h = ext === '.npy' ? npyHeader(fd, size, s.path) : ext === '.safetensors' ? safetensorsHeader(fd, size, s) : rawHeader(size, s);
      if (h.rows < 1 || h.dim < 1) throw new SaeError('ERR_SHAPE', `${s.path} holds an empty matrix (${h.rows}x${h.dim})`);
      const need = h.dataOffset + h.rows * h.dim * BYTES[h.dtype];
      if (size < need)
        throw new SaeError('ERR_FORMAT', `${s.path} is truncated: its header describes ${h.rows}x${h.dim} ${h.dtype} (${need} bytes) but the file has ${size} bytes`);
      let mem: Float32Array | null = null;
      if (h.fortran) mem = loadFortran(fd, h, s.path);
      return new EmbeddingFile(s.path, fd, h.rows, h.dim, h.dtype, h.dataOffset, mem);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Reads rows [start, start + count) into out ([count, dim] float32). */
  readRange(start: number, count: number, out: Float32Array): void {
    this.#checkOpen();
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count))
      throw new SaeError('ERR_ARG', `readRange needs whole row numbers, got start ${String(start)} and count ${String(count)}`);
    if (!(start >= 0 && count >= 0 && start + count <= this.rows)) throw new SaeError('ERR_RANGE', `rows [${start}, ${start + count}) are outside ${this.path}'s ${this.rows} rows`);
    checkOut(out, count * this.dim);
    if (this.#inMemory) {
      out.set(this.#inMemory.subarray(start * this.dim, (start + count) * this.dim));
      return;
    }
    const rowBytes = this.dim * BYTES[this.dtype];
    const bytes = count * rowBytes;
    const buf = this.#buffer(bytes);
    let done = 0;
    while (done < bytes) {
      const n = readSync(this.#fd!, buf, done, bytes - done, this.#dataOffset + start * rowBytes + done);
      if (n <= 0) throw new SaeError('ERR_FORMAT', `${this.path} ended early while reading rows ${start}..${start + count - 1} (truncated?)`);
      done += n;
    }
    convert(this.dtype, buf, 0, count * this.dim, out, 0);
  }

  /** Reads the given rows (any order, repeats allowed) into out, row r of out = row indices[r] of the file. */
  readRows(indices: ArrayLike<number>, out: Float32Array): void {
    this.#checkOpen();
    if (typeof indices !== 'object' || indices === null || !Number.isSafeInteger(indices.length))
      throw new SaeError('ERR_ARG', 'readRows needs an array of row numbers');
    const n = indices.length;
    checkOut(out, n * this.dim);
    for (let i = 0; i < n; i++) {
      const r = indices[i];
      if (!Number.isSafeInteger(r)) throw new SaeError('ERR_ARG', `row indices must be whole numbers, got ${String(r)} at position ${i}`);
      if (r < 0 || r >= this.rows) throw new SaeError('ERR_RANGE', `row ${r} is outside ${this.path}'s ${this.rows} rows`);
    }
    // Sorted order, with runs of consecutive rows read in one call.
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => indices[a] - indices[b]);
    const tmp = new Float32Array(this.dim * 256);
    let q = 0;
    while (q < n) {
      let run = 1;
      while (q + run < n && run < 256 && indices[order[q + run]] === indices[order[q + run - 1]] + 1) run++;
      const first = indices[order[q]];
      this.readRange(first, run, tmp);
      for (let t = 0; t < run; t++) out.set(tmp.subarray(t * this.dim, (t + 1) * this.dim), order[q + t] * this.dim);
      q += run;
    }
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#fd === null) throw new SaeError('ERR_DISPOSED', `${this.path} was closed`);
  }

  #buffer(bytes: number): Buffer {
    if (this.#buf.length < bytes) this.#buf = Buffer.allocUnsafe(Math.max(bytes, 2 * this.#buf.length));
    return this.#buf;
  }
}

interface Header {
  rows: number;
  dim: number;
  dtype: EmbeddingDtype;
  dataOffset: number;
  fortran: boolean;
}

function checkOut(out: unknown, need: number): void {
  if (!(out instanceof Float32Array)) throw new SaeError('ERR_DTYPE', 'the output must be a Float32Array');
  if (out.length < need) throw new SaeError('ERR_SHAPE', `output holds ${out.length} values, ${need} needed`);
}

/** Exactly `len` bytes at `pos` (fewer only at the end of the file). */
function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const n = readSync(fd, b, done, len - done, pos + done);
    if (n <= 0) break;
    done += n;
  }
  return b.subarray(0, done);
}

/** rows x dim of `dtype` as a byte count, or ERR_FORMAT when it is not exact in float64 (absurd shapes). */
function matrixBytes(rows: number, dim: number, dtype: EmbeddingDtype, p: string): number {
  const bytes = rows * dim * BYTES[dtype];
  if (!Number.isSafeInteger(bytes)) throw new SaeError('ERR_FORMAT', `${p} claims a ${rows} x ${dim} matrix, too large for any file`);
  return bytes;
}

type PyValue = string | boolean | number[];

/**
 * The .npy header dict, a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }:
 * string keys; string, True/False or integer-tuple values; nothing but whitespace after the closing brace.
 */
function parseNpyDict(text: string, bad: (why: string) => never): Map<string, PyValue> {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const expectChar = (c: string) => {
    ws();
    if (text[i] !== c) bad(`the header dict is malformed near character ${i} (expected '${c}')`);
    i++;
  };
  const str = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') bad(`the header dict is malformed near character ${i} (expected a string)`);
    const end = text.indexOf(q, i + 1);
    if (end < 0) bad('the header dict has an unterminated string');
    const v = text.slice(i + 1, end);
    i = end + 1;
    return v;
  };
  const value = (): PyValue => {
    ws();
    if (text.startsWith('True', i)) return (i += 4), true;
    if (text.startsWith('False', i)) return (i += 5), false;
    if (text[i] === "'" || text[i] === '"') return str();
    if (text[i] !== '(') bad(`the header dict has an unsupported value near character ${i}`);
    i++;
    const items: number[] = [];
    for (;;) {
      ws();
      if (text[i] === ')') break;
      const m = /^[0-9]+/.exec(text.slice(i));
      if (!m) bad(`the shape tuple holds something other than whole numbers near character ${i}`);
      items.push(Number(m![0]));
      i += m![0].length;
      ws();
      if (text[i] === ',') i++;
      else if (text[i] !== ')') bad(`the shape tuple is malformed near character ${i}`);
    }
    i++;
    return items;
  };
  const out = new Map<string, PyValue>();
  expectChar('{');
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const key = str();
    if (out.has(key)) bad(`the header dict names '${key}' twice`);
    expectChar(':');
    out.set(key, value());
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') bad(`the header dict is malformed near character ${i}`);
  }
  i++;
  if (text.slice(i).trim() !== '') bad('the header has text after its dict');
  return out;
}

/** .npy header: magic, version, little-endian header length, then a Python dict literal (numpy's format spec). */
function npyHeader(fd: number, size: number, p: string): Header {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${p} is not a valid .npy file: ${why}`);
  };
  const head = readAt(fd, 0, 12);
  if (head.length < 10 || head[0] !== 0x93 || head.toString('latin1', 1, 6) !== 'NUMPY') bad('missing the \\x93NUMPY magic (foreign or truncated file)');
  const major = head[6];
  const lenBytes = major === 1 ? 2 : major === 2 || major === 3 ? 4 : bad(`unsupported format version ${major}.${head[7]}`);
  if (head.length < 8 + lenBytes) bad('truncated header');
  const hlen = lenBytes === 2 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  const dataOffset = 8 + lenBytes + hlen;
  if (dataOffset > size) bad(`the header length ${hlen} runs past the end of the ${size}-byte file (truncated?)`);
  const raw = readAt(fd, 8 + lenBytes, hlen);
  const dict = parseNpyDict(major === 3 ? raw.toString('utf8') : raw.toString('latin1'), bad);
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') bad(`the header must hold exactly descr, fortran_order and shape, it holds ${keys || 'nothing'}`);
  const descr = dict.get('descr');
  if (typeof descr !== 'string') return bad(`descr must be a dtype string, got ${JSON.stringify(descr)}`);
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') return bad(`fortran_order must be True or False, got ${JSON.stringify(fortran)}`);
  const shape = dict.get('shape');
  if (!Array.isArray(shape)) return bad(`shape must be a tuple of whole numbers, got ${JSON.stringify(shape)}`);
  if (shape.length !== 2 || !shape.every((v) => Number.isSafeInteger(v)))
    throw new SaeError('ERR_SHAPE', `${p} holds an array of shape (${shape.join(', ')}); embeddings must be 2-D [rows, dim]`);
  const dtype: EmbeddingDtype | null = descr === '<f4' || descr === '=f4' ? 'f32' : descr === '<f2' || descr === '=f2' ? 'f16' : null;
  if (!dtype)
    throw new SaeError('ERR_DTYPE', `${p} has dtype '${descr}'; supported: little-endian float32 ('<f4') and float16 ('<f2') — convert with x.astype('float32')`);
  const bytes = matrixBytes(shape[0], shape[1], dtype, p);
  if (dataOffset + bytes !== size)
    bad(`its header describes ${shape[0]}x${shape[1]} ${dtype} (${bytes} bytes of data after ${dataOffset} header bytes) but the file has ${size} bytes (${size < dataOffset + bytes ? 'truncated' : 'trailing data'})`);
  return { rows: shape[0], dim: shape[1], dtype, dataOffset, fortran };
}

/** One 2-D tensor of a safetensors file (by name, or the only 2-D tensor); the whole header is validated. */
function safetensorsHeader(fd: number, size: number, s: EmbeddingSpec): Header {
  const hlen = safetensorsHeaderLength(readAt(fd, 0, 8), size, s.path);
  const header = parseSafetensorsHeader(readAt(fd, 8, hlen), size, s.path);
  const names = [...header.entries].filter(([, e]) => e.shape.length === 2).map(([k]) => k);
  const name = s.tensor ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined)
    throw new SaeError('ERR_ARG', `${s.path} holds ${names.length} 2-D tensors (${names.join(', ')}): name one (tensor option / --image-tensor, --text-tensor)`);
  const t = header.entries.get(name);
  if (!t) throw new SaeError('ERR_ARG', `${s.path} has no tensor '${name}' (it has: ${names.join(', ')})`);
  if (t.shape.length !== 2) throw new SaeError('ERR_SHAPE', `tensor '${name}' of ${s.path} has shape [${t.shape}]; embeddings must be 2-D`);
  const dtype: EmbeddingDtype | null = t.dtype === 'F32' ? 'f32' : t.dtype === 'F16' ? 'f16' : t.dtype === 'BF16' ? 'bf16' : null;
  if (!dtype) throw new SaeError('ERR_DTYPE', `tensor '${name}' of ${s.path} has dtype ${t.dtype}; supported: F32, F16, BF16`);
  return { rows: t.shape[0], dim: t.shape[1], dtype, dataOffset: header.dataStart + t.begin, fortran: false };
}

/** Raw little-endian float32 with an explicit [rows, dim]. */
function rawHeader(size: number, s: EmbeddingSpec): Header {
  const shape = s.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((v) => Number.isSafeInteger(v) && v > 0))
    throw new SaeError('ERR_ARG', `${s.path} is not .npy or .safetensors: save it as .npy or .safetensors, or give its shape as [rows, dim] (whole numbers >= 1) to read it as raw float32 (cmsae encode --shape rows,dim; { path, shape } in a dataset.json or a library spec)`);
  const bytes = matrixBytes(shape[0], shape[1], 'f32', s.path);
  if (size !== bytes)
    throw new SaeError('ERR_FORMAT', `${s.path} has ${size} bytes; raw float32 [${shape[0]}, ${shape[1]}] needs ${bytes} (wrong shape, dtype or a truncated file)`);
  return { rows: shape[0], dim: shape[1], dtype: 'f32', dataOffset: 0, fortran: false };
}

/** Fortran-order .npy: the matrix column by column, transposed into C order in memory (if it fits). */
function loadFortran(fd: number, h: Header, p: string): Float32Array {
  const bytes = h.rows * h.dim * 4;
  if (bytes > os.totalmem() / 4)
    throw new SaeError('ERR_NOMEM', `${p} is in Fortran order and too large to transpose in memory (${(bytes / 2 ** 30).toFixed(1)} GiB): save it in C order (np.ascontiguousarray) to stream it`);
  const out = new Float32Array(h.rows * h.dim);
  const col = new Float32Array(h.rows);
  const colBytes = h.rows * BYTES[h.dtype];
  const buf = Buffer.allocUnsafe(colBytes);
  for (let c = 0; c < h.dim; c++) {
    let done = 0;
    while (done < colBytes) {
      const n = readSync(fd, buf, done, colBytes - done, h.dataOffset + c * colBytes + done);
      if (n <= 0) throw new SaeError('ERR_FORMAT', `${p} is truncated`);
      done += n;
    }
    convert(h.dtype, buf, 0, h.rows, col, 0);
    for (let r = 0; r < h.rows; r++) out[r * h.dim + c] = col[r];
  }
  return out;
}

/** The bytes of a C-order little-endian float32 .npy file holding `m` (format version 1). */
export function npyBytes(m: { rows: number; cols: number; data: Float32Array }): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + m.rows * m.cols * 4);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(m.data.buffer, m.data.byteOffset, m.rows * m.cols * 4), 10 + header.length);
  return out;
}

/** Writes a float32 matrix as .npy. */
export async function writeNpy(file: string, m: { rows: number; cols: number; data: Float32Array }): Promise<void> {
  await fsp.writeFile(file, npyBytes(m));
}
