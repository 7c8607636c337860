/** The shape of the native addon's exports (native/binding/). */

export interface NativeStepStats {
  loss: number;
  fvu: number;
  mse: number;
  auxLoss: number;
  pairLoss: number;
  l0: number;
  deadFraction: number;
  gradNorm: number;
  rows: number;
}

export interface NativeStatus {
  codesK: number;
  step: number;
  samplesSeen: number;
  threshold: number;
  thresholdReady: boolean;
  deadFraction: number;
  busy: boolean;
  /** Updates that could not be proven overflow-free in advance and ran checked on a snapshot (slower). */
  checkedUpdates: number;
}

export interface NativeStateScalars {
  step: number;
  samplesSeen: number;
  threshold: number;
  thresholdReady: boolean;
  bDecMeanInitPending: boolean;
}

export interface NativeSaeHandle {
  init(seed: number, bDecMeanInit: boolean): void;
  encode(x: Float32Array, rows: number, indices: Int32Array, values: Float32Array): void;
  encodeAsync(x: Float32Array, rows: number, indices: Int32Array, values: Float32Array): Promise<void>;
  decode(indices: Int32Array, values: Float32Array, rows: number, k: number, out: Float32Array): void;
  step(x: Float32Array, y: Float32Array | null, rows: number, lr: number): NativeStepStats;
  stepAsync(x: Float32Array, y: Float32Array | null, rows: number, lr: number): Promise<NativeStepStats>;
  forwardBackward(x: Float32Array, y: Float32Array | null, rows: number, extraDval: Float32Array | null): NativeStepStats;
  stepRows(x: NativeDeviceRowsHandle, y: NativeDeviceRowsHandle | null, idx: Int32Array, lr: number): NativeStepStats;
  stepRowsAsync(x: NativeDeviceRowsHandle, y: NativeDeviceRowsHandle | null, idx: Int32Array, lr: number): Promise<NativeStepStats>;
  forwardBackwardRows(x: NativeDeviceRowsHandle, y: NativeDeviceRowsHandle | null, idx: Int32Array, extraDval: Float32Array | null): NativeStepStats;
  applyUpdate(lr: number, gradScale: number): void;
  readGradients(W_enc: Float32Array, b_enc: Float32Array, W_dec: Float32Array, b_dec: Float32Array): void;
  readWeights(W_enc: Float32Array, b_enc: Float32Array, W_dec: Float32Array, b_dec: Float32Array): void;
  writeWeights(W_enc: Float32Array, b_enc: Float32Array, W_dec: Float32Array, b_dec: Float32Array): void;
  readState(arrays: Record<string, Float32Array | Float64Array>): NativeStateScalars;
  writeState(arrays: Record<string, Float32Array | Float64Array>, scalars: NativeStateScalars): void;
  lastCodes(): { rows: number; k: number; indices: Int32Array; values: Float32Array };
  status(): NativeStatus;
  setOptions(options: Record<string, unknown>): void;
  dispose(): void;
}

export interface NativeDeviceRowsHandle {
  upload(r0: number, x: Float32Array, n: number): void;
  dispose(): void;
}

export interface NativeBuildInfo {
  flavor: 'cpu' | 'cuda';
  simdDetected: string;
  simd: string;
  kernels: string;
  encodeMode: string;
  encodePath: string;
  encodePaths: string[];
  threads: number;
  cudaCompiled: boolean;
  compiler: string;
}

export interface NativeCudaInfo {
  compiled: boolean;
  available: boolean;
  status?: number;
  deviceCount: number;
  runtimeVersion?: number;
  driverVersion?: number;
  deviceName?: string;
  message: string;
  /** Bytes on device 0 (CUDA builds with a device). */
  freeMemory?: number;
  totalMemory?: number;
  /** CMSAE_EMULATE_CUDA=1: the device interfaces run on the CPU engine (testing without a GPU). */
  emulated?: boolean;
}

export interface NativeCorrStats {
  n: number;
  firesA: Float64Array;
  firesB: Float64Array;
  aliveA: Uint8Array;
  aliveB: Uint8Array;
  meanA: Float64Array;
  meanB: Float64Array;
  stdA: Float64Array;
  stdB: Float64Array;
}

export interface NativeCorrHandle {
  add(aIdx: Int32Array, aVal: Float32Array, kA: number, bIdx: Int32Array, bVal: Float32Array, kB: number, rows: number): void;
  addAsync(aIdx: Int32Array, aVal: Float32Array, kA: number, bIdx: Int32Array, bVal: Float32Array, kB: number, rows: number): Promise<void>;
  merge(other: NativeCorrHandle): void;
  serialize(): Uint8Array;
  stats(minFires: number): NativeCorrStats;
  correlation(minFires: number, out: Float32Array | Float64Array): void;
  top(k: number, minFires: number): { rowIndices: Int32Array; rowValues: Float32Array; colIndices: Int32Array; colValues: Float32Array };
  dispose(): void;
}

