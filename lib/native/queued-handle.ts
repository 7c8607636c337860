/**
 * Owns a native handle for a JS object: async calls on it run one after another, sync calls while any are
 * queued throw ERR_BUSY (so they cannot overtake them), and dispose() frees the handle once the queue drains.
 * A queued task may itself use the sync methods (e.g. a save that reads the weights when its turn comes):
 * calls made from inside the running task's async context are its own and are allowed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import { SaeError } from '../errors.js';

/** The task whose turn it is, as seen from the code it runs (across its awaits). */
const currentTask = new AsyncLocalStorage<object>();

export class QueuedHandle<H extends { dispose(): void }> {
  /** null once dispose() was called (the native handle itself is freed when the queue has drained). */
  #h: H | null;
  readonly #raw: H;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #running: object | null = null;
  readonly #what: string;

  /** `what` names the owner in error messages, e.g. "this SAE". */
  constructor(handle: H, what: string) {
    this.#h = handle;
    this.#raw = handle;
    this.#what = what;
  }

  get disposed(): boolean {
    return this.#h === null;
  }

  #live(): H {
    if (!this.#h) throw new SaeError('ERR_DISPOSED', `${this.#what} was disposed; create or load a new one`);
    return this.#h;
  }

  /**
   * The handle for a sync call: ERR_DISPOSED after dispose(), ERR_BUSY while async calls are queued, unless the
   * call comes from the queued task that is running now.
   */
  sync(): H {
    if (this.#running !== null && currentTask.getStore() === this.#running) return this.#raw;  // the running task's own call
    const h = this.#live();
    if (this.#pending > 0)
      throw new SaeError('ERR_BUSY', `async operations on ${this.#what} are still queued or running; await them before calling a sync method`);
    return h;
  }

  /** Runs fn after the async calls already queued; rejects with ERR_DISPOSED after dispose(). */
  enqueue<T>(fn: (h: H) => Promise<T>): Promise<T> {
    let h: H;
    try {
      h = this.#live();
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pending++;
    const task = {};
    const run = this.#queue
      .then(() => {
        this.#running = task;
        return currentTask.run(task, () => fn(h));
      })
      .finally(() => {
        if (this.#running === task) this.#running = null;
        this.#pending--;
      });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every queued call has settled. */
  async idle(): Promise<void> {
    await this.#queue;
  }

  /** Idempotent; frees the handle now, or after the queued calls (which still run) when some are pending. */
  dispose(): void {
    const h = this.#h;
    if (!h) return;
    this.#h = null;
    if (this.#pending > 0) void this.#queue.finally(() => h.dispose());
    else h.dispose();
  }
}
