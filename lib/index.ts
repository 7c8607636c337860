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
