/** Exact linear assignment (rectangular, min or max, forbidden pairs, duals) and latent alignment. */
import { SaeError } from '../errors.js';
import { native } from '../native/load.js';
import type { NativeAssignment, NativeAssignmentStats } from '../native/types.js';
import type { Matrix } from '../types.js';
import { checkOptionKeys, describe } from '../validate.js';
import { requestedDevice, resolveDevice, type Device } from '../device.js';
import type { CorrelationResult } from './correlation.js';
import { CoactivationCodes, type AlignCodesOptions } from './codes.js';

export interface CostMatrix {
  rows: number;
  cols: number;
  data: Float32Array | Float64Array;
}

export interface AssignmentOptions {
  /** Maximize the total instead of minimizing it (default false). No negated copy is made. */
  maximize?: boolean;
  /**
   * 'dense': successive shortest augmenting paths over the full matrix. 'sparse': the certified path (k cheapest
   * entries per row and column, exact sparse solve, dense pricing pass, repeat until no entry violates the
   * duals). 'auto' (default): sparse from 512 rows/cols up. Both return the exact optimum.
   */
  algorithm?: 'auto' | 'dense' | 'sparse';
  /** Candidates per row and per column for the sparse path (default 16). */
  candidates?: number;
  /** Return the dual variables that certify optimality. */
  returnDuals?: boolean;
  /**
   * Where the sparse path's candidate and pricing passes run (the solve itself is always on the CPU):
   * 'auto' (default; CMSAE_DEVICE overrides): CUDA for float32 costs when a device exists; 'cpu'; 'cuda'.
   */
  device?: Device;
}

export interface Assignment {
  /** Column matched to each row; -1 for rows left unmatched (rows > cols). */
  rowToCol: Int32Array;
  /** Row matched to each column; -1 for columns left unmatched (cols > rows). */
  colToRow: Int32Array;
  /** Sum of the chosen entries (float64). */
  objective: number;
  /**
   * Duals in the problem's own sense (minimize: u_i + v_j <= c_ij; maximize: u_i + v_j >= c_ij), tight on
   * the chosen pairs; sum(u) + sum(v) equals the objective.
   */
  duals?: { u: Float64Array; v: Float64Array };
  /** Sparse path: pricing rounds, entries added by pricing, final graph edges, whether it fell back to dense. */
  stats: NativeAssignmentStats;
}

function checkCost(cost: CostMatrix, opts: AssignmentOptions): void {
  if (typeof cost !== 'object' || cost === null) throw new SaeError('ERR_ARG', `cost must be a matrix { rows, cols, data }, got ${describe(cost)}`);
  if (!(cost.data instanceof Float32Array) && !(cost.data instanceof Float64Array))
    throw new SaeError('ERR_DTYPE', `cost.data must be a Float32Array or Float64Array, got ${describe(cost.data)}`);
  if (!Number.isInteger(cost.rows) || !Number.isInteger(cost.cols) || cost.rows < 0 || cost.cols < 0)
    throw new SaeError('ERR_SHAPE', `cost needs integer rows, cols >= 0, got ${cost.rows} x ${cost.cols}`);
  if (cost.data.length !== cost.rows * cost.cols)
    throw new SaeError('ERR_SHAPE', `cost.data has ${cost.data.length} elements but rows x cols = ${cost.rows * cost.cols}`);
  checkOptionKeys(opts, ASSIGNMENT_OPTIONS, 'solveAssignment', true);
  const alg = opts.algorithm ?? 'auto';
  if (!['auto', 'dense', 'sparse'].includes(alg)) throw new SaeError('ERR_ARG', `option algorithm must be 'auto', 'dense' or 'sparse', got ${String(alg)}`);
  const k = opts.candidates ?? native().assignmentPolicy().defaultCandidates;
  const max = native().assignmentPolicy().maxCandidates;
  if (!Number.isInteger(k) || k < 1 || k > max)
    throw new SaeError('ERR_ARG', `option candidates must be an integer in [1, ${max}], got ${String(k)}`);
  for (const key of ['maximize', 'returnDuals'] as const)
    if (opts[key] !== undefined && typeof opts[key] !== 'boolean') throw new SaeError('ERR_ARG', `option ${key} must be a boolean, got ${String(opts[key])}`);
}

const ASSIGNMENT_OPTIONS = ['maximize', 'algorithm', 'candidates', 'returnDuals', 'device'];

/** opts must be undefined or a plain object whose keys are all known (a typo is an error, not a silent default). */
/** The device of the sparse path's passes: CUDA only for float32 costs (the device passes read float32). */
function assignmentDevice(requested: Device | undefined, float32: boolean): 'cpu' | 'cuda' {
  return resolveDevice(requested, { supported: float32 });
}

function toAssignment(r: NativeAssignment, opts: AssignmentOptions): Assignment {
  const out: Assignment = { rowToCol: r.rowToCol, colToRow: r.colToRow, objective: r.objective, stats: r.stats };
  if (opts.returnDuals) out.duals = { u: r.u, v: r.v };
  return out;
}