export interface NativeCodesInfo {
  mA: number;
  mB: number;
  rows: number;
  nnzA: number;
  nnzB: number;
  bytes: number;
  segments: number;
  tag: string;
}

export interface NativeCodesPlan {
  path: 'dense' | 'large';
  budget: number;
  codes: number;
  layout: number;
  scratch: number;
  dense: number;
  large: number;
  cache: number;
}

export interface NativeCodesAlignment extends NativeCorrStats {
  rowToCol: Int32Array;
  perm?: Int32Array;
  matchedCorrelation: Float32Array;
  objective: number;
  /** Duals of the alive problem by latent (maximize sense: u_i + v_j >= C_ij on alive pairs; 0 where not alive). */
  duals: { u: Float64Array; v: Float64Array };
  plan: NativeCodesPlan;
  largeStats: { rounds: number; warmRounds: number; violations: number; edges: number; rowsScanned: number; cofirePairs: number; rowPasses: number; weakRows: number; cached: boolean };
  seconds: { stats: number; layout: number; solve: number };
}

export interface NativeCodesHandle {
  add(aIdx: Int32Array, aVal: Float32Array, kA: number, bIdx: Int32Array, bVal: Float32Array, kB: number, rows: number): void;
  addAsync(aIdx: Int32Array, aVal: Float32Array, kA: number, bIdx: Int32Array, bVal: Float32Array, kB: number, rows: number): Promise<void>;
  merge(other: NativeCodesHandle): void;
  serialize(): Uint8Array;
  describe(): NativeCodesInfo;
  align(opts: object): NativeCodesAlignment;
  alignAsync(opts: object): Promise<NativeCodesAlignment>;
  correlation(minFires: number, out: Float32Array): void;
  dispose(): void;
}

export interface NativeAssignmentStats {
  /** The candidate and pricing passes ran on the CUDA device. */
  device?: boolean;
  rounds: number;
  violations: number;
  edges: number;
  weakRows: number;
  warmRounds: number;
  fellBack: boolean;
}

export interface NativeAssignment {
  stats: NativeAssignmentStats;
  rowToCol: Int32Array;
  colToRow: Int32Array;
  objective: number;
  u: Float64Array;
  v: Float64Array;
}

