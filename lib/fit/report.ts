/**
 * The fit's report: results.json (everything), results.md (Table 1), figures (Figure 2: decoder distance by
 * co-activation bin; Figure 7: steering mAP / MRR against strength; Figure 8: sorted monosemanticity scores)
 * as SVG + PNG, and report.html with all of them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { writeFileAtomic } from '../io/atomic.js';
import { escapeHtml, render, VL_SCHEMA } from '../report/vega.js';
import type { Method } from '../train/config.js';
import { toJson } from './cache.js';
import { activationLabel } from './settings.js';
import type { Figure2Results, FitSummary, SettingResults, Stat } from './results.js';

export const METHOD_LABELS: Record<string, string> = {
  shared: 'Shared SAE',
  'shared+iso': '+ Iso-Energy alignment loss',
  'shared+group': '+ Group-sparse loss',
  separate: 'Modality-Specific SAEs',
  posthoc: '+ Post-hoc Alignment (Ours)',
};

export interface FitReportInput {
  methods: Method[];
  seeds: number[];
  settings: SettingResults[];
  heterogeneity: Figure2Results | null;
  timings: { trainSeconds: Record<string, number>; evalSeconds: Record<string, number>; totalSeconds: number };
  date: string;
}

const cell = (s: Stat, scale: number, digits: number, spread: boolean) =>
  s.n === 0 ? '–' : `${(s.mean * scale).toFixed(digits)}${spread && s.n > 1 ? ` (±${(s.std * scale).toFixed(digits)})` : ''}`;

/** Table 1's layout as markdown (recall and accuracy in %, MSE as is), one row per method. */
export function table1Markdown(methods: Method[], summary: FitSummary): string {
  const head = '| Method | Recon. MSE | I→T R@1 | I→T R@5 | I→T R@10 | T→I R@1 | T→I R@5 | T→I R@10 | ZS recon. MSE | Zero-shot acc. |';
  const sep = '|---|' + '---:|'.repeat(9);
  const rows = methods.map((m) => {
    const t = summary.table[m];
    return `| ${METHOD_LABELS[m] ?? m} | ${cell(t.reconMse, 1, 3, false)} | ${cell(t.i2t.r1, 100, 1, true)} | ${cell(t.i2t.r5, 100, 1, true)} | ${cell(t.i2t.r10, 100, 1, true)} | ${cell(t.t2i.r1, 100, 1, true)} | ${cell(t.t2i.r5, 100, 1, true)} | ${cell(t.t2i.r10, 100, 1, true)} | ${cell(t.zsMse, 1, 3, false)} | ${cell(t.zsAccuracy, 100, 1, true)} |`;
  });
  return [head, sep, ...rows].join('\n') + '\n';
}

/** The title of the results tables: Table 1 for one setting; the paper's Table 2 (K), Table 4 (activation) for a sweep. */
export function tablesTitle(settings: Pick<SettingResults, 'k' | 'activation' | 'label'>[]): string {
  if (settings.length === 1) return `Table 1 (${settings[0].label})`;
  const ks = new Set(settings.map((s) => s.k)), acts = new Set(settings.map((s) => s.activation));
  if (acts.size === 1) return `Table 2: effect of the sparsity level K (${activationLabel(settings[0].activation)})`;
  if (ks.size === 1) return `Table 4: effect of the sparsifying activation function (K = ${settings[0].k})`;
  return 'Tables 2 and 4: effect of the sparsity level K and of the sparsifying activation function';
}

/** The results tables as markdown: Table 1, or one section per setting of a sweep (the paper's Tables 2 and 4). */
export function tablesMarkdown(methods: Method[], settings: SettingResults[]): string {
  const title = `## ${tablesTitle(settings)}\n\n`;
  if (settings.length === 1) return title + table1Markdown(methods, settings[0].summary);
  return title + settings.map((s) => `### ${s.label}\n\n${table1Markdown(methods, s.summary)}`).join('\n');
}

