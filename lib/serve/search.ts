/**
 * Corpus search for the service.
 *  - CodeSearch: cosine of L2-normalized sparse codes, score(q, i) = sum_l q_l z_il / (|q| |z_i|), through an
 *    inverted index (latent -> the rows it fires on); a query touches only the rows sharing a latent with it.
 *  - denseTop: cosine of dense unit vectors, score(q, i) = <q, x_i> (both L2-normalized).
 * Both return the best n by score, ties by ascending row; rows scoring <= 0 are not returned.
 *
 * These are TypeScript loops over corpus-sized data, justified by measurement (node 20 on this shared 2-core VM,
 * random codes, /tmp script in the issue-13 report): CodeSearch over 1M rows x k = 32 (m = 8192) builds in ~0.9 s,
 * once, on the first search; a 32-latent query then touches ~N k^2 / m = 125k postings in ~16 ms (independent of
 * the rest of the corpus); denseTop over 10k x 512 takes ~12 ms. Both serve interactive routes (search, steer),
 * not the batched encode path; a native top-N kernel would pay off only for much larger corpora.
 */
import type { SparseCodes } from '../types.js';

export interface Hit {
  row: number;
  score: number;
}

/** Keeps the best n hits (score desc, row asc) seen so far. */
class Best {
  readonly hits: Hit[] = [];
  constructor(readonly n: number) {}
  offer(row: number, score: number): void {
    const h = this.hits;
    if (!(score > 0)) return;
    if (h.length === this.n) {
      const w = h[h.length - 1];
      if (score < w.score || (score === w.score && row > w.row)) return;
      h.pop();
    }
    let p = h.length;
    while (p > 0 && (h[p - 1].score < score || (h[p - 1].score === score && h[p - 1].row > row))) p--;
    h.splice(p, 0, { row, score });
  }
}

export class CodeSearch {
  readonly rows: number;
  readonly m: number;
  readonly #offsets: Int32Array;
  readonly #items: Int32Array;
  /** value / |z_item| of each posting. */
  readonly #weights: Float64Array;
  readonly #scratch: Float64Array;
  readonly #seen: Uint8Array;

  constructor(codes: SparseCodes, m: number) {
    const { rows, k, indices, values } = codes;
    this.rows = rows;
    this.m = m;
    const inv = new Float64Array(rows);
    const offsets = new Int32Array(m + 1);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let q = r * k; q < (r + 1) * k; q++) {
        const v = values[q];
        if (v === 0) continue;
        s += v * v;
        offsets[indices[q] + 1]++;
      }
      inv[r] = 1 / Math.max(Math.sqrt(s), 1e-12);
    }
    for (let l = 0; l < m; l++) offsets[l + 1] += offsets[l];
    const fill = offsets.slice(0, m);
    this.#items = new Int32Array(offsets[m]);
    this.#weights = new Float64Array(offsets[m]);
    for (let r = 0; r < rows; r++)
      for (let q = r * k; q < (r + 1) * k; q++) {
        const v = values[q];
        if (v === 0) continue;
        const p = fill[indices[q]]++;
        this.#items[p] = r;
        this.#weights[p] = v * inv[r];
      }
    this.#offsets = offsets;
    this.#scratch = new Float64Array(rows);
    this.#seen = new Uint8Array(rows);
  }

  /** The best n rows for one query code (latents in [0, m); repeated latents are summed). */
  top(indices: ArrayLike<number>, values: ArrayLike<number>, n: number): Hit[] {
    const q = new Map<number, number>();
    for (let s = 0; s < indices.length; s++) if (values[s] !== 0) q.set(indices[s], (q.get(indices[s]) ?? 0) + values[s]);
    let ss = 0;
    for (const v of q.values()) ss += v * v;
    const qn = 1 / Math.max(Math.sqrt(ss), 1e-12);
    const score = this.#scratch, seen = this.#seen, touched: number[] = [];
    for (const l of [...q.keys()].sort((a, b) => a - b)) {
      const w = q.get(l)! * qn;
      for (let p = this.#offsets[l]; p < this.#offsets[l + 1]; p++) {
        const r = this.#items[p];
        if (!seen[r]) {
          seen[r] = 1;
          touched.push(r);
        }
        score[r] += w * this.#weights[p];
      }
    }
    const best = new Best(n);
    for (const r of touched) {
      best.offer(r, score[r]);
      score[r] = 0;
      seen[r] = 0;
    }
    return best.hits;
  }
}

/** The best n rows of unit-row matrix x [rows, d] for unit query q (cosine; see the header for the measurement). */
export function denseTop(x: Float32Array, d: number, q: Float32Array, n: number): Hit[] {
  const rows = x.length / d, best = new Best(n);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * d;
    for (let c = 0; c < d; c++) s += x[o + c] * q[c];
    best.offer(r, s);
  }
  return best.hits;
}

/** q / |q| (a copy). */
export function unit(q: Float32Array): Float32Array {
  let s = 0;
  for (const v of q) s += v * v;
  const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
  return q.map((v) => v * inv);
}
