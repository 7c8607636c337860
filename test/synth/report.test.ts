import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { reportFiles, writeReport, type SweepReport } from '../../lib/synth/report.js';
import type { SynthMetrics } from '../../lib/synth/metrics.js';
import { PAPER_SWEEP, type RunRecord } from '../../lib/synth/sweep.js';
import { tempDir } from '../helpers/tmp.js';

function rec(alpha: number, method: RunRecord['method'], base: number, multiplier?: number): RunRecord {
  const aligned = method === 'posthoc';
  const v = base + alpha / 10;
  const metrics: SynthMetrics = {
    reconstructionError: v, featureRecoveryError: v / 2, latentAlignmentError: 0.9, featureAlignmentError: aligned ? 0.1 : 0.9,
    collapseRate: aligned ? null : alpha / 2, matchRate: aligned ? 0.91 : null,
    reconstructionMse: v, reconstructionFvu: v * 3, recoveryFull: v / 2, recoveryTop1: v, reconstructionImage: v, reconstructionText: v, recoveryImage: v / 2, recoveryText: v / 2,
  };
  return { alpha, seed: 1, method, multiplier, lambda: multiplier, metrics, trainSeconds: 1, finalFvu: 0.3, alphaActual: alpha };
}

describe('synthetic report', function () {
  this.timeout(60_000);
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('α-sweep: Figure 5 plots shared and modality-specific SAEs only; the post-hoc match rate has its own panel and column', async () => {
    const alphas = [0, 0.8, 1];
    const r: SweepReport = {
      kind: 'alpha-sweep', quick: false, reductions: [], settings: PAPER_SWEEP, alphas, seeds: [1],
      records: alphas.flatMap((a) => [rec(a, 'shared', 0.2), rec(a, 'separate', 0.1), rec(a, 'posthoc', 0.1)]), seconds: 1, date: 'today',
    };
    const out = path.join(dir, 'alpha');
    const written = await writeReport(out, r);
    expect(written).to.deep.equal(reportFiles('alpha-sweep', PAPER_SWEEP));
    expect(readdirSync(out).sort()).to.deep.equal([...written].sort());
    for (const f of ['figure5.svg', 'figure5-authors.svg']) {
      const svg = readFileSync(path.join(out, f), 'utf8');
      expect(svg, f).to.include('Feature collapse rate').and.to.include('Shared SAE').and.to.include('Modality-specific SAEs').and.to.not.include('Post-hoc');
    }
    expect(readFileSync(path.join(out, 'figure5.svg'), 'utf8')).to.include('Feature recovery error (Top-K)').and.to.include('Reconstruction error (MSE)');
    expect(readFileSync(path.join(out, 'figure5-authors.svg'), 'utf8')).to.include('Feature recovery error (top-1)').and.to.include('Reconstruction error (FVU)');
    expect(readFileSync(path.join(out, 'alpha-alignment.svg'), 'utf8')).to.include('Post-hoc match rate').and.to.include('Post-hoc alignment (ours)');
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).to.include('<th>Post-hoc match rate (↑)</th>').and.to.include('<td>0.910 ± 0.000</td>').and.to.include('not a collapse rate');
    const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    const post = res.aggregate.find((a: { method: string }) => a.method === 'posthoc');
    expect(post.mean.collapseRate).to.equal(null); // NaN in JSON: no post-hoc collapse rate
    expect(post.mean.matchRate).to.be.closeTo(0.91, 1e-12);
    expect(res.claims.length).to.equal(8);
    expect(res.metricViews.authors.recovery).to.equal('recoveryTop1');
  });

  it('λ-sweep with the authors\' variant as the main metric: figure6 shows top-1 recovery, figure6-paper the full recovery; lambda-other the FVU reconstruction and the collapse rate', async () => {
    const settings = { ...PAPER_SWEEP, metrics: { reconstruction: 'fvu' as const, recovery: 'top1' as const } };
    const mults = [1 / 64, 64];
    const r: SweepReport = {
      kind: 'lambda-sweep', quick: false, reductions: ['x'], settings, alphas: [0.5], seeds: [1], multipliers: mults,
      records: [rec(0.5, 'shared', 0.2), rec(0.5, 'separate', 0.1), rec(0.5, 'posthoc', 0.1), ...mults.flatMap((m) => [rec(0.5, 'shared+iso', 0.2 * m, m), rec(0.5, 'shared+group', 0.3 * m, m)])],
      seconds: 1, date: 'today',
    };
    const out = path.join(dir, 'lambda');
    const written = await writeReport(out, r);
    expect(written).to.deep.equal(['results.json', 'figure6.svg', 'figure6.png', 'figure6-paper.svg', 'figure6-paper.png', 'lambda-other.svg', 'lambda-other.png', 'report.html']);
    expect(readFileSync(path.join(out, 'figure6.svg'), 'utf8')).to.include('Feature recovery error (top-1)');
    expect(readFileSync(path.join(out, 'figure6-paper.svg'), 'utf8')).to.include('Feature recovery error (Top-K)');
    const other = readFileSync(path.join(out, 'lambda-other.svg'), 'utf8');
    expect(other).to.include('Reconstruction error (FVU)').and.to.include('Feature collapse rate');
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).to.match(/Sanity checks \(true by construction/).and.to.match(/Differences from the paper's settings \(the defaults\):<\/b> x\./);
  });
});
