// The heterogeneity view (the paper's Figure 2 for this pair): decoder distance 1 - cos(W_dec_image[i], W_dec_text[i])
// against the matched correlation of every concept, a vega-embed scatter (tooltip; click opens the concept), and the
// same points as a table for keyboard and screen-reader use.
import { at, get } from './api.js';
import { conceptHref, h, labelText, num } from './dom.js';

const VENDOR = ['/vendor/vega.min.js', '/vendor/vega-lite.min.js', '/vendor/vega-embed.min.js'].map(at);
let vendor = null;

/** Loads vega, vega-lite and vega-embed (in that order: each build reads the one before from window) once. */
function loadVega() {
  vendor ??= VENDOR.reduce((p, src) => p.then(() => new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  })), Promise.resolve()).catch((e) => { vendor = null; throw e; });
  return vendor;
}

/** The points of GET /v1/heterogeneity, whichever of { points: [...] } or [...] it answers. */
function pointsOf(body) {
  const list = Array.isArray(body) ? body : body.points ?? body.items ?? [];
  return list.map((p) => ({
    id: p.id, label: labelText(p.label), correlation: p.correlation, decoderDistance: p.decoderDistance,
    alive: typeof p.alive === 'object' && p.alive !== null ? (p.alive.image && p.alive.text) : p.alive !== false,
  }));
}

let embedded = null; // the vega-embed result on screen

export const heterogeneityView = {
  unmount() {
    embedded?.finalize(); // stops the view's listeners and removes its tooltip handler
    embedded = null;
    document.getElementById('vg-tooltip-element')?.classList.remove('visible');
  },

  async mount(main, ctx) {
    heterogeneityView.unmount();
    ctx.title('Heterogeneity');
    const chart = h('div', { id: 'het-chart', class: 'chart' });
    const status = h('p', { role: 'status' }, 'Loading…');
    const tableHolder = h('div');
    main.append(
      h('h1', { tabindex: -1 }, 'Cross-modal heterogeneity'),
      h('p', { class: 'lead' }, 'Each point is one aligned concept: how strongly its image and text latents co-activate (correlation, x) against how far apart their decoder directions point (1 − cos, y). The paper’s Figure 2: concepts that fire together in both modalities can still point in different directions. Hover a point for its label; click it to open the concept.'),
      status, chart, tableHolder);
    let points;
    try {
      const [body] = await Promise.all([get('/v1/heterogeneity'), loadVega()]);
      points = pointsOf(body);
    } catch (e) {
      if (ctx.isCurrent()) status.replaceWith(h('p', { class: 'error', role: 'alert' }, `Could not draw the figure: ${e.message}`));
      return;
    }
    if (!ctx.isCurrent()) return;
    const alive = points.filter((p) => p.alive && Number.isFinite(p.correlation) && Number.isFinite(p.decoderDistance));
    status.textContent = `${alive.length} concepts alive on both sides` + (points.length > alive.length ? ` (${points.length - alive.length} with a dead side left out)` : '') + '.';
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      description: `Decoder distance against correlation for ${alive.length} concepts`,
      width: 'container', height: 420,
      data: { values: alive },
      params: [{ name: 'hover', select: { type: 'point', on: 'pointerover', clear: 'pointerout', fields: ['id'] } }],
      mark: { type: 'point', filled: true, cursor: 'pointer', size: 36 },
      encoding: {
        x: { field: 'correlation', type: 'quantitative', title: 'correlation of the image and text latents', scale: { zero: false } },
        y: { field: 'decoderDistance', type: 'quantitative', title: 'decoder distance (1 − cos)', scale: { zero: true } },
        color: { condition: { param: 'hover', empty: false, value: '#d1495b' }, value: '#2a6f97' },
        opacity: { value: 0.75 },
        tooltip: [
          { field: 'id', type: 'quantitative', title: 'concept' },
          { field: 'label', type: 'nominal', title: 'label' },
          { field: 'correlation', type: 'quantitative', title: 'correlation', format: '.3f' },
          { field: 'decoderDistance', type: 'quantitative', title: 'decoder distance', format: '.3f' },
        ],
      },
      config: { font: 'system-ui, sans-serif', axis: { labelFontSize: 12, titleFontSize: 13 } },
    };
    const result = await window.vegaEmbed(chart, spec, { actions: { export: true, source: false, compiled: false, editor: false }, renderer: alive.length > 3000 ? 'canvas' : 'svg' });
    if (!ctx.isCurrent()) { result.finalize(); return; }
    embedded = result;
    result.view.addEventListener('click', (_event, item) => {
      if (item && item.datum && Number.isInteger(item.datum.id)) ctx.navigate(conceptHref(item.datum.id));
    });
    chart.setAttribute('role', 'figure');
    chart.setAttribute('aria-label', spec.description + '; the table below lists the same points');
    tableHolder.append(pointTable(alive));
  },
};

/** The strongest-correlated concepts with their distances: the figure's points in a keyboard-usable form. */
function pointTable(points) {
  const top = [...points].sort((a, b) => b.correlation - a.correlation || a.id - b.id).slice(0, 25);
  return h('section', { 'aria-labelledby': 'het-table-h' },
    h('h2', { id: 'het-table-h' }, `The ${top.length} most correlated concepts`),
    h('table', null,
      h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, 'Id'), h('th', { scope: 'col' }, 'Label'), h('th', { scope: 'col', class: 'num' }, 'Correlation'), h('th', { scope: 'col', class: 'num' }, 'Decoder distance'))),
      h('tbody', null, top.map((p) => h('tr', null,
        h('td', { class: 'num' }, String(p.id)), h('td', null, h('a', { href: conceptHref(p.id) }, p.label)),
        h('td', { class: 'num' }, num(p.correlation)), h('td', { class: 'num' }, num(p.decoderDistance)))))));
}
