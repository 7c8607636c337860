import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { TopKSAE } from '../../lib/index.js';
import { packageRoot } from '../../lib/native/load.js';
import { tempDir } from '../helpers/tmp.js';

/** The numpy step used as the benchmark anchor must compute the same training step as ours. */
describe('numpy benchmark anchor', () => {
  it('runs the same training step as the native engine (same losses over 5 steps)', function () {
    const probe = spawnSync('python3', ['-c', 'import numpy, scipy'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log('      (skipped: python3 with numpy and scipy is not available)');
      this.skip();
    }
    const { dir, cleanup } = tempDir();
    try {
      const [B, d, m, k, steps, lr] = [64, 16, 48, 4, 5, 1e-2];
      const script = path.join(packageRoot(), 'bench', 'compare', 'numpy_kernels.py');
      const r = spawnSync('python3', [script, JSON.stringify({ kind: 'trajectory', B, d, m, k, steps, lr, seed: 3, out_dir: dir })], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const want = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const f32 = (name: string) => {
        const b = readFileSync(path.join(dir, `${name}.f32`));
        return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
      };
      const sae = TopKSAE.fromWeights(
        { W_enc: { rows: d, cols: m, data: f32('W_enc') }, b_enc: f32('b_enc'), W_dec: { rows: m, cols: d, data: f32('W_dec') }, b_dec: f32('b_dec') },
        { k, weightDecay: 1e-5, decayGroups: 'all', device: 'cpu' },
      );
      const x = { rows: B, cols: d, data: f32('X') };
      const got = Array.from({ length: steps }, () => sae.step(x, { lr }).loss);
      let wsum = 0;
      for (const v of sae.getWeights().W_dec.data) wsum += Math.abs(v);
      sae.dispose();
      for (let i = 0; i < steps; i++) expect(got[i]).to.be.closeTo(want.losses[i], 1e-4 * want.losses[i]);
      expect(wsum).to.be.closeTo(want.W_dec_sum, 1e-4 * want.W_dec_sum);
    } finally {
      cleanup();
    }
  });
});
