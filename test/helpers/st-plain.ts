/**
 * A plain safetensors reader and writer for the interop tests, independent of lib/io/safetensors.ts:
 * the writer lays files out as Python's safetensors.save_file does (tensors ordered by dtype width then
 * name, header keys sorted, no __metadata__ unless given, header padded with spaces to 8 bytes).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export type PlainDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32';

export interface PlainTensor {
  dtype: PlainDtype;
  shape: number[];
  /** Decoded values (F16/BF16/F32 decoded without rounding). */
  values: Float64Array;
}

const WIDTH: Record<PlainDtype, number> = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 };

/** IEEE half bits -> value (the textbook formula). */
export function plainHalf(h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const f = h & 1023;
  if (e === 0) return sign * f * Math.pow(2, -24);
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * Math.pow(2, e - 15);
}

/** bfloat16 bits -> value: the upper half of a float32. */
export function plainBf16(b: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, b << 16);
  return dv.getFloat32(0);
}

/** Bits of a value that is exactly representable in the 16-bit type (tests build weights that are). */
export function exactBits(v: number, dtype: 'F16' | 'BF16'): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v);
  const u = dv.getUint32(0);
  if (dtype === 'BF16') {
    if (u & 0xffff) throw new Error(`${v} is not exactly a bfloat16`);
    return u >>> 16;
  }
  if (v === 0) return (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  if (e < 1 || e > 30 || u & 0x1fff) throw new Error(`${v} is not exactly a normal float16`);
  return ((u >>> 16) & 0x8000) | (e << 10) | ((u >>> 13) & 0x3ff);
}

function encode(dtype: PlainDtype, values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * WIDTH[dtype]);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'F32') dv.setFloat32(i * 4, values[i], true);
    else if (dtype === 'F64') dv.setFloat64(i * 8, values[i], true);
    else if (dtype === 'I32') dv.setInt32(i * 4, values[i], true);
    else dv.setUint16(i * 2, exactBits(values[i], dtype), true);
  }
  return out;
}

/** Writes tensors (values exactly representable in their dtype) as Python's safetensors would. */
export function writePlainSafetensors(file: string, tensors: Record<string, { dtype: PlainDtype; shape: number[]; values: ArrayLike<number> }>, metadata?: Record<string, string>): void {
  const names = Object.keys(tensors).sort((a, b) => WIDTH[tensors[b].dtype] - WIDTH[tensors[a].dtype] || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const n of names) {
    const bytes = encode(tensors[n].dtype, tensors[n].values);
    header[n] = { dtype: tensors[n].dtype, shape: tensors[n].shape, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  const sorted = Object.fromEntries(Object.keys(header).sort().map((k2) => [k2, header[k2]]));
  let json = Buffer.from(JSON.stringify(sorted), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, ...parts]));
}

/** Reads a safetensors file: every header rule checked, 16-bit floats decoded with plainHalf / plainBf16. */
export function readPlainSafetensors(file: string): { tensors: Map<string, PlainTensor>; metadata: Record<string, string> | undefined; order: string[] } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`${file}: header length ${n} exceeds the file`);
  const header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  const data = buf.subarray(8 + n);
  const tensors = new Map<string, PlainTensor>();
  let metadata: Record<string, string> | undefined;
  for (const [name, t] of Object.entries(header as Record<string, { dtype: PlainDtype; shape: number[]; data_offsets: [number, number] }>)) {
    if (name === '__metadata__') {
      metadata = t as unknown as Record<string, string>;
      for (const v of Object.values(metadata)) if (typeof v !== 'string') throw new Error(`${file}: __metadata__ values must be strings (safetensors' rule)`);
      continue;
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    const [b, e] = t.data_offsets;
    if (e - b !== count * WIDTH[t.dtype] || e > data.length) throw new Error(`${file}: tensor ${name} has inconsistent data_offsets`);
    const dv = new DataView(data.buffer, data.byteOffset + b, e - b);
    const values = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      if (t.dtype === 'F32') values[i] = dv.getFloat32(i * 4, true);
      else if (t.dtype === 'F64') values[i] = dv.getFloat64(i * 8, true);
      else if (t.dtype === 'I32') values[i] = dv.getInt32(i * 4, true);
      else if (t.dtype === 'F16') values[i] = plainHalf(dv.getUint16(i * 2, true));
      else if (t.dtype === 'BF16') values[i] = plainBf16(dv.getUint16(i * 2, true));
      else throw new Error(`${file}: dtype ${t.dtype}`);
    }
    tensors.set(name, { dtype: t.dtype, shape: t.shape, values });
  }
  // safe_open(...).keys() lists the tensor names sorted
  return { tensors, metadata, order: [...tensors.keys()].sort() };
}
