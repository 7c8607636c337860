/**
 * Results of a synthetic sweep: results.json, Figure 5 / Figure 6 style plots (vega-lite rendered to SVG
 * without a browser, rasterized to PNG with resvg) and one report.html with plots, tables, the paper's claims
 * as checked on these numbers (under both metric views), the theory check and the configuration.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { checkOutputFile, ensureDirectory, ensureDirectorySync, fsError } from '../io/files.js';
import { escapeHtml as esc, render, VL_SCHEMA } from '../report/vega.js';
import { checkClaims, METRIC_VIEWS, verdict, type Claim, type MetricView } from './claims.js';
import { aggregate, METRIC_KEYS, type Aggregate, type MetricKey, type RunRecord, type SweepSettings } from './sweep.js';
import type { TheoryRow } from './theory.js';

export const METRIC_LABELS: Record<MetricKey, string> = {
  collapseRate: 'Feature collapse rate',
  matchRate: 'Post-hoc match rate (↑)',
  reconstructionError: 'Reconstruction error',
  featureRecoveryError: 'Feature recovery error',
  latentAlignmentError: 'Latent alignment error',
  featureAlignmentError: 'Feature alignment error',
  reconstructionMse: 'Reconstruction error (MSE)',
  reconstructionFvu: 'Reconstruction error (FVU)',
  recoveryFull: 'Feature recovery error (Top-K)',
  recoveryTop1: 'Feature recovery error (top-1)',
};

/** What each column means, for the report's table. */
const METRIC_NOTES: Partial<Record<MetricKey, string>> = {
  collapseRate: 'share of shared concepts whose image and text directions have the same best-matching latent, for SAEs whose latents were not aligned (the paper\'s (57); ↓)',
  matchRate: 'the same count for the post-hoc pair, whose text latents are permuted to match the image latents: the share of concepts the alignment matched correctly (↑; not a collapse rate)',
};

const METHOD_LABELS: Record<string, string> = {
  shared: 'Shared SAE',
  separate: 'Modality-specific SAEs',
  posthoc: 'Post-hoc alignment (ours)',
  'shared+iso': 'Iso-Energy (shared)',
  'shared+group': 'Group-sparse (shared)',
};
/** The paper's colours: shared green, modality-specific yellow, post-hoc orange, Iso-Energy teal, group-sparse blue. */
const COLORS: Record<string, string> = { shared: '#4a9c45', separate: '#e3b505', posthoc: '#f07f13', 'shared+iso': '#2aa198', 'shared+group': '#3b6fb6' };

/** A colour scale over the methods a figure shows (its legend lists no others). */
function colorScale(values: PlotRow[]) {
  const present = Object.keys(COLORS).filter((m) => values.some((v) => v.method === (METHOD_LABELS[m] ?? m)));
  return { scale: { domain: present.map((m) => METHOD_LABELS[m]), range: present.map((m) => COLORS[m]) } };
}

export interface SweepReport {
  kind: 'alpha-sweep' | 'lambda-sweep';
  quick: boolean;
  reductions: string[];
  settings: SweepSettings;
  alphas: number[];
  seeds: number[];
  multipliers?: number[];
  records: RunRecord[];
  seconds: number;
  theory?: TheoryRow[];
  date: string;
}

/** The variant keys of the metrics a sweep plots first (its settings.metrics) and of the other view. */
export function primaryKeys(s: SweepSettings): { reconstruction: MetricKey; recovery: MetricKey } {
  return {
    reconstruction: s.metrics.reconstruction === 'fvu' ? 'reconstructionFvu' : 'reconstructionMse',
    recovery: s.metrics.recovery === 'top1' ? 'recoveryTop1' : 'recoveryFull',
  };
}

/** The figures' metric views: the sweep's own (suffix ''), then each of the two views that differs from it. */
function figureViews(s: SweepSettings): { suffix: string; reconstruction: MetricKey; recovery: MetricKey }[] {
  const out = [{ suffix: '', ...primaryKeys(s) }];
  for (const [suffix, v] of [['-paper', METRIC_VIEWS.default], ['-authors', METRIC_VIEWS.authors]] as const)
    if (!out.some((w) => w.reconstruction === v.reconstruction && w.recovery === v.recovery)) out.push({ suffix, reconstruction: v.reconstruction, recovery: v.recovery });
  return out;
}

