/**
 * The pair behind the service: encode and decode of either modality through micro-batchers, with every native
 * call on one side run one after another (a sync decode must never meet a queued encodeAsync on the same SAE).
 */
import type { AlignedPair } from '../align/aligned-pair.js';
import type { Modality } from '../data/paired.js';
import { SaeError } from '../errors.js';
import type { SparseCodes } from '../types.js';
import { MicroBatcher, type BatchLimits, type BatchObserver } from './batcher.js';

/**
 * ERR_NONFINITE naming the first NaN/Inf of a request, checked before it joins a batch (a bad row must fail its
 * own request, not the batch). One pass over the request's values, the same work as parsing them.
 */
export function checkFiniteRows(data: Float32Array, cols: number, what: string): void {
  for (let p = 0; p < data.length; p++)
    if (!Number.isFinite(data[p]))
      throw new SaeError('ERR_NONFINITE', `${what} row ${Math.floor(p / cols)}, column ${p % cols} is ${Number.isNaN(data[p]) ? 'NaN (JSON null)' : String(data[p])}: send finite numbers`);
}

/** ERR_RANGE / ERR_NONFINITE for code slots outside [0, m) or with non-finite values (one pass over the slots). */
export function checkCodeSlots(c: SparseCodes, m: number): void {
  for (let p = 0; p < c.indices.length; p++) {
    const j = c.indices[p];
    if (!(j >= 0 && j < m)) throw new SaeError('ERR_RANGE', `indices row ${Math.floor(p / c.k)}, slot ${p % c.k} is latent ${j}, outside [0, m = ${m})`);
    if (!Number.isFinite(c.values[p])) throw new SaeError('ERR_NONFINITE', `values row ${Math.floor(p / c.k)}, slot ${p % c.k} is not a finite number`);
  }
}

export interface EngineObserver {
  batch(op: string, rows: number, requests: number): void;
}

export class PairEngine {
  readonly pair: AlignedPair;
  readonly d: number;
  readonly m: number;
  readonly #limits: BatchLimits;
  readonly #observer: EngineObserver | null;
  readonly #chain: Record<Modality, Promise<unknown>> = { image: Promise.resolve(), text: Promise.resolve() };
  readonly #encoders: Record<Modality, MicroBatcher<Float32Array, SparseCodes>>;
  readonly #decoders = new Map<string, MicroBatcher<SparseCodes, Float32Array>>();
  #decoderNorms: Partial<Record<Modality, Float64Array>> = {};

  constructor(pair: AlignedPair, limits: BatchLimits, observer: EngineObserver | null = null) {
    this.pair = pair;
    this.d = pair.image.d;
    this.m = pair.image.m;
    this.#limits = limits;
    this.#observer = observer;
    this.#encoders = { image: this.#encoder('image'), text: this.#encoder('text') };
  }

