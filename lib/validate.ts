/** Shape and dtype checks for values crossing into the native layer (finiteness is checked natively). */
import { SaeError } from './errors.js';
import type { Matrix, SparseCodes } from './types.js';

function isPositiveInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'Array';
  return typeof v;
}

/** Checks that x is a Matrix of float32 data with `cols` columns (when given) and at least one row. */
export function checkMatrix(x: unknown, name: string, cols?: number): asserts x is Matrix {
  if (typeof x !== 'object' || x === null)
    throw new SaeError('ERR_ARG', `${name} must be a Matrix { rows, cols, data: Float32Array }, got ${describe(x)}`);
  const m = x as Partial<Matrix>;
  if (!(m.data instanceof Float32Array))
    throw new SaeError('ERR_DTYPE', `${name}.data must be a Float32Array, got ${describe(m.data)}; convert with Float32Array.from(...)`);
  if (!Number.isInteger(m.rows) || (m.rows as number) < 0 || !isPositiveInt(m.cols))
    throw new SaeError('ERR_SHAPE', `${name} needs integer rows >= 0 and cols >= 1, got rows=${m.rows} cols=${m.cols}`);
  if ((m.rows as number) === 0) throw new SaeError('ERR_SHAPE', `${name} is empty (0 rows): pass at least one row`);
  if (cols !== undefined && m.cols !== cols)
    throw new SaeError('ERR_SHAPE', `${name} has ${m.cols} columns but this SAE expects d = ${cols}`);
  if (m.data.length !== (m.rows as number) * (m.cols as number))
    throw new SaeError(
      'ERR_SHAPE',
      `${name}.data has ${m.data.length} elements but rows x cols = ${m.rows} x ${m.cols} = ${(m.rows as number) * (m.cols as number)}`,
    );
}

export function checkCodes(c: unknown, name: string, m: number): asserts c is SparseCodes {
  if (typeof c !== 'object' || c === null) throw new SaeError('ERR_ARG', `${name} must be SparseCodes, got ${describe(c)}`);
  const s = c as Partial<SparseCodes>;
  if (!(s.indices instanceof Int32Array)) throw new SaeError('ERR_DTYPE', `${name}.indices must be an Int32Array`);
  if (!(s.values instanceof Float32Array)) throw new SaeError('ERR_DTYPE', `${name}.values must be a Float32Array`);
  if (!isPositiveInt(s.rows) || !isPositiveInt(s.k))
    throw new SaeError('ERR_SHAPE', `${name} needs integer rows >= 1 and k >= 1, got rows=${s.rows} k=${s.k}`);
  if (s.indices.length !== s.rows * s.k || s.values.length !== s.rows * s.k)
    throw new SaeError('ERR_SHAPE', `${name}.indices/values must have rows x k = ${s.rows * s.k} elements`);
  if (s.k > m) throw new SaeError('ERR_SHAPE', `${name}.k = ${s.k} exceeds the number of latents m = ${m}`);
}

/** Codes of two paired sets (a for mA latents, b for mB), row r of a and of b describing the same sample. */
export function checkPairedCodes(a: SparseCodes, b: SparseCodes, mA: number, mB: number): void {
  checkCodes(a, 'a', mA);
  checkCodes(b, 'b', mB);
  if (a.rows !== b.rows) throw new SaeError('ERR_SHAPE', `a has ${a.rows} rows but b has ${b.rows}: the two code sets must be paired row by row`);
}

export function checkFloatArray(a: unknown, name: string, length: number): asserts a is Float32Array {
  if (!(a instanceof Float32Array)) throw new SaeError('ERR_DTYPE', `${name} must be a Float32Array, got ${describe(a)}`);
  if (a.length !== length) throw new SaeError('ERR_SHAPE', `${name} must have ${length} elements, got ${a.length}`);
}

/** ERR_ARG unless `opts` is an options object whose every key is in `known` (undefined passes when `optional`). */
export function checkOptionKeys(opts: unknown, known: readonly string[], fn: string, optional = false): void {
  if (optional && opts === undefined) return;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new SaeError('ERR_ARG', `${fn} options must be an object, got ${describe(opts)}`);
  for (const key of Object.keys(opts)) if (!known.includes(key)) throw new SaeError('ERR_ARG', `${fn}: unknown option '${key}' (known: ${known.join(', ')})`);
}
