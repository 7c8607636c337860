/**
 * `cmsae encode`: sparse codes of an embedding file, streamed to a safetensors file (indices I32, values F32)
 * through `<out>.tmp-<pid>` and a rename. Ctrl-C removes the temporary file and exits 130; temporary files
 * of encodes that died (their pid is gone) are removed by the next encode to the same output.
 */
import type { Command } from 'commander';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

import { SaeError } from '../../errors.js';
import { EmbeddingFile } from '../../io/embeddings.js';
import { checkOutputFile, fsError, statOrNull } from '../../io/files.js';
import { processAlive } from '../../io/atomic-recovery.js';
import { loadCliModel } from '../model.js';
import { positiveInt, rowsDim } from '../parse.js';

interface EncodeFlags {
  model: string;
  input: string;
  out: string;
  side?: string;
  tensor?: string;
  shape?: [number, number];
  normalization?: string;
  batchSize?: number;
}

/** The safetensors header of the codes: its JSON measured and padded in bytes (paths may be non-ASCII). */
export function codesHeader(n: number, k: number, metadata: Record<string, string>): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      __metadata__: metadata,
      indices: { dtype: 'I32', shape: [n, k], data_offsets: [0, n * k * 4] },
      values: { dtype: 'F32', shape: [n, k], data_offsets: [n * k * 4, n * k * 8] },
    }),
    'utf8',
  );
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  const out = Buffer.alloc(8 + json.length + pad, 0x20);
  out.writeBigUInt64LE(BigInt(json.length + pad), 0);
  json.copy(out, 8);
  return out;
}

/** Removes `<out>.tmp-<pid>` files whose process no longer exists (killed encodes); returns their names. */
export function removeStaleTemps(out: string): string[] {
  const dir = path.dirname(path.resolve(out));
  const prefix = `${path.basename(out)}.tmp-`;
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const pid = e.slice(prefix.length);
    if (!/^[1-9][0-9]*$/.test(pid) || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    const file = path.join(dir, e);
    if (!statOrNull(file)?.isFile()) continue;
    rmSync(file, { force: true });
    removed.push(e);
  }
  return removed;
}

/** Fault-injection point for tests: CMSAE_FAULT_ENCODE_HOLD=<file> pauses after the first batch until <file> exists. */
async function faultHold(): Promise<void> {
  const release = process.env.CMSAE_FAULT_ENCODE_HOLD;
  if (!release) return;
  process.stderr.write('cmsae: encode holding (CMSAE_FAULT_ENCODE_HOLD)\n');
  while (!statOrNull(release)) await new Promise((r) => setTimeout(r, 20));
}

