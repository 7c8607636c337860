/**
 * EleutherAI sparsify checkpoints: one directory per hookpoint with cfg.json (SparseCoderConfig + d_in)
 * and sae.safetensors (encoder.weight [m, d], encoder.bias [m], W_dec [m, d], b_dec [d]).
 * Forward (SparseCoder.encode/decode): pre = ReLU((x - b_dec) encoder.weight^T + encoder.bias), top-k,
 * x_hat = sum_j z_j W_dec[j] + b_dec -- ours exactly, with W_enc = encoder.weight^T.
 * The loader follows SparseCoder.load_from_disk: m = num_latents, or d_in * expansion_factor when it is 0;
 * every parameter takes the dtype of the first tensor (in key order); missing config fields take the
 * SparseCoderConfig defaults, except k and d_in, which every sparsify version writes.
 */
import path from 'node:path';

import { SaeError } from '../../errors.js';
import type { SaeWeights } from '../../sae/types.js';
import { readRegularFile } from '../files.js';
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../safetensors.js';
import { boolField, extraTensors, floatTensor, positiveInt, precisionOfDtype, tensorIn, type ForeignModel, type Json, type Precision } from './common.js';

export const SPARSIFY_WEIGHTS_FILE = 'sae.safetensors';

/** Every field a sparsify cfg.json has held (2024-06 to today). */
const KNOWN = new Set(['d_in', 'activation', 'expansion_factor', 'normalize_decoder', 'num_latents', 'k', 'multi_topk', 'skip_connection', 'transcode', 'signed']);

/** True for a cfg.json in sparsify's layout (no SAELens d_sae, a sparsify sizing field). */
export function isSparsifyConfig(cfg: Json): boolean {
  return !('d_sae' in cfg) && !('cmsae' in cfg) && ('num_latents' in cfg || 'expansion_factor' in cfg);
}

interface SparsifyConfig {
  d: number;
  m: number;
  k: number;
  notes: string[];
}

export function parseSparsifyConfig(cfg: Json, file: string): SparsifyConfig {
  const bad = (why: string): never => {
    throw new SaeError('ERR_FORMAT', `${file}: ${why}`);
  };
  const unknown = Object.keys(cfg).filter((key) => !KNOWN.has(key));
  if (unknown.length) bad(`unknown sparsify field(s) ${unknown.map((u) => `'${u}'`).join(', ')}: they may change the forward pass, so the checkpoint is refused`);
  if (cfg.d_in === undefined) bad('d_in is missing (sparsify writes it next to the SparseCoderConfig fields)');
  const d = positiveInt(cfg.d_in, 'd_in', file);
  const activation = cfg.activation ?? 'topk';
  if (activation !== 'topk')
    bad(`activation ${JSON.stringify(activation)} is not supported (only 'topk'; 'groupmax' takes the max of each of k latent groups)`);
  if (boolField(cfg, 'signed', false, file)) bad('signed is true: a signed SAE (top-k by |pre| without ReLU) is not supported');
  if (boolField(cfg, 'transcode', false, file)) bad('transcode is true: a transcoder predicts another activation than its input; crossmodal-sae runs autoencoders only');
  if (boolField(cfg, 'skip_connection', false, file)) bad('skip_connection is true: the W_skip term (x W_skip^T added to the output) is not supported');
  boolField(cfg, 'normalize_decoder', true, file); // training only
  boolField(cfg, 'multi_topk', false, file); // training loss only
  const notes: string[] = [];
  const nl = cfg.num_latents ?? 0;
  if (typeof nl !== 'number' || !Number.isInteger(nl) || nl < 0) bad(`num_latents must be an integer >= 0, got ${JSON.stringify(nl)}`);
  let m = nl as number;
  if (m === 0) {
    const ef = positiveInt(cfg.expansion_factor ?? 32, 'expansion_factor', file);
    m = d * ef;
    notes.push(`num_latents 0: m = d_in * expansion_factor = ${d} * ${ef}`);
  }
  if (cfg.k === undefined) bad('k is missing');
  const k = positiveInt(cfg.k, 'k', file, m);
  return { d, m, k, notes };
}

/** A sparsify hookpoint directory as our model. */
export async function readSparsify(dir: string, cfg: Json, cfgFile: string): Promise<ForeignModel> {
  const { d, m, k, notes } = parseSparsifyConfig(cfg, cfgFile);
  const wFile = path.join(dir, SPARSIFY_WEIGHTS_FILE);
  const st = parseSafetensors(await readRegularFile(wFile, 'sparsify weights file'), wFile);
  const names = ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec'];
  const extra = extraTensors(st, names);
  if (extra.length) throw new SaeError('ERR_FORMAT', `${wFile}: unexpected tensor(s) ${extra.map((e) => `'${e}'`).join(', ')} (sparsify's strict load refuses them too)`);
  for (const n of names) if (!st.tensors.has(n)) throw new SaeError('ERR_FORMAT', `${wFile} has no tensor '${n}'`);
  const first = [...st.tensors.keys()].sort()[0];
  const precision: Precision = precisionOfDtype(st.tensors.get(first)!.dtype) ?? 'float32';
  if (precision === 'float16' || precision === 'bfloat16') notes.push(`weights in ${precision} (the dtype of '${first}'), arithmetic in float32`);
  const enc = floatTensor(st, 'encoder.weight', [m, d], wFile, precision);
  const W_enc = new Float32Array(d * m);
  for (let j = 0; j < m; j++) for (let c = 0; c < d; c++) W_enc[c * m + j] = enc[j * d + c];
  const weights: SaeWeights = {
    W_enc: { rows: d, cols: m, data: W_enc },
    b_enc: floatTensor(st, 'encoder.bias', [m], wFile, precision),
    W_dec: { rows: m, cols: d, data: floatTensor(st, 'W_dec', [m, d], wFile, precision) },
    b_dec: floatTensor(st, 'b_dec', [d], wFile, precision),
  };
  return { format: 'sparsify', version: 'sparsify (topk)', d, m, k, weights, normalization: 'none', notes };
}

/** The files of a sparsify hookpoint directory for our weights (tensors in `dtype`). */
export function sparsifyFiles(
  w: SaeWeights,
  o: { k: number; normalizeDecoder: boolean; dtype: Exclude<Precision, 'float64'>; metadata: Record<string, string> },
): Record<string, Uint8Array | string> {
  const { rows: d, cols: m } = w.W_enc;
  const encT = new Float32Array(m * d);
  for (let c = 0; c < d; c++) for (let j = 0; j < m; j++) encT[j * d + c] = w.W_enc.data[c * m + j];
  const t = (shape: number[], data: Float32Array): TensorToWrite => tensorIn(o.dtype, shape, data);
  const tensors = { 'encoder.weight': t([m, d], encT), 'encoder.bias': t([m], w.b_enc), W_dec: t([m, d], w.W_dec.data), b_dec: t([d], w.b_dec) };
  const cfg = {
    activation: 'topk',
    expansion_factor: Math.max(1, Math.round(m / d)),
    normalize_decoder: o.normalizeDecoder,
    num_latents: m,
    k: o.k,
    multi_topk: false,
    skip_connection: false,
    transcode: false,
    d_in: d,
  };
  return { [SPARSIFY_WEIGHTS_FILE]: serializeSafetensors(tensors, o.metadata), 'cfg.json': JSON.stringify(cfg) + '\n' };
}