/**
 * Exact optimum of the matrix as given. Rectangular in both orientations (min(rows, cols) pairs), float32 or
 * float64, read in place. Forbidden pairs: +Inf when minimizing, -Inf when maximizing. NaN (or an infinity
 * in the favourable direction) -> ERR_NONFINITE; no complete assignment -> ERR_INFEASIBLE. Ties are broken
 * deterministically.
 */
export function solveAssignment(cost: CostMatrix, opts: AssignmentOptions = {}): Assignment {
  checkCost(cost, opts);
  const device = assignmentDevice(opts.device, cost.data instanceof Float32Array);
  const solve = (dev: 'cpu' | 'cuda') => native().solveAssignment(cost.data, cost.rows, cost.cols, !!opts.maximize, opts.algorithm ?? 'auto', opts.candidates ?? native().assignmentPolicy().defaultCandidates, dev);
  try {
    return toAssignment(solve(device), opts);
  } catch (e) {
    if (!deviceFailure(e, device, opts.device)) throw e;
    return toAssignment(solve('cpu'), opts);
  }
}

/** Under 'auto', a failure of the device itself (memory, driver) falls back to the CPU; input errors do not. */
function deviceFailure(e: unknown, device: 'cpu' | 'cuda', requested: Device | undefined): boolean {
  return requestedDevice(requested) === 'auto' && device === 'cuda' && e instanceof SaeError && ['ERR_NOMEM', 'ERR_INTERNAL', 'ERR_CUDA_UNAVAILABLE'].includes(e.code);
}

/** solveAssignment on a worker thread (the input must not change until it settles). */
export async function solveAssignmentAsync(cost: CostMatrix, opts: AssignmentOptions = {}): Promise<Assignment> {
  checkCost(cost, opts);
  const device = assignmentDevice(opts.device, cost.data instanceof Float32Array);
  const solve = (dev: 'cpu' | 'cuda') => native().solveAssignmentAsync(cost.data, cost.rows, cost.cols, !!opts.maximize, opts.algorithm ?? 'auto', opts.candidates ?? native().assignmentPolicy().defaultCandidates, dev);
  try {
    return toAssignment(await solve(device), opts);
  } catch (e) {
    if (!deviceFailure(e, device, opts.device)) throw e;
    return toAssignment(await solve('cpu'), opts);
  }
}

/**
 * perm[i] = B (text) latent matched to A (image) latent i: a bijection over all latents. Alive x alive
 * pairs come from the assignment maximizing the total correlation (signed by default, |C| with
 * signed: false); the remaining latents of both sides are then paired in ascending index order.
 * Correlations must be finite (ERR_NONFINITE) and within [-1, 1] up to 1e-4 of rounding (ERR_RANGE).
 *
 * Given a CoactivationCodes store instead of a correlation result, the same alignment is computed from the codes
 * at any width whose codes fit (CoactivationCodes.align: the dense path when the correlation fits opts.memoryBudget,
 * the large-m path otherwise; opts.path forces one).
 */
export function alignLatents(
  r: Pick<CorrelationResult, 'correlation' | 'aliveA' | 'aliveB'> | CoactivationCodes,
  opts: { signed?: boolean; device?: Device } & Omit<AlignCodesOptions, 'signed'> = {},
): Int32Array {
  if (r instanceof CoactivationCodes) {
    const { device: _device, ...rest } = opts;
    if (r.mA !== r.mB) throw new SaeError('ERR_SHAPE', `a bijection needs as many A latents as B latents, got ${r.mA} x ${r.mB}: use CoactivationCodes.align() for rowToCol`);
    return r.align(rest).perm!;
  }
  checkOptionKeys(opts, ['signed', 'device'], 'alignLatents', true);
  if (opts.signed !== undefined && typeof opts.signed !== 'boolean') throw new SaeError('ERR_ARG', `option signed must be a boolean, got ${String(opts.signed)}`);
  const c: Matrix = r?.correlation;
  if (!c || !(c.data instanceof Float32Array)) throw new SaeError('ERR_ARG', 'alignLatents needs a correlation result (CorrelationAccumulator.result())');
  if (c.rows !== c.cols)
    throw new SaeError('ERR_SHAPE', `a bijection needs as many A latents as B latents, got ${c.rows} x ${c.cols}`);
  if (!(r.aliveA instanceof Uint8Array) || !(r.aliveB instanceof Uint8Array) || r.aliveA.length !== c.rows || r.aliveB.length !== c.cols)
    throw new SaeError('ERR_SHAPE', 'aliveA / aliveB must be Uint8Arrays with one entry per latent');
  const device = assignmentDevice(opts.device, true);
  try {
    return native().alignLatents(c.data, c.rows, r.aliveA, r.aliveB, opts.signed ?? true, device);
  } catch (e) {
    if (!deviceFailure(e, device, opts.device)) throw e;
    return native().alignLatents(c.data, c.rows, r.aliveA, r.aliveB, opts.signed ?? true, 'cpu');
  }
}
