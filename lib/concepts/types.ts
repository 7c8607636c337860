/**
 * The concept index of an aligned pair: for every shared latent index, what it means on each side (fire rates,
 * matched correlation, decoder distance, top-activating images and captions, an automatic label, the partners it
 * correlates with). Built by buildConceptIndex (lib/concepts/build.ts), saved beside the pair as concepts/
 * (index.json + index.safetensors), read by the service and the web explorer.
 */
import type { Matrix } from '../types.js';

/** A corpus to index: embeddings of both modalities, captions, optional image references and labels. */
export interface ConceptCorpus {
  /** Image embeddings [nImages, d] (raw: the pair's normalization is applied when encoding). */
  image: Matrix;
  /** Text embeddings [nTexts, d]. */
  text: Matrix;
  /** Text row -> image row it describes; null pairs row r with row r (nImages === nTexts). */
  imageOfText: Int32Array | null;
  /** One caption per text row. */
  captions: string[];
  /** Per image row: a path relative to the image root, or an http(s) URL; null when there are none. */
  imageRefs: string[] | null;
  /** Optional labels (e.g. the toy scene's objects) per image row. */
  imageLabels: string[][] | null;
}

/** One ranked corpus item: its row and its activation on the latent. */
export interface TopItem {
  row: number;
  value: number;
}

/** One partner latent: the other side's aligned index and the correlation with it on the corpus. */
export interface Partner {
  index: number;
  correlation: number;
}

/** A distinctive word of a concept's top captions: weighted log-odds z-score (Monroe et al. 2008). */
export interface LabelWord {
  word: string;
  z: number;
}

/** Everything the index holds about one aligned latent index i (image latent i, permuted text latent i). */
export interface Concept {
  id: number;
  /** Automatic label: the top label words joined by ' / ' ('' when the latent never fires on the captions). */
  label: string;
  words: LabelWord[];
  alive: { image: boolean; text: boolean };
  /** Fraction of corpus rows in which the latent is active, per side. */
  fireRate: { image: number; text: number };
  /** Correlation of image latent i with text latent i on the pair's training data (the alignment's objective). */
  correlation: number;
  /** The same correlation measured on the corpus (NaN when a side never fires there). */
  corpusCorrelation: number;
  /** 1 - cos(W_dec_image[i], W_dec_text[i]): Figure 2's heterogeneity. */
  decoderDistance: number;
  /** Top-N corpus images / captions by activation (descending, ties by row). */
  topImages: TopItem[];
  topCaptions: TopItem[];
  /** Text latents that image latent i correlates with most, and image latents text latent i correlates with most. */
  imagePartners: Partner[];
  textPartners: Partner[];
}

/** Summary row of a concept (what GET /v1/concepts lists). */
export type ConceptSummary = Pick<Concept, 'id' | 'label' | 'alive' | 'fireRate' | 'correlation' | 'corpusCorrelation' | 'decoderDistance'> & {
  /** z-score of the label's first word (null without label words): below 1.96 the label is weak. */
  labelZ: number | null;
};

export interface ConceptIndexMeta {
  formatVersion: number;
  /** Keys of the inputs the index was built from (pair checksums, corpus digests, options): rebuilt when they change. */
  key: string;
  m: number;
  d: number;
  topN: number;
  partners: number;
  corpus: { images: number; texts: number; hasImageRefs: boolean };
  /** pairFingerprint() of the pair the index was built from (the service refuses an index of another pair). */
  pair: string;
  /** Where the corpus's relative image paths resolve (the build's imageRoot option, absolute), or null. */
  imageRoot: string | null;
  /** Seconds spent encoding the corpus and indexing its codes. */
  seconds: { encode: number; index: number };
}
