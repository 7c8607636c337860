/** The currencies every layer shares. */
import { SaeError } from './errors.js';

/** Row-major float32 matrix with no strides. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/**
 * Top-K codes: for row r, slots s in [0, k) hold latent `indices[r*k+s]` with activation `values[r*k+s]`.
 * Slots are ordered best first; a value of 0 marks an empty slot (fewer than k positive pre-activations).
 */
export interface SparseCodes {
  rows: number;
  k: number;
  indices: Int32Array;
  values: Float32Array;
}

/** A Matrix of `rows` x `cols` (zeros, or `data`, which must hold exactly rows * cols float32 values). */
export function matrix(rows: number, cols: number, data?: Float32Array): Matrix {
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SaeError('ERR_SHAPE', `matrix: ${name} must be an integer >= 0, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  if (data !== undefined) {
    if (!(data instanceof Float32Array)) throw new SaeError('ERR_DTYPE', 'matrix: data must be a Float32Array');
    if (data.length !== rows * cols) throw new SaeError('ERR_SHAPE', `matrix: data has ${data.length} values but ${rows} x ${cols} = ${rows * cols}`);
    return { rows, cols, data };
  }
  if (rows * cols > 2 ** 31) throw new SaeError('ERR_NOMEM', `matrix: ${rows} x ${cols} float32 values do not fit in one typed array`);
  return { rows, cols, data: new Float32Array(rows * cols) };
}
