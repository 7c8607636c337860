/**
 * Results of a synthetic sweep: results.json, Figure 5 / Figure 6 style plots (vega-lite rendered to SVG
 * without a browser, rasterized to PNG with resvg) and one report.html with plots, tables, the paper's claims
 * as checked on these numbers, the theory check and the configuration.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { render } from '../report/vega.js';
import { aggregate, METRIC_KEYS, type MetricKey, type RunRecord, type SweepSettings } from './sweep.js';
import type { TheoryRow } from './theory.js';

export const METRIC_LABELS: Record<MetricKey, string> = {
  collapseRate: 'Feature collapse rate',
  reconstructionError: 'Reconstruction error',
  featureRecoveryError: 'Feature recovery error',
  latentAlignmentError: 'Latent alignment error',
  featureAlignmentError: 'Feature alignment error',
};

const METHOD_LABELS: Record<string, string> = {
  shared: 'Shared SAE',
  separate: 'Modality-specific SAEs',
  posthoc: 'Post-hoc alignment (ours)',
  'shared+iso': 'Iso-Energy (shared)',
  'shared+group': 'Group-sparse (shared)',
};

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

function panel(metric: MetricKey, x: { field: string; title: string; log?: boolean; ticks?: number[] }, values: unknown[], opts: { logY?: boolean } = {}) {
  const xEnc = {
    field: x.field,
    type: 'quantitative',
    title: x.title,
    ...(x.log ? { scale: { type: 'log', base: 2 } } : {}),
    ...(x.ticks ? { axis: { values: x.ticks, labelExpr: "datum.value < 1 ? '1/' + format(1 / datum.value, 'd') : format(datum.value, 'd')" } } : {}),
  };
  const yScale = opts.logY ? { type: 'log' } : { zero: false };
  return {
    width: 220,
    height: 170,
    title: METRIC_LABELS[metric],
    data: { values: values.filter((v) => (v as { metric: string }).metric === metric) },
    layer: [
      { mark: { type: 'errorband', opacity: 0.2 }, encoding: { x: xEnc, y: { field: 'lo', type: 'quantitative', title: null, scale: yScale }, y2: { field: 'hi' }, color: { field: 'method', type: 'nominal', title: null } } },
      { mark: { type: 'line', point: true }, encoding: { x: xEnc, y: { field: 'mean', type: 'quantitative', title: null, scale: yScale }, color: { field: 'method', type: 'nominal', title: null } } },
    ],
  };
}

/** Long-form rows for the plots: one per (x, method, metric) with mean and mean ± std. */
function plotRows(r: SweepReport, xOf: (a: ReturnType<typeof aggregate>[number]) => number | undefined, methods?: string[]) {
  const out: Record<string, unknown>[] = [];
  for (const a of aggregate(r.records)) {
    if (methods && !methods.includes(a.method)) continue;
    const x = xOf(a);
    if (x === undefined) continue;
    for (const k of METRIC_KEYS) out.push({ x, method: METHOD_LABELS[a.method] ?? a.method, metric: k, mean: a.mean[k], lo: a.mean[k] - a.std[k], hi: a.mean[k] + a.std[k] });
  }
  return out;
}