export function registerEncode(program: Command): void {
  program
    .command('encode')
    .description('encode an embedding file with a trained SAE into sparse codes (safetensors: indices [n,k] I32, values [n,k] F32)')
    .requiredOption('--model <dir>', 'an SAE checkpoint (ours, SAELens or sparsify; e.g. runs/x/final/image) or an aligned pair (runs/x/final/pair, with --side)')
    .requiredOption('--input <file>', 'embeddings (.npy, .safetensors, raw float32 with --shape)')
    .requiredOption('--out <file>', 'output .safetensors')
    .option('--side <image|text>', 'which SAE of an aligned pair (and which centring mean for center+l2)')
    .option('--tensor <name>', 'safetensors tensor of the input')
    .option('--shape <rows,dim>', 'shape of a raw float32 input', rowsDim)
    .option('--normalization <kind>', "override the model's input normalization: 'l2', 'none' or 'center+l2' (default: the run's; 'none' for SAELens/sparsify checkpoints)")
    .option('--batch-size <n>', 'rows per native call (default 8192)', positiveInt)
    .addHelpText(
      'after',
      '\nExamples:\n  $ cmsae encode --model runs/x/final/image --input img.npy --out codes.safetensors\n  $ cmsae encode --model runs/x/final/pair --side text --input txt.npy --out text-codes.safetensors\n  $ cmsae encode --model saelens-sae/ --input acts.npy --out codes.safetensors   # a SAELens or sparsify checkpoint\n',
    )
    .action(async (f: EncodeFlags) => {
      const B = f.batchSize ?? 8192;
      checkOutputFile(f.out, 'output file');
      removeStaleTemps(f.out);
      using input = EmbeddingFile.open({ path: f.input, tensor: f.tensor, shape: f.shape });
      const model = await loadCliModel(f.model, f);
      try {
        const { sae, norm, side } = model;
        if (input.dim !== sae.d) throw new SaeError('ERR_SHAPE', `${f.input} has ${input.dim} values per row but the model expects d = ${sae.d}`);
        const n = input.rows;
        const k = sae.status().k;
        const header = codesHeader(n, k, {
          format: 'cmsae-codes',
          model: path.resolve(f.model),
          // The side is part of the codes' meaning for a pair or a model of a run; a foreign checkpoint has none unless given.
          ...(f.side !== undefined || model.format === 'pair' || model.format === 'cmsae' ? { side } : {}),
          normalization: norm.kind,
          normalization_source: model.normSource,
        });
        const tmp = `${f.out}.tmp-${process.pid}`;
        let fd: number;
        try {
          fd = openSync(tmp, 'w');
        } catch (e) {
          throw fsError(e, 'cannot create the temporary output', tmp);
        }
        let closed = false;
        const close = () => {
          if (!closed) closeSync(fd);
          closed = true;
        };
        // Ctrl-C (exit 130) and SIGTERM (exit 143): no partial output, no temporary file left behind.
        const onSignal = (signal: NodeJS.Signals) => {
          try {
            close();
          } catch {
            /* exiting anyway */
          }
          rmSync(tmp, { force: true });
          process.stderr.write(`\ncmsae: ${signal === 'SIGINT' ? 'interrupted' : 'terminated'}; ${f.out} was not written\n`);
          process.exit(signal === 'SIGINT' ? 130 : 143);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          writeSync(fd, header, 0, header.length, 0);
          const base = header.length;
          const rowsPerBatch = Math.min(B, Math.max(n, 1));
          const buf = new Float32Array(rowsPerBatch * input.dim);
          for (let r0 = 0; r0 < n; r0 += rowsPerBatch) {
            const rows = Math.min(rowsPerBatch, n - r0);
            input.readRange(r0, rows, buf);
            norm.apply(side, buf, rows, input.dim);
            // The engine checks every value (ERR_NONFINITE at a row of the batch); say which row of the file it is.
            const c = await sae.encodeAsync({ rows, cols: input.dim, data: buf.subarray(0, rows * input.dim) }).catch((e: unknown) => {
              const at = e instanceof SaeError && e.code === 'ERR_NONFINITE' ? /at row (\d+)/.exec(e.message) : null;
              throw at ? new SaeError('ERR_NONFINITE', `row ${r0 + Number(at[1])} of ${f.input} holds a NaN or infinite value: remove or repair that row`) : e;
            });
            writeSync(fd, new Uint8Array(c.indices.buffer, c.indices.byteOffset, rows * k * 4), 0, rows * k * 4, base + r0 * k * 4);
            writeSync(fd, new Uint8Array(c.values.buffer, c.values.byteOffset, rows * k * 4), 0, rows * k * 4, base + n * k * 4 + r0 * k * 4);
            if (r0 === 0) await faultHold();
          }
          fsyncSync(fd);
          close();
          try {
            renameSync(tmp, f.out);
          } catch (e) {
            throw fsError(e, 'cannot write the output file', f.out);
          }
        } catch (e) {
          try {
            close();
          } catch {
            /* the error below matters more */
          }
          rmSync(tmp, { force: true });
          throw e;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        process.stdout.write(`encoded ${n} rows (k = ${k}) -> ${f.out}\nnormalization: ${norm.kind} (${model.normSource})\n`);
      } finally {
        model.release();
      }
    });
}
