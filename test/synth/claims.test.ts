import { expect } from 'chai';

import { checkClaims, type ClaimInput } from '../../lib/synth/claims.js';
import type { SynthMetrics } from '../../lib/synth/metrics.js';
import { aggregate, type RunRecord } from '../../lib/synth/sweep.js';

type Method = RunRecord['method'];
/** Numbers shaped like the paper's figures: [recon mse, recon fvu, recovery full, recovery top1, latent, feature, collapse or match]. */
type Row = [number, number, number, number, number, number, number];

function rec(alpha: number, method: Method, v: Row, multiplier?: number, seed = 1): RunRecord {
  const aligned = method === 'posthoc';
  const metrics: SynthMetrics = {
    reconstructionError: v[0],
    featureRecoveryError: v[2],
    latentAlignmentError: v[4],
    featureAlignmentError: v[5],
    collapseRate: aligned ? null : v[6],
    matchRate: aligned ? v[6] : null,
    reconstructionMse: v[0],
    reconstructionFvu: v[1],
    recoveryFull: v[2],
    recoveryTop1: v[3],
    reconstructionImage: v[0],
    reconstructionText: v[0],
    recoveryImage: v[2],
    recoveryText: v[2],
  };
  return { alpha, seed, method, multiplier, lambda: multiplier, metrics, trainSeconds: 1, finalFvu: 0.5, alphaActual: alpha };
}

const SEP: Row = [0.148, 0.55, 0.039, 0.08, 0.998, 0.999, 0];
const POST: Row = [0.148, 0.55, 0.039, 0.08, 0.806, 0.12, 0.92];

function alphaSweep(): ClaimInput {
  const shared: Record<number, Row> = {
    0: [0.164, 0.6, 0.048, 0.1, 0.95, 1, 0],
    0.5: [0.17, 0.62, 0.06, 0.12, 0.95, 0.6, 0.01],
    0.8: [0.19, 0.7, 0.094, 0.2, 0.9, 0.08, 0.9],
    1: [0.145, 0.5, 0.028, 0.05, 0.8, 0, 1],
  };
  const alphas = [0, 0.5, 0.8, 1];
  return { kind: 'alpha-sweep', alphas, records: alphas.flatMap((a) => [rec(a, 'shared', [...shared[a]]), rec(a, 'separate', [...SEP]), rec(a, 'posthoc', [...POST])]) };
}

function lambdaSweep(): ClaimInput {
  const mults = [1 / 64, 1, 64];
  const iso: Row[] = [[0.178, 0.6, 0.068, 0.12, 0.952, 0.543, 0.05], [0.178, 0.6, 0.068, 0.12, 0.95, 0.53, 0.06], [0.3, 0.8, 0.196, 0.3, 0.836, 0.191, 0.5]];
  const group: Row[] = [[0.177, 0.6, 0.067, 0.12, 0.952, 0.544, 0.04], [0.174, 0.6, 0.041, 0.09, 0.958, 0.565, 0.03], [0.996, 1, 1.0, 1.0, 1.0, 1.0, 0.02]];
  const records = [
    rec(0.5, 'shared', [0.178, 0.6, 0.068, 0.12, 0.952, 0.543, 0.045]),
    rec(0.5, 'separate', [...SEP]),
    rec(0.5, 'posthoc', [...POST]),
    ...mults.map((m, i) => rec(0.5, 'shared+iso', [...iso[i]], m)),
    ...mults.map((m, i) => rec(0.5, 'shared+group', [...group[i]], m)),
  ];
  return { kind: 'lambda-sweep', alphas: [0.5], multipliers: mults, records };
}

/** claim id -> view -> holds */
function verdicts(r: ClaimInput): Record<string, Record<string, boolean | null>> {
  return Object.fromEntries(checkClaims(r).map((c) => [c.id, Object.fromEntries(c.results.map((x) => [x.view, x.holds]))]));
}

/** The verdicts after `mutate`, as the entries that differ from the unmutated input's. */
function changes(make: () => ClaimInput, mutate: (r: ClaimInput) => void): Record<string, Record<string, boolean | null>> {
  const before = verdicts(make());
  const r = make();
  mutate(r);
  const after = verdicts(r);
  const out: Record<string, Record<string, boolean | null>> = {};
  for (const [id, views] of Object.entries(after))
    for (const [v, h] of Object.entries(views)) if (before[id]?.[v] !== h) (out[id] ??= {})[v] = h;
  return out;
}

