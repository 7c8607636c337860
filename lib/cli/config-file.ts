/** Reads a JSON or YAML configuration file (by extension; YAML also accepts JSON); never blocks on a FIFO or device. */
import path from 'node:path';

import { parse as parseYaml } from 'yaml';

import { SaeError } from '../errors.js';
import { readRegularFileSync, statOrNull } from '../io/files.js';

/** Larger files are not configurations (and are not read into memory). */
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

export function readConfigFile(file: string): Record<string, unknown> {
  const size = statOrNull(file)?.size ?? 0;
  if (size > MAX_CONFIG_BYTES) throw new SaeError('ERR_FORMAT', `config file ${file} has ${size} bytes: too large to be a training configuration`);
  const text = readRegularFileSync(file, 'config file').toString('utf8');
  let v: unknown;
  try {
    v = path.extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new SaeError('ERR_FORMAT', `${file} is not valid ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SaeError('ERR_FORMAT', `${file} must hold an object (the training configuration)`);
  return v as Record<string, unknown>;
}

/** Sets obj[a][b]... = value, creating the intermediate objects. */
export function setPath(obj: Record<string, unknown>, keys: string[], value: unknown): void {
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}
