/** `cmsae encode`: sparse codes of an embedding file, streamed to a safetensors file (indices I32, values F32). */
import type { Command } from 'commander';
import { closeSync, existsSync, openSync, writeSync, fsyncSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair } from '../../align/aligned-pair.js';
import { Normalizer, type Modality, type Normalization } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { EmbeddingFile } from '../../io/embeddings.js';
import { TopKSAE } from '../../sae/topk-sae.js';
import { readRunNormalizer, runOfModelDir } from '../../run/layout.js';

interface EncodeFlags {
  model: string;
  input: string;
  out: string;
  side?: string;
  tensor?: string;
  shape?: string;
  normalization?: string;
  batchSize?: string;
}

/** The SAE and normalizer of a model directory: an SAE checkpoint (normalization from its run when there is one) or an aligned pair (--side). */
async function loadModel(f: EncodeFlags): Promise<{ sae: TopKSAE; norm: Normalizer; release: () => void }> {
  if (existsSync(path.join(f.model, 'alignment.json'))) {
    if (f.side !== 'image' && f.side !== 'text') throw new SaeError('ERR_ARG', `${f.model} is an aligned pair: choose --side image or --side text`);
    const pair = await AlignedPair.load(f.model);
    const norm = f.normalization ? new Normalizer(f.normalization as Normalization, pair.normalizer.mean) : pair.normalizer;
    return { sae: f.side === 'image' ? pair.image : pair.text, norm, release: () => pair.dispose() };
  }
  const sae = await TopKSAE.load(f.model);
  const run = runOfModelDir(f.model);
  let norm = new Normalizer((f.normalization as Normalization) ?? 'l2');
  if (run) {
    const saved = await readRunNormalizer(run);
    norm = f.normalization ? new Normalizer(f.normalization as Normalization, saved.mean) : saved;
  }
  return { sae, norm, release: () => sae.dispose() };
}

export function registerEncode(program: Command): void {
  program
    .command('encode')
    .description('encode an embedding file with a trained SAE into sparse codes (safetensors: indices [n,k] I32, values [n,k] F32)')
    .requiredOption('--model <dir>', 'an SAE checkpoint (e.g. runs/x/final/image) or an aligned pair (runs/x/final/pair, with --side)')
    .requiredOption('--input <file>', 'embeddings (.npy, .safetensors, raw float32 with --shape)')
    .requiredOption('--out <file>', 'output .safetensors')
    .option('--side <image|text>', 'which SAE of an aligned pair')
    .option('--tensor <name>', 'safetensors tensor of the input')
    .option('--shape <rows,dim>', 'shape of a raw float32 input')
    .option('--normalization <kind>', "override the model's input normalization: 'l2', 'none' or 'center+l2'")
    .option('--batch-size <n>', 'rows per native call (default 8192)')
    .addHelpText('after', '\nExamples:\n  $ cmsae encode --model runs/x/final/image --input img.npy --out codes.safetensors\n  $ cmsae encode --model runs/x/final/pair --side text --input txt.npy --out text-codes.safetensors\n')
    .action(async (f: EncodeFlags) => {
      const shape = f.shape ? (f.shape.split(',').map(Number) as [number, number]) : undefined;
      using input = EmbeddingFile.open({ path: f.input, tensor: f.tensor, shape });
      const { sae, norm, release } = await loadModel(f);
      try {
        if (input.dim !== sae.d) throw new SaeError('ERR_SHAPE', `${f.input} has ${input.dim} values per row but the model expects d = ${sae.d}`);
        const side: Modality = f.side === 'text' ? 'text' : 'image';
        const B = f.batchSize ? Number(f.batchSize) : 8192;
        if (!(Number.isInteger(B) && B > 0)) throw new SaeError('ERR_ARG', '--batch-size must be a positive integer');
        const n = input.rows;
        let k = sae.k;
        const probe = new Float32Array(Math.min(n, 2) * input.dim);
        input.readRange(0, Math.min(n, 2), probe);
        k = sae.encode({ rows: Math.min(n, 2), cols: input.dim, data: probe.map((v) => (Number.isFinite(v) ? v : 0)) }).k;
        // Streamed safetensors: the header is known up front, then indices and values are written by batch.
        let header = JSON.stringify({ __metadata__: { format: 'cmsae-codes', model: path.resolve(f.model), side, normalization: norm.kind }, indices: { dtype: 'I32', shape: [n, k], data_offsets: [0, n * k * 4] }, values: { dtype: 'F32', shape: [n, k], data_offsets: [n * k * 4, n * k * 8] } });
        while ((8 + header.length) % 8 !== 0) header += ' ';
        const tmp = `${f.out}.tmp-${process.pid}`;
        const fd = openSync(tmp, 'w');
        try {
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(header.length));
          writeSync(fd, len, 0, 8, 0);
          writeSync(fd, Buffer.from(header, 'utf8'), 0, header.length, 8);
          const base = 8 + header.length;
          const buf = new Float32Array(B * input.dim);
          for (let r0 = 0; r0 < n; r0 += B) {
            const rows = Math.min(B, n - r0);
            input.readRange(r0, rows, buf);
            for (let i = 0; i < rows * input.dim; i++)
              if (!Number.isFinite(buf[i])) throw new SaeError('ERR_NONFINITE', `row ${r0 + Math.floor(i / input.dim)} of ${f.input} holds ${buf[i]}: remove or repair that row`);
            norm.apply(side, buf, rows, input.dim);
            const c = await sae.encodeAsync({ rows, cols: input.dim, data: buf.subarray(0, rows * input.dim) });
            writeSync(fd, new Uint8Array(c.indices.buffer, c.indices.byteOffset, rows * k * 4), 0, rows * k * 4, base + r0 * k * 4);
            writeSync(fd, new Uint8Array(c.values.buffer, c.values.byteOffset, rows * k * 4), 0, rows * k * 4, base + n * k * 4 + r0 * k * 4);
          }
          fsyncSync(fd);
        } catch (e) {
          closeSync(fd);
          rmSync(tmp, { force: true });
          throw e;
        }
        closeSync(fd);
        renameSync(tmp, f.out);
        process.stdout.write(`encoded ${n} rows (k = ${k}) -> ${f.out}\n`);
      } finally {
        release();
      }
    });
}
