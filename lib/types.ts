/** The currencies every layer shares. */

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

export function matrix(rows: number, cols: number, data?: Float32Array): Matrix {
  return { rows, cols, data: data ?? new Float32Array(rows * cols) };
}
