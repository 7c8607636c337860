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
const MAX_HEADER = 100 * 1024 * 1024;

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

/** Parses a safetensors buffer; every structural problem is an ERR_FORMAT naming the file. */
export function parseSafetensors(buf: Uint8Array, name = 'safetensors file'): SafetensorsFile {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${name} is not a valid safetensors file: ${why}`);
  };
  if (buf.byteLength < 8) bad(`only ${buf.byteLength} bytes (truncated?)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen < 2 || headerLen > MAX_HEADER || 8 + headerLen > buf.byteLength)
    bad(`header length ${headerLen} does not fit in ${buf.byteLength} bytes (truncated or foreign file)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch {
    return bad('the header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('the header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (typeof info !== 'object' || info === null) bad('__metadata__ is not an object');
      metadata = info as Record<string, string>;
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null) bad(`entry ${key} is not an object`);
    if (typeof t.dtype !== 'string' || !(t.dtype in BYTES)) bad(`tensor ${key} has unsupported dtype ${String(t.dtype)}`);
    const dtype = t.dtype as SafetensorsDtype;
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isInteger(s) && s >= 0)) bad(`tensor ${key} has a bad shape`);
    const shape = t.shape as number[];
    const offs = t.data_offsets as unknown;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) bad(`tensor ${key} has bad data_offsets`);
    const [begin, end] = offs as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen) bad(`tensor ${key} lies outside the file (truncated?)`);
    if (end - begin !== count * BYTES[dtype]) bad(`tensor ${key} has ${end - begin} bytes but shape ${JSON.stringify(shape)} x ${dtype} needs ${count * BYTES[dtype]}`);
    tensors.set(key, { dtype, shape, data: decode(dtype, buf.subarray(dataStart + begin, dataStart + end)) });
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  /** F16 / BF16: `data` holds the raw 16-bit patterns (Uint16Array). */
  dtype: 'F32' | 'F64' | 'I32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint16Array;
}

/** Serializes tensors (in the given order) with an 8-byte aligned header. */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  const parts: { bytes: Uint8Array; offset: number }[] = [];
  for (const [name, t] of Object.entries(tensors)) {
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
