/** Options of a Top-K SAE: defaults, validation and the native option object. */
import { SaeError } from '../errors.js';
import { requestedDevice, resolveDevice, type Device } from '../device.js';

export type Activation = 'topk' | 'batchtopk';
export type LossKind = 'fvu' | 'mse';
export type PairLossKind = 'none' | 'iso' | 'iso-inner' | 'group';
export { cudaDeviceAvailable, type Device } from '../device.js';
/**
 * Encoder GEMM precision on CUDA: 'tf32' tensor cores (default), 'bf16' tensor cores (BF16 inputs, FP32
 * accumulation) or 'fp32' (SIMT, the CPU engine's precision). The rest of the step is FP32 on every setting.
 */
export type Precision = 'tf32' | 'bf16' | 'fp32';

/** Which parameters AdamW's decoupled weight decay applies to. */
export interface DecayFlags {
  W_enc: boolean;
  b_enc: boolean;
  W_dec: boolean;
  b_dec: boolean;
}

/**
 * Named decay groups:
 * - `weights` (default): W_enc and W_dec only.
 * - `hf`: the authors' synthetic path (HF Trainer excludes names containing "bias": only encoder.bias is
 *   exempt, so b_dec *is* decayed).
 * - `all`: the authors' CC3M path (torch AdamW over model.parameters(): every parameter).
 */
export type DecayGroups = 'weights' | 'hf' | 'all';