export interface NativeBinding {
  NativeSae: new (options: Record<string, unknown>) => NativeSaeHandle;
  NativeDeviceRows: new (rows: number, d: number) => NativeDeviceRowsHandle;
  NativeCorr: { new (mA: number, mB: number, device?: 'cpu' | 'cuda'): NativeCorrHandle; new (bytes: Uint8Array): NativeCorrHandle };
  NativeCodes: { new (mA: number, mB: number, rowStart: number, tag: string): NativeCodesHandle; new (bytes: Uint8Array): NativeCodesHandle };
  /** The assignment solver policy's constants (native/lap/solver_policy.h). */
  assignmentPolicy(): { maxCandidates: number; defaultCandidates: number; sparseMinSide: number };
  solveAssignment(data: Float32Array | Float64Array, rows: number, cols: number, maximize: boolean, algorithm: string, k: number, device?: 'cpu' | 'cuda'): NativeAssignment;
  solveAssignmentAsync(data: Float32Array | Float64Array, rows: number, cols: number, maximize: boolean, algorithm: string, k: number, device?: 'cpu' | 'cuda'): Promise<NativeAssignment>;
  certifyAssignment(
    data: Float32Array | Float64Array, rows: number, cols: number, maximize: boolean,
    rowToCol: Int32Array, colToRow: Int32Array, u: Float64Array, v: Float64Array,
  ): { maxViolation: number; gap: number; objective: number };
  alignLatents(correlation: Float32Array, m: number, aliveA: Uint8Array, aliveB: Uint8Array, signed: boolean, device?: 'cpu' | 'cuda'): Int32Array;
  /** Benchmark helper: best in-place streaming bandwidth (GB/s, 20 bytes per element) over three arrays of n floats. */
  streamFloor(n: number, reps: number): number;
  /** Test hook: the BF16 encoder copy of the certified encode, by the active packer or its plain reference. */
  packBf16(W: Float32Array, b: Float32Array, d: number, m: number, impl: 'reference' | 'active'): {
    Wp: Uint16Array; bias: Float32Array; P: Float32Array; Q: Float32Array; C: Float32Array; finite: Uint8Array;
  };
  pairCodeLoss(kind: string, idx: Int32Array, val: Float32Array, k: number, n: number, m: number, scale: number): { loss: number; dval: Float32Array };
  synthDictionary(d: number, n: number, delta: number, seed: number, maxIters: number): { atoms: Float32Array; steps: number; maxDot: number };
  synthPartner(phi: Float32Array, n: number, d: number, alpha: number, seed: number): Float32Array;
  synthPairedDictionary(
    d: number, nI: number, nS: number, nT: number, alpha: number, delta: number, seed: number, maxIters: number,
  ): { phiImage: Float32Array; phiShared: Float32Array; psiShared: Float32Array; psiText: Float32Array; steps: number; maxAbs: number };
  synthSample(
    phiImage: Float32Array, nI: number, phiShared: Float32Array, nS: number, psiShared: Float32Array, psiText: Float32Array, nT: number,
    d: number, N: number, pActive: number, noise: number, identical: boolean, l2: boolean, seed: number,
  ): { x: Float32Array; y: Float32Array };
  argmaxCosine(W: Float32Array, m: number, G: Float32Array, n: number, d: number): { idx: Int32Array; cos: Float32Array };
  retrievalRanks(
    qIdx: Int32Array, qVal: Float32Array, qRows: number, qK: number, iIdx: Int32Array, iVal: Float32Array, iRows: number, iK: number,
    gtOffsets: Int32Array, gtItems: Int32Array, m: number,
  ): NativeRetrievalRanks;
  retrievalRanksAsync(
    qIdx: Int32Array, qVal: Float32Array, qRows: number, qK: number, iIdx: Int32Array, iVal: Float32Array, iRows: number, iK: number,
    gtOffsets: Int32Array, gtItems: Int32Array, m: number,
  ): Promise<NativeRetrievalRanks>;
  rankingMetrics(queries: Float32Array, qRows: number, items: Float32Array, iRows: number, d: number, relevant: Uint8Array, ks: Int32Array): NativeRankingMetrics;
  rankingMetricsAsync(
    queries: Float32Array, qRows: number, items: Float32Array, iRows: number, d: number, relevant: Uint8Array, ks: Int32Array,
  ): Promise<NativeRankingMetrics>;
  decoderDistanceHistogram(
    imageDec: Float32Array, mImage: number, textDec: Float32Array, mText: number, d: number, corr: Float32Array,
    aliveImage: Uint8Array, aliveText: Uint8Array, corrEdges: Float64Array, distBins: number,
  ): { counts: Float64Array; pairs: Float64Array; sum: Float64Array };
  monosemanticityScores(idx: Int32Array, val: Float32Array, rows: number, k: number, external: Float32Array, d: number, m: number, minFires: number): NativeMonosemanticity;
  monosemanticityScoresAsync(
    idx: Int32Array, val: Float32Array, rows: number, k: number, external: Float32Array, d: number, m: number, minFires: number,
  ): Promise<NativeMonosemanticity>;
  conceptIndexAsync(
    iIdx: Int32Array, iVal: Float32Array, iRows: number, iK: number, tIdx: Int32Array, tVal: Float32Array, tRows: number, tK: number,
    imageOfText: Int32Array | null, m: number, topN: number, partners: number,
  ): Promise<NativeConceptStats>;
  buildInfo(): NativeBuildInfo;
  cudaInfo(): NativeCudaInfo;
  setThreads(n: number): number;
  setSimdLevel(level: string): string;
  setEncodePath(mode: string): string;
  encodeStats(): { certifiedRows: number; fallbackRows: number; candidates: number; auxCandidates: number };
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  /** Bytes V8 counts as external memory: native memory reported by live SAEs and accumulators (and others). */
  reportedExternalMemory(): number;
}

/** monosemanticityScores: per latent, its score (NaN below minFires) and its nonzero slots. */
export interface NativeMonosemanticity {
  scores: Float64Array;
  fires: Float64Array;
}

/** retrievalRanks: pessimistic 0-based rank and tie count per query; m = the number of latents used. */
export interface NativeRetrievalRanks {
  ranks: Int32Array;
  ties: Int32Array;
  m: number;
}

/** rankingMetrics: one entry per query; precisionAt/recallAt are [ks.length, queries] (row j for ks[j]). */
export interface NativeRankingMetrics {
  ap: Float64Array;
  rr: Float64Array;
  ndcg10: Float64Array;
  medianRank: Float64Array;
  precisionAt: Float64Array;
  recallAt: Float64Array;
}

/** conceptIndexAsync (native/eval/concept_index.h): the arrays of lib/concepts/stats.ts's ConceptStats. */
/** Padding: rows/partners of -1 (value 0 / correlation NaN) where a latent has fewer than N (or P) of them. */
export interface NativeConceptStats {
  /** Rows on which each latent is active (a nonzero value), per side [m]. */
  fireImage: Int32Array;
  fireText: Int32Array;
  /** [m, topN]: rows by value descending, ties by ascending row. */
  topImageRows: Int32Array;
  topImageValues: Float32Array;
  topTextRows: Int32Array;
  topTextValues: Float32Array;
  /** corr(image latent i, text latent i) over the pairs; NaN where a side is constant (never fires). */
  matched: Float64Array;
  /** [m, P]: text latents image latent i correlates with most (descending, ties by index). */
  imagePartners: Int32Array;
  imagePartnerCorr: Float64Array;
  /** [m, P]: image latents text latent j correlates with most. */
  textPartners: Int32Array;
  textPartnerCorr: Float64Array;
}
