/** The corpus flags `cmsae concepts` and `cmsae serve` share, and the corpus spec they give (lib/concepts/corpus.ts). */
import type { Command } from 'commander';

import type { CorpusSpec } from '../concepts/corpus.js';
import { SaeError } from '../errors.js';

export interface CorpusFlags {
  toy?: string;
  image?: string;
  text?: string;
  captions?: string;
  imageOfText?: string;
  imageRefs?: string;
  labels?: string[];
}

/** Adds --toy, --image, --text, --captions, --image-of-text, --image-refs and --labels to a command. */
export function addCorpusOptions(cmd: Command): Command {
  return cmd
    .option('--toy <dir>', 'corpus: a cmsae toy dataset directory (its eval split)')
    .option('--image <file>', 'corpus image embeddings (.npy / .safetensors)')
    .option('--text <file>', 'corpus text embeddings, one row per caption')
    .option('--captions <file>', 'captions: .txt lines, .jsonl ("caption"/"text"), COCO captions JSON or eval_labels.json')
    .option('--image-of-text <file>', 'JSON array (or eval_labels.json / COCO captions) giving the image row of each caption (default: row r pairs with row r)')
    .option('--image-refs <file>', 'image paths relative to --image-root, or URLs: .txt lines or a JSON array, one per image row')
    .option('--labels <files...>', 'label files (eval_labels.json, COCO instances) for the images');
}

/** The corpus the flags name, or null when they name none. ERR_ARG for --toy with files, or files without the three needed. */
export function corpusSpecOf(f: CorpusFlags): CorpusSpec | null {
  const files = { image: f.image, text: f.text, captions: f.captions, imageOfText: f.imageOfText, imageRefs: f.imageRefs, labels: f.labels };
  const given = Object.entries(files).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (f.toy !== undefined) {
    if (given.length) throw new SaeError('ERR_ARG', `--toy takes no corpus files (got --${given.map((k) => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', --')})`);
    return { toy: f.toy };
  }
  if (!given.length) return null;
  if (!(f.image && f.text && f.captions)) throw new SaeError('ERR_ARG', 'a corpus needs --image, --text and --captions (or --toy <dir>)');
  return Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)) as CorpusSpec;
}
