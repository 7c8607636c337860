/** Reads a JSON or YAML configuration file (by extension; YAML also accepts JSON). */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parse as parseYaml } from 'yaml';

import { SaeError } from '../errors.js';

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SaeError('ERR_IO', `cannot read config file ${file}: ${(e as Error).message}`);
  }
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
