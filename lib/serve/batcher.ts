/**
 * Dynamic micro-batching: concurrent requests of one operation are gathered into one native call and split back.
 * A request waits at most maxWaitMs for others to join (0: only those that arrive in the same event-loop tick),
 * a batch holds at most maxBatchRows rows (a larger request runs alone), one batch runs at a time and the next
 * one leaves as soon as it finishes (under load the batches grow to what arrived meanwhile). The queue is bounded:
 * beyond maxQueueRows waiting + running rows a request is refused with ERR_BUSY (503 + Retry-After), never queued.
 */
import { SaeError } from '../errors.js';

export interface BatchLimits {
  maxBatchRows: number;
  maxWaitMs: number;
  maxQueueRows: number;
}

export interface BatchObserver {
  /** One native call of `rows` rows made of `requests` requests. */
  batch(rows: number, requests: number): void;
}

interface Job<I, O> {
  input: I;
  rows: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/** run(inputs) must return one output per input, in order (it may throw: every job of the batch gets the error). */
export type BatchRunner<I, O> = (inputs: I[]) => Promise<O[]> | O[];

export class MicroBatcher<I, O> {
  readonly #run: BatchRunner<I, O>;
  readonly #limits: BatchLimits;
  readonly #observer: BatchObserver | null;
  readonly #what: string;
  #pending: Job<I, O>[] = [];
  #pendingRows = 0;
  #runningRows = 0;
  #running: Promise<void> | null = null;
  /** Cancels the pending wait timer (null when none is set). */
  #timer: (() => void) | null = null;
  #closed = false;

  constructor(what: string, run: BatchRunner<I, O>, limits: BatchLimits, observer: BatchObserver | null = null) {
    this.#what = what;
    this.#run = run;
    this.#limits = limits;
    this.#observer = observer;
  }

  /** Rows waiting or running. */
  get queuedRows(): number {
    return this.#pendingRows + this.#runningRows;
  }

  /** Queues one request of `rows` rows; resolves with its own output. */
  submit(input: I, rows: number): Promise<O> {
    if (this.#closed) return Promise.reject(new SaeError('ERR_BUSY', `the service is shutting down: ${this.#what} takes no new requests`));
    if (rows > this.#limits.maxQueueRows)
      return Promise.reject(new SaeError('ERR_RANGE', `${rows} rows in one request, more than this service queues at once (${this.#limits.maxQueueRows}): split the request`));
    if (this.queuedRows + rows > this.#limits.maxQueueRows)
      return Promise.reject(new SaeError('ERR_BUSY', `${this.#what} queue is full (${this.queuedRows} rows waiting or running, at most ${this.#limits.maxQueueRows}): retry shortly`));
    return new Promise<O>((resolve, reject) => {
      this.#pending.push({ input, rows, resolve, reject });
      this.#pendingRows += rows;
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running) return; // the batch that finishes next takes what is pending
    if (this.#pendingRows >= this.#limits.maxBatchRows) return this.#flushNow();
    if (this.#timer) return;
    const fire = () => {
      this.#timer = null;
      if (!this.#running) this.#dispatch();
    };
    if (this.#limits.maxWaitMs === 0) {
      const h = setImmediate(fire);
      this.#timer = () => clearImmediate(h);
    } else {
      const h = setTimeout(fire, this.#limits.maxWaitMs);
      this.#timer = () => clearTimeout(h);
    }
  }

  #flushNow(): void {
    this.#clearTimer();
    this.#dispatch();
  }

  #clearTimer(): void {
    this.#timer?.();
    this.#timer = null;
  }

  /** Takes up to maxBatchRows rows of pending jobs (at least one job) and runs them as one call. */
  #dispatch(): void {
    if (this.#pending.length === 0) return;
    let n = 0, rows = 0;
    while (n < this.#pending.length && (n === 0 || rows + this.#pending[n].rows <= this.#limits.maxBatchRows)) rows += this.#pending[n++].rows;
    const jobs = this.#pending.splice(0, n);
    this.#pendingRows -= rows;
    this.#runningRows = rows;
    this.#observer?.batch(rows, jobs.length);
    this.#running = (async () => {
      try {
        const out = await this.#run(jobs.map((j) => j.input));
        if (out.length !== jobs.length) throw new SaeError('ERR_INTERNAL', `${this.#what}: a batch of ${jobs.length} requests returned ${out.length} results`);
        jobs.forEach((j, i) => j.resolve(out[i]));
      } catch (e) {
        for (const j of jobs) j.reject(e);
      }
    })().finally(() => {
      this.#running = null;
      this.#runningRows = 0;
      if (this.#pending.length) {
        // What waited during the last call leaves now (it has waited at least that long).
        this.#clearTimer();
        this.#dispatch();
      }
    });
  }

  /** Stops taking requests, runs everything queued now, resolves when the last batch has finished. */
  async drain(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    while (this.#running || this.#pending.length) {
      if (!this.#running) this.#dispatch();
      await this.#running;
    }
  }
}