  #watch(op: string): BatchObserver | null {
    const o = this.#observer;
    return o ? { batch: (rows, requests) => o.batch(op, rows, requests) } : null;
  }

  /** Runs fn after every native call already queued on that side. */
  #onSide<T>(side: Modality, fn: () => Promise<T> | T): Promise<T> {
    const run = this.#chain[side].then(fn);
    this.#chain[side] = run.catch(() => undefined);
    return run;
  }

  #encoder(side: Modality): MicroBatcher<Float32Array, SparseCodes> {
    const sae = this.pair[side];
    const d = this.d;
    return new MicroBatcher(`encode (${side})`, async (inputs) => {
      let rows = 0;
      for (const x of inputs) rows += x.length / d;
      const data = inputs.length === 1 ? inputs[0] : new Float32Array(rows * d);
      if (inputs.length > 1) {
        let o = 0;
        for (const x of inputs) data.set(x, (o += x.length) - x.length);
      }
      const codes = await this.#onSide(side, () => sae.encodeAsync({ rows, cols: d, data }));
      const k = codes.k, out: SparseCodes[] = [];
      let r0 = 0;
      for (const x of inputs) {
        const n = x.length / d;
        out.push({ rows: n, k, indices: codes.indices.subarray(r0 * k, (r0 + n) * k), values: codes.values.subarray(r0 * k, (r0 + n) * k) });
        r0 += n;
      }
      return out;
    }, this.#limits, this.#watch(`encode_${side}`));
  }

  #decoder(side: Modality, k: number): MicroBatcher<SparseCodes, Float32Array> {
    const key = `${side}:${k}`;
    let b = this.#decoders.get(key);
    if (b) return b;
    const sae = this.pair[side];
    const d = this.d;
    b = new MicroBatcher(`decode (${side})`, async (inputs) => {
      let rows = 0;
      for (const c of inputs) rows += c.rows;
      const one = inputs.length === 1;
      const codes: SparseCodes = one ? inputs[0] : { rows, k, indices: new Int32Array(rows * k), values: new Float32Array(rows * k) };
      if (!one) {
        let o = 0;
        for (const c of inputs) {
          codes.indices.set(c.indices, o);
          codes.values.set(c.values, o);
          o += c.indices.length;
        }
      }
      const x = await this.#onSide(side, () => sae.decode(codes));
      const out: Float32Array[] = [];
      let r0 = 0;
      for (const c of inputs) {
        out.push(x.data.subarray(r0 * d, (r0 + c.rows) * d));
        r0 += c.rows;
      }
      return out;
    }, this.#limits, this.#watch(`decode_${side}`));
    this.#decoders.set(key, b);
    return b;
  }

  /** Codes of `rows` raw embeddings (checked finite, normalized as the pair was trained) in the aligned index space. */
  encode(side: Modality, data: Float32Array, rows: number): Promise<SparseCodes> {
    try {
      if (data.length !== rows * this.d || rows < 1) throw new SaeError('ERR_SHAPE', `expected ${rows} rows of d = ${this.d} values, got ${data.length} values`);
      checkFiniteRows(data, this.d, 'embeddings');
      const x = Float32Array.from(data);
      this.pair.normalizer.apply(side, x, rows, this.d);
      return this.#encoders[side].submit(x, rows);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Embeddings reconstructed from codes by that side's decoder (in the pair's normalized input space). */
  decode(side: Modality, codes: SparseCodes): Promise<Float32Array> {
    try {
      if (codes.rows < 1 || codes.k < 1 || codes.indices.length !== codes.rows * codes.k || codes.values.length !== codes.rows * codes.k)
        throw new SaeError('ERR_SHAPE', 'indices and values must be rows x k arrays of the same shape (k >= 1)');
      checkCodeSlots(codes, this.m);
      return this.#decoder(side, codes.k).submit(codes, codes.rows);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** ||W_dec[i]|| of one side, for every latent (read once, on first use). */
  async decoderNorms(side: Modality): Promise<Float64Array> {
    const have = this.#decoderNorms[side];
    if (have) return have;
    const W = (await this.#onSide(side, () => this.pair[side].getWeights())).W_dec;
    const d = this.d, norms = new Float64Array(this.m);
    // One pass over the decoder (m x d), once per service: the model's size, not the traffic's.
    for (let i = 0; i < this.m; i++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += W.data[i * d + c] ** 2;
      norms[i] = Math.sqrt(s);
    }
    this.#decoderNorms[side] = norms;
    return norms;
  }

  /** Rows waiting or running, per operation (the queue-depth gauge). */
  queueDepth(): Record<string, number> {
    const q: Record<string, number> = { encode_image: this.#encoders.image.queuedRows, encode_text: this.#encoders.text.queuedRows, decode_image: 0, decode_text: 0 };
    for (const [key, b] of this.#decoders) q[`decode_${key.split(':')[0]}`] += b.queuedRows;
    return q;
  }

  /** Stops taking requests and finishes every queued batch. */
  async drain(): Promise<void> {
    await Promise.all([...Object.values(this.#encoders), ...this.#decoders.values()].map((b) => b.drain()));
    await Promise.all(Object.values(this.#chain));
  }
}
