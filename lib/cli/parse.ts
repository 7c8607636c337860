/** Option parsers shared by the commands (commander turns InvalidArgumentError into a usage error, exit 2). */
import { InvalidArgumentError } from 'commander';

export const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
};

export const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

export const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
};

export const nonNegative = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
};

export const numbers = (v: string): number[] => {
  const xs = v.split(',').map(Number);
  if (!xs.length || !xs.every(Number.isFinite)) throw new InvalidArgumentError('expected comma-separated numbers');
  return xs;
};

export const strings = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
