/** safetensors reading and writing: 8-byte LE header length, JSON header, raw little-endian data. */
import { SaeError } from '../errors.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64';

export interface Tensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Decoded data: floating dtypes as Float32Array (F64 as Float64Array), I32 as Int32Array, I64 as Float64Array. */
  data: Float32Array | Float64Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 };

/** float16 bit pattern -> its value. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array): Tensor['data'] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / BYTES[dtype];
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case 'F64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(i * 2, true) << 16, true);
        out[i] = tmp.getFloat32(0, true);
      }
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return out;
    }
    case 'I64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      return out;
    }
  }
}

/** Bytes per element of every dtype the safetensors format defines (only SafetensorsDtype ones are decoded). */
const SPEC_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E4M3FN: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** One entry of a validated safetensors header: its data is bytes [begin, end) after the header. */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in header order. */
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section (8 + header length). */
  dataStart: number;
}

/** Largest header the readers accept (the reference implementation's limit is the same order). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Reads and checks the 8-byte header length of a safetensors file of `fileSize` bytes: it must leave room for
 * the header inside the file (and stay under MAX_HEADER_BYTES).
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, name: string): number {
  const bad = formatError(name);
  if (fileSize < 8 || first8.byteLength < 8) bad(`only ${fileSize} bytes (truncated?)`);
  const len = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (len < 2n || len > BigInt(MAX_HEADER_BYTES) || 8n + len > BigInt(fileSize))
    bad(`header length ${len} does not fit in ${fileSize} bytes (truncated or foreign file)`);
  return Number(len);
}

/**
 * Validates a safetensors header (the JSON bytes after the length) against the file's size: a JSON object whose
 * __metadata__ maps strings to strings and whose other entries are { dtype: a safetensors dtype, shape: array of
 * integers >= 0 whose product is exact, data_offsets: [begin, end] with end - begin = elements x dtype size };
 * the entries must tile the data section exactly (sorted by offset: no overlap, no gap, nothing after the last).
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, name: string): SafetensorsHeader {
  const bad = formatError(name);
  const dataStart = 8 + headerBytes.byteLength;
  const dataLen = fileSize - dataStart;
  if (dataLen < 0) bad('the header runs past the end of the file');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    return bad('the header is not UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    bad(`the header must be a JSON object, got ${header === null ? 'null' : Array.isArray(header) ? 'an array' : typeof header}`);
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [key, info] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) bad('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(info as Record<string, unknown>))
        if (typeof v !== 'string') bad(`__metadata__.${k} must be a string, got ${typeof v}`);
      metadata = info as Record<string, string>;
      continue;
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) bad(`entry '${key}' must be an object { dtype, shape, data_offsets }`);
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t.dtype !== 'string' || !(t.dtype in SPEC_BYTES)) bad(`tensor '${key}' has dtype ${JSON.stringify(t.dtype)}, which is not a safetensors dtype`);
    const dtype = t.dtype as string;
    if (!Array.isArray(t.shape) || !t.shape.every((v) => Number.isSafeInteger(v) && v >= 0))
      bad(`tensor '${key}' has shape ${JSON.stringify(t.shape)}; expected an array of integers >= 0`);
    const shape = t.shape as number[];
    let count = 1;
    for (const v of shape) {
      count *= v;
      if (!Number.isSafeInteger(count * SPEC_BYTES[dtype])) bad(`tensor '${key}' has shape ${JSON.stringify(shape)}, too large for any file`);
    }
    const offs = t.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((v) => Number.isSafeInteger(v) && v >= 0))
      bad(`tensor '${key}' has data_offsets ${JSON.stringify(offs)}; expected [begin, end] with integers >= 0`);
    const [begin, end] = offs as [number, number];
    if (end < begin || end > dataLen) bad(`tensor '${key}' has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data section (truncated?)`);
    if (end - begin !== count * SPEC_BYTES[dtype])
      bad(`tensor '${key}' has ${end - begin} bytes but shape ${JSON.stringify(shape)} x ${dtype} needs ${count * SPEC_BYTES[dtype]}`);
    entries.set(key, { dtype, shape, begin, end });
  }
  // The data section is tiled exactly: sorted by offset, each tensor starts where the previous one ended.
  const sorted = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  for (const [key, e] of sorted) {
    if (e.begin < at) bad(`tensor '${key}' overlaps the data of another tensor (bytes ${e.begin}..${e.end})`);
    if (e.begin > at) bad(`the data section has a gap at bytes ${at}..${e.begin} before tensor '${key}'`);
    at = e.end;
  }
  if (at !== dataLen) bad(`${dataLen - at} bytes after the last tensor (trailing data or a wrong header)`);
  return { entries, metadata, dataStart };
}

function formatError(name: string): (why: string) => never {
  return (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${name} is not a valid safetensors file: ${why}`);
  };
}

/** Parses a safetensors buffer; every structural problem is an ERR_FORMAT naming the file. */
export function parseSafetensors(buf: Uint8Array, name = 'safetensors file'): SafetensorsFile {
  if (!(buf instanceof Uint8Array)) throw new SaeError('ERR_ARG', `parseSafetensors needs the file's bytes (a Uint8Array or Buffer)`);
  const headerLen = safetensorsHeaderLength(buf, buf.byteLength, name);
  const h = parseSafetensorsHeader(buf.subarray(8, 8 + headerLen), buf.byteLength, name);
  const tensors = new Map<string, Tensor>();
  for (const [key, e] of h.entries) {
    if (!(e.dtype in BYTES)) formatError(name)(`tensor '${key}' has dtype ${e.dtype}; this reader decodes ${Object.keys(BYTES).join(', ')}`);
    const dtype = e.dtype as SafetensorsDtype;
    tensors.set(key, { dtype, shape: e.shape, data: decode(dtype, buf.subarray(h.dataStart + e.begin, h.dataStart + e.end)) });
  }
  return { tensors, metadata: h.metadata };
}

export interface TensorToWrite {
  /** F16 / BF16: `data` holds the raw 16-bit patterns (Uint16Array). */
  dtype: 'F32' | 'F64' | 'I32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint16Array;
}

/** Serializes tensors (in the given order) with an 8-byte aligned header. */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new SaeError('ERR_ARG', `safetensors metadata '${k}' must be a string, got ${typeof v}`);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  const parts: { bytes: Uint8Array; offset: number }[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SaeError('ERR_ARG', `'__metadata__' is reserved and cannot name a tensor`);
    if (!Array.isArray(t.shape) || !t.shape.every((v) => Number.isSafeInteger(v) && v >= 0))
      throw new SaeError('ERR_SHAPE', `tensor ${name}: shape ${JSON.stringify(t.shape)} must be an array of integers >= 0`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new SaeError('ERR_SHAPE', `tensor ${name}: shape ${JSON.stringify(t.shape)} does not match ${t.data.length} elements`);
    const width = { F32: 4, F64: 8, I32: 4, F16: 2, BF16: 2 }[t.dtype];
    if (t.data.BYTES_PER_ELEMENT !== width) throw new SaeError('ERR_DTYPE', `tensor ${name}: ${t.dtype} needs ${width}-byte elements`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    parts.push({ bytes, offset });
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  const base = 8 + headerBytes.byteLength;
  for (const p of parts) out.set(p.bytes, base + p.offset);
  return out;
}
