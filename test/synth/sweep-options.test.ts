import { expect } from 'chai';

import { generateSynthetic, generatorOptions, SYNTH_DEFAULTS } from '../../lib/synth/generator.js';
import { differencesFromPaper, FULL, QUICK, resolveSweep } from '../../lib/synth/run.js';
import { PAPER_SWEEP } from '../../lib/synth/sweep.js';
import { expectSaeError } from '../helpers/expect-error.js';

describe('synthetic sweep settings', () => {
  it('resolveSweep merges nested overrides key by key over the full or quick settings', () => {
    const r = resolveSweep('alpha-sweep', { quick: true, settings: { k: 8, data: { noise: 0.1 }, metrics: { recovery: 'top1' }, lambdaBase: { iso: 0.5 } } });
    expect(r.settings.k).to.equal(8);
    expect(r.settings.m).to.equal(QUICK.settings.m);
    expect(r.settings.data).to.deep.equal({ ...QUICK.settings.data, noise: 0.1 });
    expect(r.settings.metrics).to.deep.equal({ recovery: 'top1' });
    expect(r.settings.lambdaBase).to.deep.equal({ iso: 0.5, group: PAPER_SWEEP.lambdaBase.group });
    expect(r.alphas).to.deep.equal(QUICK.alphas);
    const full = resolveSweep('lambda-sweep', {});
    expect(full.settings).to.deep.equal(PAPER_SWEEP);
    expect(full.alphas).to.deep.equal([0.5]);
    expect(full.seeds).to.deep.equal(FULL.seeds);
  });

  it('rejects every bad value with ERR_ARG naming it, before anything is trained', () => {
    const bad: [Parameters<typeof resolveSweep>[1], RegExp][] = [
      [{ settings: { m: 33 } }, /m must be an even integer/],
      [{ settings: { k: 5000 } }, /k must be an integer in \[1, m\/2 = 4096\]/],
      [{ settings: { lr: 0 } }, /lr must be/],
      [{ settings: { epochs: 1.5 } }, /epochs must be/],
      [{ settings: { batchSize: 0 } }, /batchSize must be/],
      [{ settings: { fvuReduction: 'max' as 'sum' } }, /fvuReduction/],
      [{ settings: { signedAlignment: 'yes' as unknown as boolean } }, /signedAlignment/],
      [{ settings: { metrics: { recovery: 'top2' as 'top1' } } }, /metrics.recovery/],
      [{ settings: { metrics: { reconstruction: 'l1' as 'mse' } } }, /metrics.reconstruction/],
      [{ settings: { lambdaBase: { iso: -1 } } }, /lambdaBase.iso/],
      [{ settings: { data: { sparsity: 1 } } }, /sparsity must be/],
      [{ settings: { data: { nShared: 0 } } }, /nShared must be/],
      [{ settings: { data: { noise: -0.1 } } }, /noise must be/],
      [{ settings: { data: { maxInterference: 1 } } }, /maxInterference must be/],
      [{ settings: { data: { sharedMagnitudes: 'same' as 'identical' } } }, /sharedMagnitudes/],
      [{ settings: { data: { nTrain: 100 } } }, /nTrain \(100\) must hold at least one batch of 256/],
      [{ settings: { data: { nTrain: 2 ** 29 } } }, /nTrain x d/],
      [{ alphas: [0.5, 1.5] }, /alphas: 1.5 is not in \[0, 1\]/],
      [{ alphas: [] }, /alphas must be a non-empty list/],
      [{ seeds: [1, 1] }, /seeds lists a value twice/],
      [{ seeds: [-1] }, /seeds: -1 is not an integer/],
      [{ multipliers: [0] }, /multipliers: 0 is not a number > 0/],
    ];
    for (const [o, msg] of bad) expectSaeError(() => resolveSweep('alpha-sweep', o), 'ERR_ARG', msg);
    expectSaeError(() => resolveSweep('lambda-sweep', { alphas: [0.5, 0.9] }), 'ERR_ARG', /one α/);
    expectSaeError(() => generateSynthetic({ alpha: 0.5, d: 2.5 }), 'ERR_ARG', /d must be an integer/);
    expectSaeError(() => generatorOptions(null as unknown as { alpha: number }), 'ERR_ARG');
  });

  it('lists every difference from the paper\'s settings, and none for the full defaults', () => {
    const full = resolveSweep('alpha-sweep', {});
    expect(differencesFromPaper('alpha-sweep', full.settings, full.alphas, full.seeds, [], false)).to.deep.equal([]);
    const q = resolveSweep('lambda-sweep', { quick: true, settings: { signedAlignment: false, data: { sharedMagnitudes: 'identical', boundAcrossBlocks: true } } });
    const diffs = differencesFromPaper('lambda-sweep', q.settings, q.alphas, q.seeds, q.multipliers, true);
    expect(diffs[0]).to.match(/^--quick keeps the paper's optimizer step count/);
    for (const want of ['m 4096 (default 8192)', 'epochs 25 (default 10)', 'nShared 512 (default 1024)', 'sparsity 0.98 (default 0.99)', 'nTrain 20000 (default 50000)', 'signedAlignment false (default true)', 'sharedMagnitudes identical (default independent)', 'boundAcrossBlocks true (default false)', 'λ multipliers {1/64, 1, 64} (default {1/64, 1/4, 1, 4, 64})', '1 seed (default 3)'])
      expect(diffs).to.include(want);
    expect(diffs.some((x) => x.startsWith('α '))).to.equal(false);
    expect(Object.keys(SYNTH_DEFAULTS)).to.include.members(['d', 'nShared', 'noise', 'boundAcrossBlocks', 'sharedMagnitudes', 'l2Normalize']);
  });
});
