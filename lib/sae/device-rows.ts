/**
 * Embedding rows resident on the CUDA device (e.g. a whole training split), so that training steps gather
 * their batches there instead of copying them from the host every step: `sae.stepRows(rows, idx, ...)`.
 */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import type { NativeDeviceRowsHandle } from '../native/types.js';
import type { Matrix } from '../types.js';
import { checkMatrix } from '../validate.js';

export class DeviceRows implements Disposable {
  readonly rows: number;
  readonly dim: number;
  #h: NativeDeviceRowsHandle | null;
  #inUse = 0;

  /** Allocates rows x dim float32 on the device (ERR_CUDA_UNAVAILABLE without a CUDA device). */
  constructor(rows: number, dim: number) {
    for (const [name, v] of [['rows', rows], ['dim', dim]] as const)
      if (!Number.isInteger(v) || v < 1) throw new SaeError('ERR_ARG', `${name} must be an integer >= 1, got ${String(v)}`);
    this.rows = rows;
    this.dim = dim;
    this.#h = new (native().NativeDeviceRows)(rows, dim);
  }

  /** @internal the native handle (for TopKSAE). */
  get handle(): NativeDeviceRowsHandle {
    if (!this.#h) throw new SaeError('ERR_DISPOSED', 'these DeviceRows were disposed');
    return this.#h;
  }

  /** @internal marks the rows as read by an async step until `done` settles (upload/dispose wait for it). */
  pin<T>(done: Promise<T>): Promise<T> {
    this.#inUse++;
    return done.finally(() => this.#inUse--);
  }

  #idle(what: string): void {
    if (this.#inUse > 0) throw new SaeError('ERR_BUSY', `an async step still reads these DeviceRows; await it before ${what}`);
  }

  /** Copies x ([n, dim]) into rows [r0, r0 + n). */
  upload(r0: number, x: Matrix): void {
    this.#idle('uploading');
    checkMatrix(x, 'x', this.dim);
    if (!Number.isInteger(r0) || r0 < 0 || r0 + x.rows > this.rows) throw new SaeError('ERR_RANGE', `rows [${r0}, ${r0 + x.rows}) are outside the ${this.rows} resident rows`);
    this.handle.upload(r0, x.data, x.rows);
  }

  dispose(): void {
    this.#idle('disposing');
    this.#h?.dispose();
    this.#h = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