interface PlotRow {
  x: number;
  method: string;
  metric: MetricKey;
  mean: number;
  lo: number;
  hi: number;
}

function panel(metric: MetricKey, x: { field: string; title: string; log?: boolean; ticks?: number[] }, values: PlotRow[], opts: { logY?: boolean } = {}) {
  const xEnc = {
    field: x.field,
    type: 'quantitative',
    title: x.title,
    ...(x.log ? { scale: { type: 'log', base: 2 } } : {}),
    ...(x.ticks ? { axis: { values: x.ticks, labelExpr: "datum.value < 1 ? '1/' + format(1 / datum.value, 'd') : format(datum.value, 'd')" } } : {}),
  };
  const yScale = opts.logY ? { type: 'log' } : { zero: false };
  const color = { field: 'method', type: 'nominal', title: null, ...colorScale(values) };
  return {
    width: 220,
    height: 170,
    title: METRIC_LABELS[metric],
    data: { values: values.filter((v) => v.metric === metric && Number.isFinite(v.mean)) },
    layer: [
      { mark: { type: 'errorband', opacity: 0.2 }, encoding: { x: xEnc, y: { field: 'lo', type: 'quantitative', title: null, scale: yScale }, y2: { field: 'hi' }, color } },
      { mark: { type: 'line', point: true }, encoding: { x: xEnc, y: { field: 'mean', type: 'quantitative', title: null, scale: yScale }, color } },
    ],
  };
}

const row = (a: Aggregate, x: number, k: MetricKey): PlotRow => ({ x, method: METHOD_LABELS[a.method] ?? a.method, metric: k, mean: a.mean[k], lo: a.mean[k] - a.std[k], hi: a.mean[k] + a.std[k] });

/** Long-form rows for the plots: one per (x, method, metric) with mean and mean ± std. */
function plotRows(r: SweepReport, xOf: (a: Aggregate) => number | undefined, methods: string[]): PlotRow[] {
  const out: PlotRow[] = [];
  for (const a of aggregate(r.records)) {
    const x = xOf(a);
    if (!methods.includes(a.method) || x === undefined) continue;
    for (const k of METRIC_KEYS) out.push(row(a, x, k));
  }
  return out;
}

const hconcat = (panels: unknown[]) => render({ $schema: VL_SCHEMA, hconcat: panels });

/**
 * α-sweep: figure5 (collapse rate of the shared and modality-specific SAEs, as the paper; reconstruction and
 * recovery under the sweep's metrics) and figure5-authors (the same under the other metric view), alpha-alignment
 * (the alignment errors of all three methods and the post-hoc match rate, its own panel). λ-sweep: figure6,
 * figure6-authors, lambda-other (reconstruction of every method; collapse rate of the unaligned ones).
 */
export async function figures(r: SweepReport): Promise<Record<string, { svg: string; png: Uint8Array }>> {
  const out: Record<string, { svg: string; png: Uint8Array }> = {};
  const primary = primaryKeys(r.settings);
  const views = figureViews(r.settings);
  if (r.kind === 'alpha-sweep') {
    const x = { field: 'x', title: 'α = cos(φᵢ, ψᵢ)  (d_cos = 1 − α)' };
    const rows = plotRows(r, (a) => a.alpha, ['shared', 'separate']);
    for (const v of views) out[`figure5${v.suffix}`] = await hconcat([panel('collapseRate', x, rows), panel(v.reconstruction, x, rows), panel(v.recovery, x, rows)]);
    const all = plotRows(r, (a) => a.alpha, ['shared', 'separate', 'posthoc']);
    out['alpha-alignment'] = await hconcat([panel('latentAlignmentError', x, all), panel('featureAlignmentError', x, all), panel('matchRate', x, all)]);
  } else {
    // Curves over the multiplier for the two auxiliary losses; the other methods as flat references.
    const mults = r.multipliers ?? [];
    const rows = plotRows(r, (a) => a.multiplier, ['shared+iso', 'shared+group']);
    for (const a of aggregate(r.records)) if (['shared', 'separate', 'posthoc'].includes(a.method)) for (const m of mults) for (const k of METRIC_KEYS) rows.push(row(a, m, k));
    const x = { field: 'x', title: 'λ / default λ', log: true, ticks: mults };
    for (const v of views) out[`figure6${v.suffix}`] = await hconcat([panel(v.recovery, x, rows, { logY: true }), panel('latentAlignmentError', x, rows), panel('featureAlignmentError', x, rows)]);
    out['lambda-other'] = await hconcat([panel(primary.reconstruction, x, rows), panel('collapseRate', x, rows)]);
  }
  return out;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '–');
