import { expect } from 'chai';
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';

import { Trainer, npyBytes, type TrainProgress } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

/** Writes an [n, d] float32 .npy by chunks (rows drawn from a small random table, scaled per row). */
function writeLargeNpy(file: string, n: number, d: number, seed: number): void {
  const rng = new Rng(seed);
  const table = Float32Array.from({ length: 4096 * d }, () => rng.normal());
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, npyHeaderFor(n, d));
    const chunkRows = 8192;
    const chunk = new Float32Array(chunkRows * d);
    for (let r0 = 0; r0 < n; r0 += chunkRows) {
      const rows = Math.min(chunkRows, n - r0);
      for (let r = 0; r < rows; r++) {
        const src = ((r0 + r) * 2654435761) % 4096;
        const s = 0.5 + ((r0 + r) % 97) / 97;
        for (let c = 0; c < d; c++) chunk[r * d + c] = s * table[src * d + c];
      }
      writeSync(fd, new Uint8Array(chunk.buffer, 0, rows * d * 4));
    }
  } finally {
    closeSync(fd);
  }
}

function npyHeaderFor(n: number, d: number): Uint8Array {
  const full = npyBytes({ rows: 1, cols: 1, data: new Float32Array(1) });
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length);
  out.set(full.subarray(0, 8));
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  return out;
}

describe('training from files larger than memory allows', function () {
  this.timeout(600_000);
  it('streams 2 GiB of paired embeddings with RSS well below the data size', async function () {
    const { dir, cleanup } = tempDir();
    try {
      const [n, d] = [524_288, 512]; // 1 GiB per modality
      const bytes = 2 * n * d * 4;
      const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
      if (free < 3 * bytes) {
        console.log(`      (skipped: ${(free / 2 ** 30).toFixed(1)} GiB free in ${dir}, ${((3 * bytes) / 2 ** 30).toFixed(1)} GiB wanted)`);
        this.skip();
      }
      writeLargeNpy(path.join(dir, 'image.npy'), n, d, 1);
      writeLargeNpy(path.join(dir, 'text.npy'), n, d, 2);
      const before = process.memoryUsage().rss;
      let peak = before;
      const t = new Trainer(
        {
          method: 'shared',
          data: { image: { path: path.join(dir, 'image.npy') }, text: { path: path.join(dir, 'text.npy') }, valFraction: 0.01 },
          sae: { m: 64, k: 4 },
          train: { epochs: 1, batchSize: 8192, lr: 1e-3 },
        },
        { out: path.join(dir, 'run') },
      );
      let steps = 0;
      t.on('progress', (q: TrainProgress) => {
        steps = q.step;
        peak = Math.max(peak, process.memoryUsage().rss);
      });
      const r = await t.run();
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(r.steps).to.equal(Math.floor((n - Math.floor(n * 0.01)) / 8192));
      expect(steps).to.equal(r.steps);
      const growth = peak - before;
      console.log(`      (peak RSS growth ${(growth / 2 ** 20).toFixed(0)} MiB while streaming ${(bytes / 2 ** 20).toFixed(0)} MiB)`);
      expect(growth, `RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB for ${(bytes / 2 ** 20).toFixed(0)} MiB of data`).to.be.below(bytes / 8);
    } finally {
      cleanup();
    }
  });
});