export interface TopKSAEOptions {
  /** Input width. */
  d: number;
  /** Number of latents. */
  m: number;
  /** Active latents per row (Top-K), or the mean active count per row (BatchTopK). */
  k: number;
  /** Seed of the initialization. Same seed and thread count give the same weights. Default 0. */
  seed?: number;
  /** 'topk' (per row, default) or 'batchtopk' (top B*k of the batch while training; threshold at inference). */
  activation?: Activation;
  /** 'fvu' (default; batch fraction of variance unexplained, as the reference) or 'mse' (mean over elements). */
  loss?: LossKind;
  /** Paired (shared-SAE) batches: 'sum' (default, authors' synthetic path) or 'mean' (CC3M path) of the two losses. */
  pairedReduction?: 'sum' | 'mean';
  /** Unit-norm decoder rows after every update. Default true. */
  normalizeDecoder?: boolean;
  /** Remove the gradient component parallel to each decoder row. Default true. */
  projectDecoderGrad?: boolean;
  /** Global gradient-norm clipping (torch formula); 0 disables. Default 1. */
  maxGradNorm?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay. Default 1e-5 (the reference's value). */
  weightDecay?: number;
  /** Decay groups (default 'weights'); `decay` overrides single flags. */
  decayGroups?: DecayGroups;
  decay?: Partial<DecayFlags>;
  /** b_dec initialization: 'zeros' (default, reference) or 'mean' (mean of the first training batch). */
  bDecInit?: 'zeros' | 'mean';
  /** Decoder renormalization epsilon: W_dec[j] /= ||W_dec[j]|| + eps. Default float32 machine epsilon. */
  decoderEps?: number;
  /**
   * Code-level loss between the two halves of a paired batch (`step(x, { pair: y })`), for the shared-SAE
   * baselines: 'iso' (Iso-Energy as the authors' code: masked top-1 cosine of the Top-K codes), 'iso-inner'
   * (the paper's raw inner product), 'group' (group sparsity); 'none' (default). loss += pairLossWeight * L.
   */
  pairLoss?: PairLossKind;
  /** Weight of pairLoss (lambda). Default 0. */
  pairLossWeight?: number;
  /** AuxK coefficient (0 = off, the default). */
  auxCoef?: number;
  /** AuxK k (0 = d/2). */
  kAux?: number;
  /** Samples without firing after which a latent counts as dead (AuxK and deadFraction). Default 1,000,000. */
  deadWindow?: number;
  /** BatchTopK: most latents one row may keep (0 = min(m, 4k)). */
  batchCapacity?: number;
  /** BatchTopK: running threshold theta <- momentum*theta + (1-momentum)*(min kept activation). Default 0.99. */
  thresholdMomentum?: number;
  /**
   * 'auto' (default; CMSAE_DEVICE overrides the default): CUDA when a device exists and the options are ones
   * the CUDA backend runs (activation 'topk', no AuxK), else the CPU engine. 'cuda' without a device:
   * ERR_CUDA_UNAVAILABLE. Not saved with checkpoints: a loaded SAE resolves its device again.
   */
  device?: Device;
  /** Encoder GEMM precision on CUDA (ignored on the CPU). Default 'tf32'. */
  precision?: Precision;
}

export type ResolvedOptions = Required<Omit<TopKSAEOptions, 'decay' | 'decayGroups' | 'device'>> & {
  device: 'cpu' | 'cuda';
  decayGroups: DecayGroups;
  decay: DecayFlags;
};

export const DEFAULTS = {
  seed: 0,
  activation: 'topk' as Activation,
  loss: 'fvu' as LossKind,
  pairedReduction: 'sum' as const,
  normalizeDecoder: true,
  projectDecoderGrad: true,
  maxGradNorm: 1,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 1e-5,
  decayGroups: 'weights' as DecayGroups,
  bDecInit: 'zeros' as const,
  decoderEps: 1.1920929e-7,
  auxCoef: 0,
  pairLoss: 'none' as PairLossKind,
  pairLossWeight: 0,
  kAux: 0,
  deadWindow: 1_000_000,
  batchCapacity: 0,
  thresholdMomentum: 0.99,
  device: 'auto' as Device,
  precision: 'tf32' as Precision,
};

const GROUPS: Record<DecayGroups, DecayFlags> = {
  weights: { W_enc: true, b_enc: false, W_dec: true, b_dec: false },
  hf: { W_enc: true, b_enc: false, W_dec: true, b_dec: true },
  all: { W_enc: true, b_enc: true, W_dec: true, b_dec: true },
};

const KNOWN = new Set([...Object.keys(DEFAULTS), 'd', 'm', 'k', 'decay']);

function int(o: Record<string, unknown>, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new SaeError('ERR_ARG', `option ${key} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

function num(o: Record<string, unknown>, key: string, lo: number, hi: number, loOpen = false): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo))
    throw new SaeError('ERR_ARG', `option ${key} must be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function oneOf<T extends string>(o: Record<string, unknown>, key: string, allowed: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !allowed.includes(v as T))
    throw new SaeError('ERR_ARG', `option ${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(v)}`);
  return v as T;
}

function bool(o: Record<string, unknown>, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw new SaeError('ERR_ARG', `option ${key} must be a boolean, got ${String(v)}`);
  return v;
}

/** Applies defaults and validates every field; throws SaeError ERR_ARG naming the bad option. */
export function resolveOptions(input: TopKSAEOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new SaeError('ERR_ARG', 'options must be an object with d, m and k');
  for (const key of Object.keys(input))
    if (!KNOWN.has(key)) throw new SaeError('ERR_ARG', `unknown option '${key}'`);
  const o: Record<string, unknown> = { ...DEFAULTS };
  for (const [key, v] of Object.entries(input)) if (v !== undefined) o[key] = v;
  const d = int(o, 'd', 1, 1 << 24);
  const m = int(o, 'm', 1, 1 << 28);
  const k = int(o, 'k', 1);
  if (k > m) throw new SaeError('ERR_ARG', `k = ${k} is larger than m = ${m}: choose k <= m`);
  o.device = requestedDevice(input.device);
  const groups = oneOf(o, 'decayGroups', ['weights', 'hf', 'all'] as const);
  const decayIn = (o.decay ?? {}) as Partial<DecayFlags>;
  if (typeof decayIn !== 'object' || decayIn === null) throw new SaeError('ERR_ARG', 'option decay must be an object');
  const decay = { ...GROUPS[groups] };
  for (const [key, v] of Object.entries(decayIn)) {
    if (!(key in decay)) throw new SaeError('ERR_ARG', `decay.${key} is not a parameter (W_enc, b_enc, W_dec, b_dec)`);
    if (typeof v !== 'boolean') throw new SaeError('ERR_ARG', `decay.${key} must be a boolean`);
    decay[key as keyof DecayFlags] = v;
  }
  return {
    d,
    m,
    k,
    seed: int(o, 'seed', 0),
    activation: oneOf(o, 'activation', ['topk', 'batchtopk'] as const),
    loss: oneOf(o, 'loss', ['fvu', 'mse'] as const),
    pairedReduction: oneOf(o, 'pairedReduction', ['sum', 'mean'] as const),
    normalizeDecoder: bool(o, 'normalizeDecoder'),
    projectDecoderGrad: bool(o, 'projectDecoderGrad'),
    maxGradNorm: num(o, 'maxGradNorm', 0, Infinity),
    beta1: num(o, 'beta1', 0, 1),
    beta2: num(o, 'beta2', 0, 1),
    eps: num(o, 'eps', 0, 1, true),
    weightDecay: num(o, 'weightDecay', 0, 1e6),
    decayGroups: groups,
    decay,
    bDecInit: oneOf(o, 'bDecInit', ['zeros', 'mean'] as const),
    decoderEps: num(o, 'decoderEps', 0, 1),
    auxCoef: num(o, 'auxCoef', 0, 1e6),
    pairLoss: oneOf(o, 'pairLoss', ['none', 'iso', 'iso-inner', 'group'] as const),
    pairLossWeight: num(o, 'pairLossWeight', 0, 1e6),
    kAux: int(o, 'kAux', 0, m),
    deadWindow: int(o, 'deadWindow', 1),
    batchCapacity: int(o, 'batchCapacity', 0, m),
    thresholdMomentum: num(o, 'thresholdMomentum', 0, 1),
    device: resolveDevice(oneOf(o, 'device', ['auto', 'cpu', 'cuda'] as const), {
      supported: o.activation === 'topk' && !(Number(o.auxCoef) > 0),
      unsupported: "device 'cuda' runs activation 'topk' without AuxK (auxCoef 0): use device 'cpu' or 'auto' for these options",
    }),
    precision: oneOf(o, 'precision', ['tf32', 'bf16', 'fp32'] as const),
  };
}

/** The object handed to the native constructor / setOptions. */
export function nativeOptions(o: ResolvedOptions): Record<string, unknown> {
  const { seed: _seed, bDecInit: _b, decayGroups: _g, ...rest } = o;
  return rest;
}