const TABLE_KEYS: MetricKey[] = ['collapseRate', 'matchRate', 'reconstructionMse', 'reconstructionFvu', 'recoveryFull', 'recoveryTop1', 'latentAlignmentError', 'featureAlignmentError'];

function table(r: SweepReport): string {
  const agg = aggregate(r.records).sort((a, b) => a.alpha - b.alpha || a.method.localeCompare(b.method) || (a.multiplier ?? 0) - (b.multiplier ?? 0));
  const lam = r.kind === 'lambda-sweep';
  const head = `<tr><th>α</th><th>method</th>${lam ? '<th>λ mult.</th>' : ''}<th>seeds</th>${TABLE_KEYS.map((k) => `<th>${esc(METRIC_LABELS[k])}</th>`).join('')}</tr>`;
  const cell = (a: Aggregate, k: MetricKey) => (Number.isFinite(a.mean[k]) ? `${f3(a.mean[k])} ± ${f3(a.std[k])}` : '–');
  const rows = agg.map((a) => `<tr><td>${a.alpha}</td><td>${METHOD_LABELS[a.method] ?? a.method}</td>${lam ? `<td>${a.multiplier ?? ''}</td>` : ''}<td>${a.n}</td>${TABLE_KEYS.map((k) => `<td>${cell(a, k)}</td>`).join('')}</tr>`);
  const notes = TABLE_KEYS.filter((k) => METRIC_NOTES[k]).map((k) => `<li><b>${esc(METRIC_LABELS[k])}</b>: ${esc(METRIC_NOTES[k]!)}</li>`);
  return `<table>${head}${rows.join('')}</table><ul>${notes.join('')}</ul>`;
}

const VIEW_LABEL = (v: MetricView | 'any') => (v === 'any' ? 'any metric variant' : METRIC_VIEWS[v].label);
const cls = (h: boolean | null) => (h === true ? 'ok' : h === false ? 'no' : '');

function claimsHtml(claims: Claim[]): string {
  const item = (c: Claim) =>
    `<li><b>${esc(c.claim)}</b> <small>(${esc(c.source)}${c.sanity ? '; sanity check, true by construction' : ''})</small><ul>${c.results
      .map((x) => `<li class="${cls(x.holds)}"><b>${verdict(x.holds)}</b> under ${esc(VIEW_LABEL(x.view))}<br><small>${esc(x.evidence)}</small></li>`)
      .join('')}</ul></li>`;
  const grid = `<table><tr><th>claim</th><th>paper's formulas (default)</th><th>authors' plotted variant</th></tr>${claims
    .map((c) => {
      const at = (v: MetricView) => c.results.find((x) => x.view === v || x.view === 'any')!.holds;
      return `<tr><td style="text-align:left">${esc(c.id)}${c.sanity ? ' (sanity)' : ''}</td>${(['default', 'authors'] as const).map((v) => `<td class="${cls(at(v))}">${verdict(at(v))}</td>`).join('')}</tr>`;
    })
    .join('')}</table>`;
  return `${grid}<ul>${claims.filter((c) => !c.sanity).map(item).join('')}</ul><p>Sanity checks (true by construction; they catch a broken pipeline, they are not evidence for the paper):</p><ul>${claims.filter((c) => c.sanity).map(item).join('') || '<li>none for this sweep</li>'}</ul>`;
}

