// The concept list: GET /v1/concepts (sortable, searchable by label word, paginated); state in the hash. The
// summaries carry no label z-scores, so the label of each row shown is checked with GET /v1/concepts/:id (once per
// concept and page load) and marked weak when its first word's z is below 1.96.
import { get, query } from './api.js';
import { aliveText, conceptHref, h, labelElement, num, pct } from './dom.js';

const SORTS = { id: 'asc', correlation: 'desc', corpusCorrelation: 'desc', fireRate: 'desc', decoderDistance: 'desc' };
const LIMITS = [25, 50, 100, 200];
const COLUMNS = [
  { key: 'id', title: 'Id', sort: 'id', num: true },
  { key: 'label', title: 'Label' },
  { key: 'correlation', title: 'Correlation', sort: 'correlation', num: true, hint: 'image latent i with text latent i on the training data' },
  { key: 'corpusCorrelation', title: 'Corpus correlation', sort: 'corpusCorrelation', num: true, hint: 'the same correlation on the corpus (– where a side never fires there)' },
  { key: 'fireRate', title: 'Fire rate (image / text)', sort: 'fireRate', num: true },
  { key: 'decoderDistance', title: 'Decoder distance', sort: 'decoderDistance', num: true, hint: '1 − cos of the image and text decoder rows' },
  { key: 'alive', title: 'Alive' },
];

/** The list's state from the hash's parameters, with defaults and bounds. */
function state(params) {
  const sort = SORTS[params.get('sort')] ? params.get('sort') : 'correlation';
  const order = params.get('order') === 'asc' || params.get('order') === 'desc' ? params.get('order') : SORTS[sort];
  const limit = LIMITS.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 50;
  const offset = Math.max(0, Math.floor(Number(params.get('offset')) || 0));
  const alive = ['both', 'any', 'all'].includes(params.get('alive')) ? params.get('alive') : 'all';
  return { sort, order, limit, offset, alive, q: (params.get('q') ?? '').trim() };
}

function hashOf(s) {
  const d = { sort: 'correlation', limit: 50, offset: 0, alive: 'all', q: '' };
  return '#/concepts' + query({
    sort: s.sort === d.sort ? null : s.sort, order: s.order === SORTS[s.sort] ? null : s.order,
    q: s.q || null, alive: s.alive === d.alive ? null : s.alive, offset: s.offset || null, limit: s.limit === d.limit ? null : s.limit,
  });
}

let ui = null; // the mounted controls and table of the list