const find = (r: ClaimInput, method: Method, alpha: number, mult?: number) => r.records.find((x) => x.method === method && x.alpha === alpha && x.multiplier === mult)!.metrics;

describe('synthetic claims (§7.1, Figures 5 and 6)', () => {
  it('every claim of the α-sweep holds on numbers shaped like the paper\'s, under both metric views', () => {
    const v = verdicts(alphaSweep());
    expect(Object.keys(v)).to.have.members([
      'fig5-shared-collapses-when-close',
      'fig5-collapse-grows-as-directions-close',
      'fig5-separate-no-collapse',
      'fig5-collapse-raises-reconstruction',
      'fig5-collapse-raises-recovery',
      'fig5-separate-better-recovery-when-heterogeneous',
      'fig5-shared-better-reconstruction-when-identical',
      'fig5-shared-better-recovery-when-identical',
    ]);
    for (const [id, views] of Object.entries(v)) for (const [view, h] of Object.entries(views)) expect(h, `${id} ${view}`).to.equal(true);
    // Claims that use the reconstruction or recovery error are evaluated under both views, the others once.
    expect(Object.keys(v['fig5-collapse-raises-recovery'])).to.deep.equal(['default', 'authors']);
    expect(Object.keys(v['fig5-separate-no-collapse'])).to.deep.equal(['any']);
  });

  it('the collapse-growth claim tests "low far from identical" only where the sweep has an α <= 0.5', () => {
    // A sweep of close directions only: the collapse grows from 0.6 to 0.9, which the claim says; nothing is far.
    const close = (): ClaimInput => {
      const alphas = [0.7, 0.9];
      const rows: Record<number, Row> = { 0.7: [0.19, 0.7, 0.09, 0.2, 0.9, 0.1, 0.6], 0.9: [0.19, 0.7, 0.09, 0.2, 0.9, 0.05, 0.9] };
      return { kind: 'alpha-sweep', alphas, records: alphas.flatMap((a) => [rec(a, 'shared', [...rows[a]]), rec(a, 'separate', [...SEP]), rec(a, 'posthoc', [...POST])]) };
    };
    expect(verdicts(close())['fig5-collapse-grows-as-directions-close']).to.deep.equal({ any: true });
    // Shrinking collapse still fails it; a far α with collapse fails it too.
    expect(changes(close, (r) => (find(r, 'shared', 0.9).collapseRate = 0.3))['fig5-collapse-grows-as-directions-close']).to.deep.equal({ any: false });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0).collapseRate = 0.2))['fig5-collapse-grows-as-directions-close']).to.deep.equal({ any: false });
  });

  it('every claim of the λ-sweep holds on numbers shaped like the paper\'s; the post-hoc check is marked as a sanity check', () => {
    const claims = checkClaims(lambdaSweep());
    expect(claims.map((c) => c.id)).to.include.members(['fig6-posthoc-lower-recovery-error', 'fig6-posthoc-lower-latent-alignment-error', 'fig6-posthoc-lower-feature-alignment-error', 'fig6-iso-improves-alignment', 'fig6-iso-degrades-recovery', 'fig6-group-degenerates', 's71-posthoc-aligns-separate-saes']);
    for (const c of claims) for (const x of c.results) expect(x.holds, `${c.id} ${x.view}`).to.equal(true);
    expect(claims.filter((c) => c.sanity).map((c) => c.id)).to.deep.equal(['sanity-posthoc-keeps-separate-errors']);
  });

  it('a group-sparse recovery error below post-hoc\'s under the default metric only fails the Figure 6 recovery claim under that view', () => {
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+group', 0.5, 1).recoveryFull = 0.031))).to.deep.equal({ 'fig6-posthoc-lower-recovery-error': { default: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+iso', 0.5, 1 / 64).recoveryTop1 = 0.07))).to.deep.equal({ 'fig6-posthoc-lower-recovery-error': { authors: false } });
  });

  it('each λ-sweep claim fails on its own counter-example', () => {
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+iso', 0.5, 64).latentAlignmentError = 0.8))).to.deep.equal({ 'fig6-posthoc-lower-latent-alignment-error': { any: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+iso', 0.5, 64).featureAlignmentError = 0.6))).to.deep.equal({ 'fig6-iso-improves-alignment': { any: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'posthoc', 0.5).featureAlignmentError = 0.2))).to.deep.equal({ 'fig6-posthoc-lower-feature-alignment-error': { any: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+iso', 0.5, 64).recoveryFull = 0.05))).to.deep.equal({ 'fig6-iso-degrades-recovery': { default: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'shared+group', 0.5, 64).featureAlignmentError = 0.5))).to.deep.equal({ 'fig6-group-degenerates': { default: false, authors: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'separate', 0.5).featureAlignmentError = 0.1))).to.deep.equal({ 's71-posthoc-aligns-separate-saes': { any: false } });
    expect(changes(lambdaSweep, (r) => (find(r, 'posthoc', 0.5).recoveryTop1 = 0.0801))).to.deep.equal({ 'sanity-posthoc-keeps-separate-errors': { authors: false } });
  });

  it('each α-sweep claim fails on its own counter-example', () => {
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0.8).collapseRate = 0.3))).to.deep.equal({ 'fig5-shared-collapses-when-close': { any: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0.5).collapseRate = 0.95))).to.deep.equal({ 'fig5-collapse-grows-as-directions-close': { any: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0).collapseRate = 0.06))).to.deep.equal({ 'fig5-collapse-grows-as-directions-close': { any: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'separate', 1).collapseRate = 0.2))).to.deep.equal({ 'fig5-separate-no-collapse': { any: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0.8).reconstructionFvu = 0.5))).to.deep.equal({ 'fig5-collapse-raises-reconstruction': { authors: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0.8).recoveryFull = 0.03))).to.deep.equal({ 'fig5-collapse-raises-recovery': { default: false }, 'fig5-separate-better-recovery-when-heterogeneous': { default: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 0).recoveryTop1 = 0.07))).to.deep.equal({ 'fig5-separate-better-recovery-when-heterogeneous': { authors: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'shared', 1).reconstructionMse = 0.15))).to.deep.equal({ 'fig5-shared-better-reconstruction-when-identical': { default: false } });
    expect(changes(alphaSweep, (r) => (find(r, 'separate', 1).recoveryTop1 = 0.04))).to.deep.equal({ 'fig5-shared-better-recovery-when-identical': { authors: false } });
  });

  it('claims about α or λ values a sweep lacks are "not tested" (null), never "holds"', () => {
    const a = alphaSweep();
    a.alphas = [0, 0.5];
    a.records = a.records.filter((x) => x.alpha <= 0.5);
    const v = verdicts(a);
    expect(v['fig5-shared-collapses-when-close'].any).to.equal(null);
    expect(v['fig5-collapse-raises-recovery']).to.deep.equal({ default: null, authors: null });
    expect(v['fig5-shared-better-reconstruction-when-identical']).to.deep.equal({ default: null, authors: null });
    expect(v['fig5-shared-better-recovery-when-identical']).to.deep.equal({ default: null, authors: null });
    expect(v['fig5-separate-better-recovery-when-heterogeneous']).to.deep.equal({ default: true, authors: true });
    const l = lambdaSweep();
    l.multipliers = [1];
    l.records = l.records.filter((x) => x.multiplier === undefined || x.multiplier === 1);
    const w = verdicts(l);
    expect(w['fig6-iso-improves-alignment'].any).to.equal(null);
    expect(w['fig6-group-degenerates']).to.deep.equal({ default: null, authors: null });
    expect(w['fig6-posthoc-lower-recovery-error']).to.deep.equal({ default: true, authors: true });
  });

  it('aggregate: mean and population std over seeds; NaN where no seed has the metric (post-hoc has no collapse rate)', () => {
    const rs = [rec(0.5, 'posthoc', [0.1, 0.5, 0.02, 0.05, 0.8, 0.1, 0.9]), rec(0.5, 'posthoc', [0.3, 0.5, 0.02, 0.05, 0.8, 0.1, 0.7], undefined, 2)];
    const [a] = aggregate(rs);
    expect(a.n).to.equal(2);
    expect(a.mean.reconstructionMse).to.be.closeTo(0.2, 1e-12);
    expect(a.std.reconstructionMse).to.be.closeTo(0.1, 1e-12);
    expect(a.mean.matchRate).to.be.closeTo(0.8, 1e-12);
    expect(a.mean.collapseRate).to.be.NaN;
    expect(a.std.collapseRate).to.be.NaN;
  });
});