/** The report's files, in the order they are written. */
export function reportFiles(kind: SweepReport['kind'], s: SweepSettings): string[] {
  const fig = kind === 'alpha-sweep' ? 'figure5' : 'figure6';
  const figs = [...figureViews(s).map((v) => fig + v.suffix), kind === 'alpha-sweep' ? 'alpha-alignment' : 'lambda-other'];
  return ['results.json', ...figs.flatMap((f) => [`${f}.svg`, `${f}.png`]), 'report.html'];
}

/** Checks, before a sweep starts, that `dir` can hold the report (created if missing; no file of the report is a directory, FIFO or device). */
export function checkReportDirectory(dir: string, kind: SweepReport['kind'], s: SweepSettings): void {
  ensureDirectorySync(dir, 'report directory');
  for (const f of reportFiles(kind, s)) checkOutputFile(path.join(dir, f), 'report file');
}

/** Writes results.json, <figure>.svg/.png and report.html into `dir`. */
export async function writeReport(dir: string, r: SweepReport): Promise<string[]> {
  await ensureDirectory(dir, 'report directory');
  const written: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    try {
      await fs.writeFile(path.join(dir, name), data);
    } catch (e) {
      throw fsError(e, 'cannot write report file', path.join(dir, name));
    }
    written.push(name);
  };
  const claims = checkClaims(r);
  await put('results.json', JSON.stringify({ ...r, aggregate: aggregate(r.records), claims, metricViews: METRIC_VIEWS }, null, 2) + '\n');
  const figs = await figures(r);
  for (const [name, f] of Object.entries(figs)) {
    await put(`${name}.svg`, f.svg);
    await put(`${name}.png`, f.png);
  }
  const theory = r.theory
    ? `<h2>Propositions 1–2 (n = 1)</h2><p>The paper's tied top-1 model, best of many projected-gradient descents per λ, bisection on the λ where the minimizer's configuration changes.</p><table><tr><th>loss</th><th>ρ</th><th>switch</th><th>closed form</th><th>measured</th><th>error</th></tr>${r.theory
        .map((t) => `<tr><td>${t.loss === 'group' ? 'group-sparse' : 'Iso-Energy (inner product)'}</td><td>${t.rho}</td><td>${t.kind}</td><td>${t.predicted.toFixed(4)}</td><td>${t.measured.toFixed(4)}</td><td>${(100 * t.relativeError).toFixed(2)} %</td></tr>`)
        .join('')}</table>`
    : '';
  const p = primaryKeys(r.settings);
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>crossmodal-sae ${r.kind}</title>
<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}.ok{color:#176b17}.no{color:#a01010}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>
<h1>Synthetic ${r.kind === 'alpha-sweep' ? 'α-sweep (Figure 5)' : 'λ-sweep (Figure 6)'}${r.quick ? ' — quick run' : ''}</h1>
<p>${r.date}; ${r.records.length} evaluated models; ${(r.seconds / 60).toFixed(1)} min. α ∈ {${r.alphas.join(', ')}}, seeds {${r.seeds.join(', ')}}${r.multipliers ? `, λ multipliers {${r.multipliers.join(', ')}} of the defaults (Iso-Energy ${r.settings.lambdaBase.iso}, group-sparse ${r.settings.lambdaBase.group})` : ''}.
Plots use ${esc(METRIC_LABELS[p.reconstruction])} and ${esc(METRIC_LABELS[p.recovery])}; the <code>-authors</code> / <code>-paper</code> figures show the other metric view from the same models.</p>
${r.reductions.length ? `<p><b>Differences from the paper's settings (the defaults):</b> ${r.reductions.map(esc).join('; ')}. The claims below are evaluated on these settings.</p>` : ''}
<h2>The paper's claims on these numbers</h2>${claimsHtml(claims)}
<h2>Plots</h2>${Object.values(figs).map((f) => f.svg).join('\n')}
<h2>Table (mean ± population std over seeds)</h2>${table(r)}
${theory}
<h2>Configuration</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre></body></html>\n`;
  await put('report.html', html);
  return written;
}
