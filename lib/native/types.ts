/** The shape of the native addon's exports (native/binding/). */

export interface NativeStepStats {
  loss: number;
  fvu: number;
  mse: number;
  auxLoss: number;
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

export interface NativeBuildInfo {
  flavor: 'cpu' | 'cuda';
  simdDetected: string;
  simd: string;
  kernels: string;
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
}

export interface NativeBinding {
  NativeSae: new (options: Record<string, unknown>) => NativeSaeHandle;
  buildInfo(): NativeBuildInfo;
  cudaInfo(): NativeCudaInfo;
  setThreads(n: number): number;
  setSimdLevel(level: string): string;
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
}
