/** Typed errors with stable codes. Every error this library throws on bad input is a SaeError. */

export type SaeErrorCode =
  | 'ERR_ADDON_MISSING'
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_NONFINITE'
  | 'ERR_ARG'
  | 'ERR_RANGE'
  | 'ERR_FORMAT'
  | 'ERR_IO'
  | 'ERR_DISPOSED'
  | 'ERR_BUSY'
  | 'ERR_STATE'
  | 'ERR_DEGENERATE_BATCH'
  | 'ERR_NOMEM'
  | 'ERR_INFEASIBLE'
  | 'ERR_CUDA_UNAVAILABLE'
  /** A requested instruction-set path (for example the AMX-BF16 encode) that this CPU or SIMD level lacks. */
  | 'ERR_UNSUPPORTED'
  | 'ERR_ABORTED'
  /** A training step would have produced non-finite parameters; the model is left as it was before the step. */
  | 'ERR_DIVERGED'
  | 'ERR_INTERNAL';

export class SaeError extends Error {
  readonly code: SaeErrorCode;
  constructor(code: SaeErrorCode | string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SaeError';
    this.code = code as SaeErrorCode;
  }
}

export function isSaeError(e: unknown, code?: SaeErrorCode): e is SaeError {
  return e instanceof SaeError && (code === undefined || e.code === code);
}
