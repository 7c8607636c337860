/**
 * The training run's configuration: one versioned, validated object (zod), saved with the run as
 * config.json. Every convention on which the authors' two training paths differ is an explicit field; the
 * defaults are ours (see docs/training.md for the reference's values).
 */
import { z } from 'zod';

import { SaeError } from '../errors.js';

export const CONFIG_VERSION = 1;

export const METHODS = ['shared', 'shared+iso', 'shared+group', 'separate', 'posthoc'] as const;
export type Method = (typeof METHODS)[number];

const embeddingSpec = z
  .object({
    path: z.string().min(1),
    tensor: z.string().min(1).optional(),
    shape: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    version: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
    method: z.enum(METHODS),
    data: z
      .object({
        image: embeddingSpec,
        text: embeddingSpec,
        /** Separate validation files; otherwise valFraction of the rows, split by seed. */
        valImage: embeddingSpec.optional(),
        valText: embeddingSpec.optional(),
        valFraction: z.number().min(0).max(0.5).default(0.05),
        normalization: z.enum(['l2', 'none', 'center+l2']).default('l2'),
      })
      .strict(),
    sae: z
      .object({
        /** Latents of the shared SAE; the separate methods give each modality m/2 (latentsPerModality 'half') or m. */
        m: z.number().int().positive().default(8192),
        k: z.number().int().positive().default(32),
        latentsPerModality: z.enum(['half', 'full']).default('half'),
        activation: z.enum(['topk', 'batchtopk']).default('topk'),
        loss: z.enum(['fvu', 'mse']).default('fvu'),
        auxCoef: z.number().min(0).default(0),
        normalizeDecoder: z.boolean().default(true),
        projectDecoderGrad: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    train: z
      .object({
        epochs: z.number().int().positive().default(10),
        batchSize: z.number().int().min(2).default(1024),
        lr: z.number().positive().default(5e-4),
        /** 'warmup-cosine': the reference's CC3M LambdaLR (first update at lr 0); 'constant': its synthetic path. */
        schedule: z.enum(['constant', 'warmup-cosine', 'warmup-constant']).default('warmup-cosine'),
        warmupRatio: z.number().min(0).max(1).default(0.05),
        seed: z.number().int().min(0).default(0),
        maxGradNorm: z.number().min(0).default(1),
        weightDecay: z.number().min(0).default(1e-5),
        decayGroups: z.enum(['weights', 'hf', 'all']).default('weights'),
        beta1: z.number().min(0).max(1).default(0.9),
        beta2: z.number().min(0).max(1).default(0.999),
        eps: z.number().positive().default(1e-8),
        /** How the image and text FVUs combine: 'sum' (synthetic path) or 'mean' (CC3M path). */
        fvuReduction: z.enum(['sum', 'mean']).default('mean'),
        /** lambda of shared+iso / shared+group (defaults: PAIR_LOSS_WEIGHT_DEFAULTS, one per pair loss). */
        pairLossWeight: z.number().min(0).optional(),
        /** shared+iso: 'iso' (the authors' masked top-1 cosine) or 'iso-inner' (the paper's inner product). */
        isoVariant: z.enum(['iso', 'iso-inner']).default('iso'),
        dropLast: z.boolean().default(true),
        /** Checkpoint every N steps (0: only at the end and on interruption). */
        checkpointEvery: z.number().int().min(0).default(0),
        /** 'auto' (CUDA when a device exists; CMSAE_DEVICE overrides), 'cpu' or 'cuda'. */
        device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
        /** Encoder GEMM precision on CUDA. */
        precision: z.enum(['tf32', 'bf16', 'fp32']).default('tf32'),
        /**
         * On CUDA, keep the (normalized) training split resident on the device and gather batches there:
         * 'auto' when it takes at most half the free device memory, 'on', or 'off' (copy each batch).
         */
        resident: z.enum(['auto', 'on', 'off']).default('auto'),
      })
      .strict()
      .prefault({}),
    align: z
      .object({
        /** Training pairs used for the correlation (0 = all), in file order like the reference's build_perm. */
        samples: z.number().int().min(0).default(0),
        minFires: z.number().int().min(1).default(1),
        /** Maximize the signed correlation (the reference's real-data path) or its absolute value (synthetic path). */
        signed: z.boolean().default(true),
        /** 'auto': the dense accumulator when its mA x mB co-moments fit memoryBudget, else the large-m path from the codes. */
        path: z.enum(['auto', 'dense', 'large']).optional(),
        /** Bytes the alignment may plan for (default: half of physical memory). */
        memoryBudget: z.number().min(0).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type TrainConfig = z.output<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;

/** The part of a configuration that makes a method's models and steps them: method, sae and train (no data files). */
const modelConfigSchema = trainConfigSchema.pick({ method: true, sae: true, train: true });
export type ModelConfig = Pick<TrainConfig, 'method' | 'sae' | 'train'>;

/**
 * Default lambda of each pair loss. iso and group: the reference's CC3M values. iso-inner (the paper's raw
 * inner product, which the reference never trains): derived, not copied. The masked cosine of 'iso' and the
 * FVU are both invariant to the scale of the inputs; the inner product is not (its gradient with respect to
 * the codes grows with |y| while the FVU's shrinks with 1/|x|), so one lambda cannot serve both. On unit-norm
 * inputs (normalization 'l2', the default) we measured the gradient norm of each loss with respect to the
 * code values at shared SAEs trained on the toy dataset (docs/training.md): |grad iso| / |grad iso-inner| =
 * 1.4-2.5 (1.9 at m 512, k 8), so lambda_inner = 1e-4 x 2 = 2e-4 gives the inner-product term the pull that
 * the iso default has. With normalization 'none' the ratio scales with 1/|x|^2 (measured: 0.02 at |x| = 10):
 * divide lambda by the squared mean input norm. test/eval/pair-loss-scale.test.ts repeats the measurement.
 */
export const PAIR_LOSS_WEIGHT_DEFAULTS = { iso: 1e-4, 'iso-inner': 2e-4, group: 0.05 } as const;

/** The lambda of a run: train.pairLossWeight, else the default of its pair loss (0 for methods without one). */
export function pairLossWeight(cfg: ModelConfig): number {
  if (cfg.train.pairLossWeight !== undefined) return cfg.train.pairLossWeight;
  if (cfg.method === 'shared+iso') return PAIR_LOSS_WEIGHT_DEFAULTS[cfg.train.isoVariant];
  return cfg.method === 'shared+group' ? PAIR_LOSS_WEIGHT_DEFAULTS.group : 0;
}

/** Latents of each SAE of a method: m for the shared SAE; m/2 (rounded down) or m for each modality SAE. */
export function latentsPerSae(cfg: Pick<TrainConfig, 'method' | 'sae'>): number {
  if (cfg.method.startsWith('shared') || cfg.sae.latentsPerModality === 'full') return cfg.sae.m;
  return Math.floor(cfg.sae.m / 2);
}

/**
 * Combinations of valid fields that cannot be trained as asked (each message says what to change). Checked
 * here, before anything runs, instead of being adjusted silently or failing after the data scan.
 */
function impossibleCombinations(cfg: ModelConfig & { data?: TrainConfig['data'] }): string[] {
  const out: string[] = [];
  const { sae, data, train: t, method } = cfg;
  const per = latentsPerSae(cfg);
  if (sae.k > per) {
    if (method.startsWith('shared') || sae.latentsPerModality === 'full')
      out.push(`sae.k: k = ${sae.k} is more than the ${per} latents of the SAE (sae.m = ${sae.m}): lower sae.k to at most ${per} or raise sae.m to at least ${sae.k}`);
    else
      out.push(
        `sae.k: k = ${sae.k} is more than the ${per} latents each modality SAE of method '${method}' gets (sae.m = ${sae.m} halved, sae.latentsPerModality 'half'): ` +
          `lower sae.k to at most ${per}, raise sae.m to at least ${2 * sae.k}, or set sae.latentsPerModality to 'full' (m latents per modality)`,
      );
  }
  if (data && (data.valImage === undefined) !== (data.valText === undefined))
    out.push(`data.${data.valImage ? 'valText' : 'valImage'}: data.${data.valImage ? 'valImage' : 'valText'} is given without it: give both validation files (rows paired like the training files) or neither (then data.valFraction of the training rows validate)`);
  if (t.device === 'cuda' && (sae.activation !== 'topk' || sae.auxCoef > 0))
    out.push(`train.device: the CUDA backend runs sae.activation 'topk' without AuxK (sae.auxCoef 0), got activation '${sae.activation}', auxCoef ${sae.auxCoef}: set train.device to 'cpu' or 'auto', or use those settings`);
  return out;
}

/** Validates a configuration (defaults filled in); problems become one ERR_ARG listing every field. */
export function parseConfig(input: unknown): TrainConfig {
  return parseWith(trainConfigSchema, input);
}

/** parseConfig for the model part alone (method, sae, train): models trained on data that is not in files (lib/synth). */
export function parseModelConfig(input: unknown): ModelConfig {
  return parseWith(modelConfigSchema, input);
}

function parseWith<S extends typeof trainConfigSchema | typeof modelConfigSchema>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  const lines = r.success ? impossibleCombinations(r.data) : r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
  if (!r.success || lines.length) throw new SaeError('ERR_ARG', `invalid training configuration:\n  ${lines.join('\n  ')}`);
  return r.data as z.output<S>;
}
