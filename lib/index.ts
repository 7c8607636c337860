/** crossmodal-sae: modality-specific Top-K SAEs for vision-language embeddings. */
export { SaeError, isSaeError, type SaeErrorCode } from './errors.js';
export { matrix, type Matrix, type SparseCodes } from './types.js';
export { TopKSAE, type SaeWeights, type StepResult, type StepOptions, type TrainingState } from './sae/topk-sae.js';
export { DEFAULTS as SAE_DEFAULTS, resolveOptions, type TopKSAEOptions, type ResolvedOptions, type Activation, type LossKind, type DecayFlags, type DecayGroups } from './sae/options.js';
export { info, setThreads, getThreads, setSimdLevel, type Info } from './info.js';
export { parseSafetensors, serializeSafetensors } from './io/safetensors.js';
export { CorrelationAccumulator, type CorrelationResult, type TopCorrelations } from './align/correlation.js';
export { solveAssignment, solveAssignmentAsync, alignLatents, type Assignment, type AssignmentOptions, type CostMatrix } from './align/assignment.js';
export { VERSION } from './version.js';
export { type PairLossKind } from './sae/options.js';
export { EmbeddingFile, writeNpy, npyBytes, type EmbeddingSpec, type EmbeddingDtype } from './io/embeddings.js';
export { PairedEmbeddings, Normalizer, splitRows, epochOrder, scanRows, readBatch, type Normalization, type Modality } from './data/paired.js';
export { AlignedPair, permuteLatents, type AlignmentStats } from './align/aligned-pair.js';
export { Trainer, alignModels, type TrainProgress, type TrainResult, type ValidationRecord } from './train/trainer.js';
export { parseConfig, trainConfigSchema, METHODS, CONFIG_VERSION, type TrainConfig, type TrainConfigInput, type Method } from './train/config.js';
export { lrFactor, type Schedule } from './train/schedule.js';
