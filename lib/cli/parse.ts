/**
 * Option parsers shared by the commands (commander turns InvalidArgumentError into a usage error, exit 2).
 * Numbers are plain decimals ("12", "-3", "0.5", "5e-4"): hex, empty strings, "Infinity" and trailing text are
 * refused, and integers must be exact (safe) integers.
 */
import { InvalidArgumentError } from 'commander';

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A plain decimal's value, or NaN (hex, empty, "Infinity", trailing text). */
export function plainDecimal(v: string): number {
  return DECIMAL.test(v.trim()) ? Number(v) : NaN;
}

function decimal(v: string, expected: string): number {
  const n = plainDecimal(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected ${expected}`);
  return n;
}

function integer(v: string, min: number, expected: string): number {
  const n = decimal(v, expected);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected ${expected}`);
  return n;
}

export const int = (v: string): number => integer(v, Number.MIN_SAFE_INTEGER, 'an integer');

export const positiveInt = (v: string): number => integer(v, 1, 'a positive integer');

export const nonNegativeInt = (v: string): number => integer(v, 0, 'an integer >= 0');

export const num = (v: string): number => decimal(v, 'a number');

export const nonNegative = (v: string): number => {
  const n = decimal(v, 'a number >= 0');
  if (n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
};

export const positive = (v: string): number => {
  const n = decimal(v, 'a number > 0');
  if (!(n > 0)) throw new InvalidArgumentError('expected a number > 0');
  return n;
};

/** A number in [0, 1]. */
export const unitInterval = (v: string): number => {
  const n = decimal(v, 'a number in [0, 1]');
  if (n < 0 || n > 1) throw new InvalidArgumentError('expected a number in [0, 1]');
  return n;
};

export const numbers = (v: string): number[] => {
  const parts = v.split(',');
  const xs = parts.map((s) => (DECIMAL.test(s.trim()) ? Number(s) : NaN));
  if (!parts.length || !xs.every(Number.isFinite)) throw new InvalidArgumentError('expected comma-separated numbers');
  return xs;
};

/** A comma-separated list of at least one non-empty item (an empty list would silently do nothing). */
export const strings = (v: string): string[] => {
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (xs.length === 0) throw new InvalidArgumentError('expected a comma-separated list of at least one item');
  return xs;
};

/** The shape of a raw float32 file: "rows,dim", two positive integers. */
export const rowsDim = (v: string): [number, number] => {
  const p = v.split(',');
  if (p.length !== 2 || !p.every((x) => /^\s*\d+\s*$/.test(x) && Number(x) > 0 && Number.isSafeInteger(Number(x)))) throw new InvalidArgumentError('expected rows,dim (two positive integers)');
  return [Number(p[0]), Number(p[1])];
};