export const conceptList = {
  mount(main, ctx) {
    const cur = () => state(ui.ctx.params); // the state of the latest route, not of the mount's
    const go = (change, opts) => ctx.navigate(hashOf({ ...cur(), ...change }), opts);
    let timer = null;
    const q = h('input', { type: 'search', id: 'concept-q', name: 'q', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. dog', 'aria-describedby': 'concept-q-hint' });
    q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => go({ q: q.value.trim(), offset: 0 }, { replace: true }), 250); });
    const alive = h('select', { id: 'concept-alive', name: 'alive' },
      h('option', { value: 'all' }, 'all concepts'), h('option', { value: 'both' }, 'alive on both sides'), h('option', { value: 'any' }, 'alive on either side'));
    alive.addEventListener('change', () => go({ alive: alive.value, offset: 0 }));
    const limit = h('select', { id: 'concept-limit', name: 'limit' }, LIMITS.map((n) => h('option', { value: String(n) }, String(n))));
    limit.addEventListener('change', () => go({ limit: Number(limit.value), offset: 0 }));
    const form = h('form', { class: 'controls', role: 'search', 'aria-label': 'Filter concepts', onsubmit: (e) => { e.preventDefault(); clearTimeout(timer); go({ q: q.value.trim(), offset: 0 }); } },
      h('div', null, h('label', { for: 'concept-q' }, 'Label word'), q, h('small', { id: 'concept-q-hint' }, 'concepts whose label contains the word')),
      h('div', null, h('label', { for: 'concept-alive' }, 'Show'), alive),
      h('div', null, h('label', { for: 'concept-limit' }, 'Per page'), limit));
    const headRow = h('tr');
    const heads = {};
    for (const c of COLUMNS) {
      const th = h('th', { scope: 'col', class: c.num ? 'num' : null, title: c.hint ?? null });
      if (c.sort) {
        const btn = h('button', { type: 'button', class: 'sort', 'data-sort': c.sort }, c.title, h('span', { class: 'arrow', 'aria-hidden': 'true' }));
        btn.addEventListener('click', () => {
          const s = cur();
          go({ sort: c.sort, order: s.sort === c.sort ? (s.order === 'asc' ? 'desc' : 'asc') : SORTS[c.sort], offset: 0 });
        });
        th.append(btn);
        heads[c.sort] = th;
      } else th.append(c.title);
      headRow.append(th);
    }
    const tbody = h('tbody');
    const table = h('table', { class: 'concepts', 'aria-describedby': 'concept-status' }, h('caption', { class: 'sr-only' }, 'Concepts of the aligned pair'), h('thead', null, headRow), tbody);
    const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'concept-status' });
    const prev = h('button', { type: 'button', id: 'concept-prev' }, '← Previous');
    const next = h('button', { type: 'button', id: 'concept-next' }, 'Next →');
    prev.addEventListener('click', () => { const s = cur(); go({ offset: Math.max(0, s.offset - s.limit) }); });
    next.addEventListener('click', () => { const s = cur(); go({ offset: s.offset + s.limit }); });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    main.append(
      h('h1', { tabindex: -1 }, 'Concepts'),
      h('p', { class: 'lead' }, 'Every aligned latent index: its automatic label (the most distinctive words of its top captions), the correlation of its image and text latents, how often each side fires, and how far apart their decoder directions point. Column buttons sort; open a concept for its top images and captions.'),
      form, error,
      h('div', { class: 'table-wrap' }, table),
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, status, next));
    ui = { ctx, q, alive, limit, heads, table, tbody, status, prev, next, error };
    return conceptList.update(main, ctx);
  },

  async update(_main, ctx) {
    ui.ctx = ctx;
    const s = state(ctx.params);
    ctx.title(s.q ? `Concepts matching “${s.q}”` : 'Concepts');
    if (document.activeElement !== ui.q) ui.q.value = s.q;
    ui.alive.value = s.alive;
    ui.limit.value = String(s.limit);
    for (const [key, th] of Object.entries(ui.heads)) {
      const on = key === s.sort;
      if (on) th.setAttribute('aria-sort', s.order === 'asc' ? 'ascending' : 'descending'); else th.removeAttribute('aria-sort');
      th.querySelector('.arrow').textContent = on ? (s.order === 'asc' ? ' ▲' : ' ▼') : '';
    }
    ui.status.textContent = 'Loading…';
    ui.table.dataset.labels = 'pending';
    let page;
    try {
      page = await get('/v1/concepts' + query({ sort: s.sort, order: s.order, q: s.q, offset: s.offset, limit: s.limit, alive: s.alive }));
    } catch (e) {
      if (!ctx.isCurrent()) return;
      ui.error.hidden = false;
      ui.error.textContent = `Could not list the concepts: ${e.message}` + (e.code ? ` (${e.code})` : '');
      ui.status.textContent = '';
      ui.tbody.replaceChildren();
      return;
    }
    if (!ctx.isCurrent()) return;
    ui.error.hidden = true;
    const rows = page.items.map(row);
    ui.tbody.replaceChildren(...rows.map((r) => r.tr));
    if (page.items.length === 0) ui.tbody.append(h('tr', null, h('td', { colspan: COLUMNS.length, class: 'empty' }, s.q ? `No concept's label contains “${s.q}”.` : 'No concepts.')));
    const from = page.items.length ? page.offset + 1 : 0;
    ui.status.textContent = `${from}–${page.offset + page.items.length} of ${page.total}` + (s.q ? ` matching “${s.q}”` : '');
    ui.prev.disabled = page.offset === 0;
    ui.next.disabled = page.offset + page.items.length >= page.total;
    ui.table.dataset.labels = 'checked'; // weak labels are marked as the rows are made (tests wait for this)
  },
};

/** One concept's row: { c, tr, label } (a weak label, first-word z < 1.96 in c.labelZ, is marked). */
function row(c) {
  const label = labelElement(c.label, c.alive, c.labelZ ?? undefined);
  const tr = h('tr', null,
    h('td', { class: 'num' }, String(c.id)),
    h('td', null, h('a', { href: conceptHref(c.id) }, label)),
    h('td', { class: 'num' }, num(c.correlation)),
    h('td', { class: 'num' }, num(c.corpusCorrelation)),
    h('td', { class: 'num' }, `${pct(c.fireRate?.image, 2)} / ${pct(c.fireRate?.text, 2)}`),
    h('td', { class: 'num' }, num(c.decoderDistance)),
    h('td', null, aliveText(c.alive)));
  return { c, tr, label };
}
