/**
 * Automatic concept labels: the most distinctive words of a latent's top captions against the whole caption corpus,
 * by the weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
 * Words", eq. 22): with y_w the word's count in the top captions (n their total), Y_w and N the corpus's, and the
 * prior a_w = a0 * Y_w / N,
 *   delta_w = log((y_w + a_w) / (n + a0 - y_w - a_w)) - log((Y_w + a_w) / (N + a0 - Y_w - a_w)),
 *   z_w = delta_w / sqrt(1 / (y_w + a_w) + 1 / (Y_w + a_w)).
 * Words are counted (every occurrence in a top caption counts once; activations do not weight them), lower-cased
 * runs of letters and digits, English stop words removed. Ties by word, so the label is deterministic. A label word
 * that always stands in the same phrase of the top captions ("traffic light") is shown as that phrase.
 */

export const STOP_WORDS: ReadonlySet<string> = new Set(
  ('a an the and or but nor of to in on at by for with without from into onto over under above below up down out off ' +
    'is are was were be been being am do does did doing have has had having it its it\'s this that these those there here ' +
    'i me my we our you your he him his she her they them their what which who whom whose when where why how ' +
    'all any both each few more most other some such no not only own same so than too very can will just should now ' +
    'as if then once again further while about against between through during before after s t').split(/\s+/),
);

/** Prior mass a0 of the informative Dirichlet prior (in words). */
export const LABEL_PRIOR_WORDS = 100;
/** Words kept per concept, and at most how many of them make the label. */
export const LABEL_WORDS_KEPT = 8;
export const LABEL_MAX_WORDS = 3;
/** Words past the first join the label only when their z-score is at least this (two-sided 5%). */
export const LABEL_MIN_Z = 1.96;

/** The words of a caption that count for labels. */
export function labelTokens(caption: string): string[] {
  return (caption.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu) ?? []).filter((w) => !STOP_WORDS.has(w));
}

/** Word counts of the whole caption corpus, computed once per index. */
export class CaptionVocabulary {
  readonly counts = new Map<string, number>();
  readonly total: number;
  readonly tokens: string[][];

  constructor(captions: readonly string[]) {
    let total = 0;
    this.tokens = captions.map((c) => {
      const ws = labelTokens(c);
      for (const w of ws) this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
      total += ws.length;
      return ws;
    });
    this.total = total;
  }

  /** The distinctive words of the captions at `rows` (repeats count again), best first; z > 0 only. */
  distinctive(rows: Iterable<number>, keep = LABEL_WORDS_KEPT): { word: string; z: number }[] {
    const y = new Map<string, number>();
    let n = 0;
    for (const r of rows) {
      if (r < 0) continue;
      for (const w of this.tokens[r]) y.set(w, (y.get(w) ?? 0) + 1);
      n += this.tokens[r].length;
    }
    const a0 = LABEL_PRIOR_WORDS, N = this.total;
    const out: { word: string; z: number }[] = [];
    for (const [w, yw] of y) {
      const Yw = this.counts.get(w)!;
      const aw = (a0 * Yw) / N;
      const delta = Math.log((yw + aw) / (n + a0 - yw - aw)) - Math.log((Yw + aw) / (N + a0 - Yw - aw));
      const z = delta / Math.sqrt(1 / (yw + aw) + 1 / (Yw + aw));
      if (z > 0) out.push({ word: w, z });
    }
    out.sort((p, q) => q.z - p.z || (p.word < q.word ? -1 : p.word > q.word ? 1 : 0));
    return out.slice(0, keep);
  }

  /**
   * A distinctive word grown into the phrase it always stands in within the captions at `rows`: while every
   * occurrence has the same left (or right) neighbour and that neighbour is itself distinctive (z >= LABEL_MIN_Z:
   * "photo" in "a photo of a dog" is not), the neighbour joins
   * ("light" -> "traffic light", "bat" -> "baseball bat"); at most LABEL_MAX_WORDS words.
   */
  phrase(rows: Iterable<number>, word: string, distinctive: ReadonlySet<string>): string[] {
    const spots: [string[], number][] = [];
    for (const r of rows) {
      if (r < 0) continue;
      const ts = this.tokens[r];
      for (let p = 0; p < ts.length; p++) if (ts[p] === word) spots.push([ts, p]);
    }
    const out = [word];
    let lo = 0, hi = 0; // the phrase spans offsets [lo, hi] around each spot
    const neighbour = (off: number): string | null => {
      let w: string | null = null;
      for (const [ts, p] of spots) {
        const t = ts[p + off];
        if (t === undefined || (w !== null && t !== w)) return null;
        w = t;
      }
      return w !== null && distinctive.has(w) && !out.includes(w) ? w : null;
    };
    while (spots.length && out.length < LABEL_MAX_WORDS) {
      const left = neighbour(lo - 1);
      if (left !== null) {
        out.unshift(left);
        lo--;
        continue;
      }
      const right = neighbour(hi + 1);
      if (right === null) break;
      out.push(right);
      hi++;
    }
    return out;
  }

  /** The label of the captions at `rows` with distinctive `words` (see labelOf). */
  label(rows: ArrayLike<number>, words: readonly { word: string; z: number }[]): string {
    const strong = new Set(words.filter((w) => w.z >= LABEL_MIN_Z).map((w) => w.word));
    return labelOf(words, (w) => this.phrase(Array.from(rows), w, strong));
  }
}

/**
 * The label made of a concept's distinctive words: the first, and up to two more with z >= LABEL_MIN_Z, each grown
 * into its phrase (`phraseOf`, default: the word alone) and joined by ' / '; a word already inside a phrase is not
 * repeated.
 */
export function labelOf(words: readonly { word: string; z: number }[], phraseOf: (word: string) => string[] = (w) => [w]): string {
  const used = new Set<string>();
  const terms: string[] = [];
  for (let i = 0; i < words.length && terms.length < LABEL_MAX_WORDS; i++) {
    const w = words[i];
    if (used.has(w.word) || (terms.length > 0 && w.z < LABEL_MIN_Z)) continue;
    const ph = phraseOf(w.word);
    for (const x of ph) used.add(x);
    terms.push(ph.join(' '));
  }
  return terms.join(' / ');
}