export async function figures(r: SweepReport): Promise<Record<string, { svg: string; png: Uint8Array }>> {
  const out: Record<string, { svg: string; png: Uint8Array }> = {};
  if (r.kind === 'alpha-sweep') {
    const rows = plotRows(r, (a) => a.alpha, ['shared', 'separate', 'posthoc']);
    const x = { field: 'x', title: 'α = cos(φᵢ, ψᵢ)' };
    out['figure5'] = await render({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', hconcat: (['collapseRate', 'reconstructionError', 'featureRecoveryError'] as const).map((k) => panel(k, x, rows)) });
    out['alpha-alignment'] = await render({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', hconcat: (['latentAlignmentError', 'featureAlignmentError'] as const).map((k) => panel(k, x, rows)) });
  } else {
    // Curves over the multiplier for the two auxiliary losses; the other methods as flat references.
    const mults = r.multipliers ?? [];
    const rows = plotRows(r, (a) => a.multiplier, ['shared+iso', 'shared+group']);
    for (const a of aggregate(r.records))
      if (['shared', 'separate', 'posthoc'].includes(a.method))
        for (const m of mults)
          for (const k of METRIC_KEYS) rows.push({ x: m, method: METHOD_LABELS[a.method], metric: k, mean: a.mean[k], lo: a.mean[k] - a.std[k], hi: a.mean[k] + a.std[k] });
    const x = { field: 'x', title: 'λ / default λ', log: true, ticks: mults };
    out['figure6'] = await render({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      hconcat: [panel('featureRecoveryError', x, rows, { logY: true }), panel('latentAlignmentError', x, rows), panel('featureAlignmentError', x, rows)],
    });
    out['lambda-other'] = await render({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', hconcat: [panel('reconstructionError', x, rows), panel('collapseRate', x, rows)] });
  }
  return out;
}

interface Claim {
  claim: string;
  holds: boolean | null;
  evidence: string;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '–');

/** The paper's claims, evaluated on these numbers (mean over seeds; "±" is the population std). */
export function checkClaims(r: SweepReport): Claim[] {
  const agg = aggregate(r.records);
  const at = (method: string, alpha: number, mult?: number) => agg.find((a) => a.method === method && a.alpha === alpha && a.multiplier === mult);
  const claims: Claim[] = [];
  if (r.kind === 'alpha-sweep') {
    const near = r.alphas.filter((a) => a >= 0.7 && a < 1);
    const ev = near.map((a) => `α=${a}: shared ${f3(at('shared', a)?.mean.collapseRate ?? NaN)}, separate ${f3(at('separate', a)?.mean.collapseRate ?? NaN)}`);
    claims.push({
      claim: 'The shared SAE collapses features when α is near but below 1; modality-specific SAEs do not.',
      holds: near.length ? near.every((a) => (at('shared', a)?.mean.collapseRate ?? 0) > 0.5 && (at('separate', a)?.mean.collapseRate ?? 1) < 0.05) : null,
      evidence: ev.join('; ') || 'no α in [0.7, 1) in this sweep',
    });
    const below = r.alphas.filter((a) => a < 1);
    for (const k of ['reconstructionError', 'featureRecoveryError'] as const) {
      const rows = below.map((a) => ({ a, s: at('shared', a), p: at('separate', a) }));
      claims.push({
        claim: `Separate SAEs ${k === 'reconstructionError' ? 'reconstruct' : 'recover features'} at least as well as the shared SAE for α < 1 (${METRIC_LABELS[k].toLowerCase()}).`,
        holds: rows.every(({ s, p }) => s && p && p.mean[k] <= s.mean[k] + s.std[k] + p.std[k]),
        evidence: rows.map(({ a, s, p }) => `α=${a}: separate ${f3(p?.mean[k] ?? NaN)} vs shared ${f3(s?.mean[k] ?? NaN)}`).join('; '),
      });
    }
  } else {
    const alpha = r.alphas[0];
    const post = at('posthoc', alpha), sep = at('separate', alpha);
    const mults = r.multipliers ?? [];
    const worse = mults.flatMap((m) => ['shared+iso', 'shared+group'].map((meth) => ({ m, meth, a: at(meth, alpha, m) })));
    claims.push({
      claim: 'Post-hoc alignment gives a lower feature-alignment error than both auxiliary losses at every λ.',
      holds: post ? worse.every(({ a }) => a && post.mean.featureAlignmentError < a.mean.featureAlignmentError) : null,
      evidence: `post-hoc ${f3(post?.mean.featureAlignmentError ?? NaN)}; ` + worse.map(({ m, meth, a }) => `${meth} ×${m}: ${f3(a?.mean.featureAlignmentError ?? NaN)}`).join(', '),
    });
    claims.push({
      claim: "…while keeping the separate SAEs' feature recovery error.",
      holds: post && sep ? Math.abs(post.mean.featureRecoveryError - sep.mean.featureRecoveryError) < 1e-9 : null,
      evidence: `post-hoc ${f3(post?.mean.featureRecoveryError ?? NaN)} vs separate ${f3(sep?.mean.featureRecoveryError ?? NaN)} (a permutation of latents cannot change it)`,
    });
  }
  return claims;
}

function table(r: SweepReport): string {
  const agg = aggregate(r.records).sort((a, b) => a.alpha - b.alpha || a.method.localeCompare(b.method) || (a.multiplier ?? 0) - (b.multiplier ?? 0));
  const head = `<tr><th>α</th><th>method</th>${r.kind === 'lambda-sweep' ? '<th>λ mult.</th>' : ''}<th>seeds</th>${METRIC_KEYS.map((k) => `<th>${METRIC_LABELS[k]}</th>`).join('')}</tr>`;
  const rows = agg.map((a) => `<tr><td>${a.alpha}</td><td>${METHOD_LABELS[a.method] ?? a.method}</td>${r.kind === 'lambda-sweep' ? `<td>${a.multiplier ?? ''}</td>` : ''}<td>${a.n}</td>${METRIC_KEYS.map((k) => `<td>${f3(a.mean[k])} ± ${f3(a.std[k])}</td>`).join('')}</tr>`);
  return `<table>${head}${rows.join('')}</table>`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Writes results.json, <figure>.svg/.png and report.html into `dir`. */
export async function writeReport(dir: string, r: SweepReport): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    await fs.writeFile(path.join(dir, name), data);
    written.push(name);
  };
  const claims = checkClaims(r);
  await put('results.json', JSON.stringify({ ...r, aggregate: aggregate(r.records), claims }, null, 2) + '\n');
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
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>crossmodal-sae ${r.kind}</title>
<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}.ok{color:#176b17}.no{color:#a01010}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>
<h1>Synthetic ${r.kind === 'alpha-sweep' ? 'α-sweep (Figure 5)' : 'λ-sweep (Figure 6)'}${r.quick ? ' — quick run' : ''}</h1>
<p>${r.date}; ${r.records.length} evaluated models; ${(r.seconds / 60).toFixed(1)} min. α ∈ {${r.alphas.join(', ')}}, seeds {${r.seeds.join(', ')}}${r.multipliers ? `, λ multipliers {${r.multipliers.join(', ')}} of the defaults (Iso-Energy 0.03, group-sparse 0.05)` : ''}.</p>
${r.reductions.length ? `<p><b>Reductions against the paper's setting:</b> ${r.reductions.map(esc).join('; ')}.</p>` : ''}
<h2>The paper's claims on these numbers</h2><ul>${claims.map((c) => `<li class="${c.holds === true ? 'ok' : c.holds === false ? 'no' : ''}"><b>${c.holds === true ? 'holds' : c.holds === false ? 'does not hold' : 'not tested'}</b>: ${esc(c.claim)}<br><small>${esc(c.evidence)}</small></li>`).join('')}</ul>
<h2>Plots</h2>${Object.values(figs).map((f) => f.svg).join('\n')}
<h2>Table (mean ± population std over seeds)</h2>${table(r)}
${theory}
<h2>Configuration</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre></body></html>\n`;
  await put('report.html', html);
  return written;
}