/** Figure 2's protocol and per-bin numbers as markdown. */
export function figure2Markdown(h: Figure2Results): string {
  const rows = Object.entries(h.seeds).flatMap(([seed, v]) => v.bins.map((b) => `| ${seed} | [${b.lo}, ${b.hi}${b === v.bins[v.bins.length - 1] ? ']' : ')'} | ${b.pairs} | ${Number.isFinite(b.meanDistance) ? b.meanDistance.toFixed(3) : '–'} |`));
  const matched = Object.entries(h.seeds).map(([seed, v]) => (v.matched ? `seed ${seed}: ${v.matched.pairs} matched alive pairs, mean distance ${v.matched.mean.toFixed(3)}, median ${v.matched.median.toFixed(3)}` : '')).filter(Boolean);
  return `## Figure 2: cross-modal feature heterogeneity\n\nFrom ${h.description}.\n\n| Seed | Correlation bin | Pairs | Mean cosine distance |\n|---:|---|---:|---:|\n${rows.join('\n')}\n${matched.length ? `\n${matched.join('; ')}.\n` : ''}`;
}

function table1Html(methods: Method[], summary: FitSummary): string {
  const md = table1Markdown(methods, summary).trim().split('\n');
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  return `<table><tr>${cells(md[0]).map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>${md
    .slice(2)
    .map((l) => `<tr>${cells(l).map((c, i) => (i === 0 ? `<td style="text-align:left">${escapeHtml(c)}</td>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`)
    .join('')}</table>`;
}

/**
 * A histogram density (bins of width w) smoothed with a Gaussian kernel of Silverman's bandwidth
 * 1.06 σ n^(-1/5) (at least 1.5 w): the reference plots a Gaussian KDE of the same distances.
 */
export function smoothDensity(density: number[], w: number, n: number): number[] {
  const mass = density.map((p) => p * w);
  const total = mass.reduce((a, b) => a + b, 0);
  if (total <= 0) return density.slice();
  const x = (i: number) => (i + 0.5) * w;
  const mu = mass.reduce((a, p, i) => a + p * x(i), 0) / total;
  const sd = Math.sqrt(mass.reduce((a, p, i) => a + p * (x(i) - mu) ** 2, 0) / total);
  const h = Math.max(1.5 * w, 1.06 * sd * Math.pow(Math.max(n, 1), -0.2));
  const norm = 1 / (h * Math.sqrt(2 * Math.PI) * total);
  return density.map((_, j) => mass.reduce((a, p, i) => a + (p ? p * Math.exp(-0.5 * ((x(j) - x(i)) / h) ** 2) : 0), 0) * norm);
}

/** Figures 7 and 8 of the first setting, Figure 2 of its protocol's run (first seed). */
async function figures(r: FitReportInput): Promise<Record<string, { svg: string; png: Uint8Array }>> {
  const out: Record<string, { svg: string; png: Uint8Array }> = {};
  const first = r.settings[0];
  const color = { field: 'method', type: 'nominal', title: null, sort: r.methods.map((m) => METHOD_LABELS[m] ?? m) };
  // Figure 7: steering.
  const steer = r.methods.flatMap((m) =>
    (first.summary.steering[m] ?? []).flatMap((p) => [
      { method: METHOD_LABELS[m] ?? m, alpha: p.alpha, metric: 'mAP (images)', value: p.mapImg.mean },
      { method: METHOD_LABELS[m] ?? m, alpha: p.alpha, metric: 'MRR (images)', value: p.mrrImg.mean },
      { method: METHOD_LABELS[m] ?? m, alpha: p.alpha, metric: 'mAP (captions)', value: p.mapTxt.mean },
    ]),
  );
  if (steer.length)
    out['figure7-steering'] = await render({
      $schema: VL_SCHEMA,
      data: { values: steer.filter((v) => Number.isFinite(v.value)) },
      facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['mAP (images)', 'MRR (images)', 'mAP (captions)'] } },
      spec: { width: 220, height: 170, mark: { type: 'line', point: true }, encoding: { x: { field: 'alpha', type: 'quantitative', title: 'steering strength α' }, y: { field: 'value', type: 'quantitative', title: null }, color } },
      resolve: { scale: { y: 'independent' } },
    });
  // Figure 8: monosemanticity (first seed; curves are per latent, sorted).
  const seed0 = r.seeds[0];
  const ms = r.methods.flatMap((m) => {
    const v = first.results[m]?.[seed0]?.monosemanticity;
    if (!v) return [];
    return (['image', 'text'] as const).flatMap((side) => {
      const s = Array.from(v[side].sorted);
      const stride = Math.max(1, Math.ceil(s.length / 400));
      return s.filter((_, i) => i % stride === 0 || i === s.length - 1).map((score, i) => ({ method: METHOD_LABELS[m] ?? m, side, rank: Math.min(s.length - 1, i * stride), score }));
    });
  });
  if (ms.length)
    out['figure8-monosemanticity'] = await render({
      $schema: VL_SCHEMA,
      data: { values: ms },
      facet: { column: { field: 'side', type: 'nominal', title: null } },
      spec: { width: 260, height: 180, mark: { type: 'line' }, encoding: { x: { field: 'rank', type: 'quantitative', title: 'latent (sorted by score)' }, y: { field: 'score', type: 'quantitative', title: 'MS score' }, color } },
    });
  // Figure 2: heterogeneity of the first seed's modality-specific SAEs.
  const h = r.heterogeneity?.seeds[seed0];
  if (h) {
    const width = 2 / h.distBins;
    const rows = h.bins
      .filter((b) => b.pairs >= 5)
      .flatMap((b) => smoothDensity(b.density, width, b.pairs).map((dens, i) => ({ bin: `[${b.lo}, ${b.hi}${b.hi === h.bins[h.bins.length - 1].hi ? ']' : ')'} (${b.pairs} pairs)`, distance: (i + 0.5) * width, density: dens })));
    out['figure2-heterogeneity'] = await render({
      $schema: VL_SCHEMA,
      width: 380,
      height: 220,
      data: { values: rows.filter((x) => x.distance <= 1.4) },
      mark: { type: 'line' },
      encoding: { x: { field: 'distance', type: 'quantitative', title: 'cosine distance 1 − cos(φ̂ᵢ, ψ̂ⱼ)' }, y: { field: 'density', type: 'quantitative', title: 'density (Gaussian kernel)' }, color: { field: 'bin', type: 'nominal', title: 'correlation c' } },
    });
  }
  return out;
}

/** Per-method results without the per-latent and per-concept arrays (those stay in eval/*.csv). */
function slimResults(results: SettingResults['results']) {
  return Object.fromEntries(
    Object.entries(results).map(([m, bySeed]) => [
      m,
      Object.fromEntries(
        Object.entries(bySeed).map(([seed, v]) => [
          seed,
          {
            ...v,
            monosemanticity: v.monosemanticity && {
              ...v.monosemanticity,
              image: { mean: v.monosemanticity.image.mean, median: v.monosemanticity.image.median, latents: v.monosemanticity.image.latents },
              text: { mean: v.monosemanticity.text.mean, median: v.monosemanticity.text.median, latents: v.monosemanticity.text.latents },
            },
            steering: v.steering && { ...v.steering, perConcept: undefined },
          },
        ]),
      ),
    ]),
  );
}

export async function writeFitReport(dir: string, r: FitReportInput): Promise<string[]> {
  const written: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFileAtomic(path.join(dir, name), data);
    written.push(name);
  };
  const sweep = r.settings.length > 1;
  const first = r.settings[0];
  await put(
    'results.json',
    toJson({
      date: r.date,
      methods: r.methods,
      seeds: r.seeds,
      tables: tablesTitle(r.settings),
      settings: r.settings.map((s) => ({ id: s.id, label: s.label, k: s.k, activation: s.activation, summary: s.summary, results: slimResults(s.results) })),
      heterogeneity: r.heterogeneity,
      timings: r.timings,
    }) + '\n',
  );
  const md = `# Results (${r.date})\n\nSeeds: ${r.seeds.join(', ')}. Recall and accuracy in %, mean (± sample std over seeds).\n\n${tablesMarkdown(r.methods, r.settings)}${r.heterogeneity ? `\n${figure2Markdown(r.heterogeneity)}` : ''}`;
  await put('results.md', md);
  const figs = await figures(r);
  for (const [name, f] of Object.entries(figs)) {
    await put(`figures/${name}.svg`, f.svg);
    await put(`figures/${name}.png`, f.png);
  }
  const label = (m: string) => escapeHtml(METHOD_LABELS[m] ?? m);
  const msRows = r.methods
    .filter((m) => first.summary.monosemanticity[m])
    .map((m) => {
      const s = first.summary.monosemanticity[m];
      return `<tr><td style="text-align:left">${label(m)}</td><td>${cell(s.image.mean, 1, 3, true)}</td><td>${cell(s.image.median, 1, 3, true)}</td><td>${cell(s.image.latents, 1, 0, false)}</td><td>${cell(s.text.mean, 1, 3, true)}</td><td>${cell(s.text.median, 1, 3, true)}</td><td>${cell(s.text.latents, 1, 0, false)}</td></tr>`;
    });
  const steerRows = r.methods.flatMap((m) =>
    (first.summary.steering[m] ?? []).map((p) => `<tr><td style="text-align:left">${label(m)}</td><td>${p.alpha}</td><td>${cell(p.mapImg, 1, 3, true)}</td><td>${cell(p.mrrImg, 1, 3, true)}</td><td>${cell(p.mapTxt, 1, 3, true)}</td><td>${cell(p.mrrTxt, 1, 3, true)}</td><td>${cell(p.preserve, 1, 3, false)}</td></tr>`),
  );
  const slotRows = r.methods
    .filter((m) => first.summary.steeringSlots[m])
    .map((m) => {
      const s = first.summary.steeringSlots[m];
      return `<tr><td style="text-align:left">${label(m)}</td><td>${cell(s.evaluated, 1, 1, false)}</td><td>${cell(s.deadImageSlot, 1, 1, false)}</td><td>${cell(s.deadTextSlot, 1, 1, false)}</td></tr>`;
    });
  const h = r.heterogeneity;
  const hetRows = h
    ? Object.entries(h.seeds).flatMap(([seed, v]) => v.bins.map((b) => `<tr><td>${seed}</td><td>[${b.lo}, ${b.hi}]</td><td>${b.pairs}</td><td>${Number.isFinite(b.meanDistance) ? b.meanDistance.toFixed(3) : '–'}</td></tr>`))
    : [];
  const timing = `train ${Object.values(r.timings.trainSeconds).reduce((a, b) => a + b, 0).toFixed(1)} s, evaluation ${Object.values(r.timings.evalSeconds).reduce((a, b) => a + b, 0).toFixed(1)} s, total ${r.timings.totalSeconds.toFixed(1)} s`;
  const of = sweep ? ` (${escapeHtml(first.label)}, the first setting)` : '';
  const tables = sweep ? r.settings.map((s) => `<h3>${escapeHtml(s.label)}</h3>${table1Html(r.methods, s.summary)}`).join('\n') : table1Html(r.methods, first.summary);
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>crossmodal-sae fit</title>
<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}table{border-collapse:collapse;font-size:13px;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}</style></head><body>
<h1>crossmodal-sae fit</h1><p>${escapeHtml(r.date)}; methods ${r.methods.map(label).join(', ')}; seeds ${r.seeds.join(', ')}; ${timing}.</p>
<h2>${escapeHtml(tablesTitle(r.settings))}: reconstruction, retrieval, zero-shot</h2><p>Recall and accuracy in %, mean (± sample std over seeds). Retrieval ranks the cosine of L2-normalized latent codes, ties counted against the query.</p>${tables}
${figs['figure7-steering'] ? `<h2>Figure 7: concept steering${of}</h2>${figs['figure7-steering'].svg}<table><tr><th>method</th><th>α</th><th>mAP img</th><th>MRR img</th><th>mAP txt</th><th>MRR txt</th><th>preserve</th></tr>${steerRows.join('')}</table>
<p>Concepts steered per seed, and how many of them through an image latent (or from a text latent) that is dead: it never fires on the evaluation set or, for an aligned pair, on the training pairs. They are scored like the others (every method on the same concepts; <code>steering.deadSlots: 'skip'</code> leaves them out) and listed in eval/*/steering.json and steering.csv (image_slot_alive).</p><table><tr><th>method</th><th>concepts</th><th>dead image slot</th><th>dead text slot</th></tr>${slotRows.join('')}</table>` : ''}
${figs['figure8-monosemanticity'] ? `<h2>Figure 8: monosemanticity${of}</h2>${figs['figure8-monosemanticity'].svg}<table><tr><th>method</th><th>image mean</th><th>image median</th><th>image latents</th><th>text mean</th><th>text median</th><th>text latents</th></tr>${msRows.join('')}</table>` : ''}
${h ? `<h2>Figure 2: cross-modal feature heterogeneity</h2><p>From ${escapeHtml(h.description)}.</p>${figs['figure2-heterogeneity']?.svg ?? ''}<table><tr><th>seed</th><th>correlation bin</th><th>pairs</th><th>mean cosine distance</th></tr>${hetRows.join('')}</table>` : ''}
</body></html>\n`;
  await put('report.html', html);
  return written;
}
