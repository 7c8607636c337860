// The concept page (the paper's Figure 3 view): GET /v1/concepts/:id: statistics, top images and top captions side
// by side, the decoder distance, and the partner latents on each side (linked).
import { get, info } from './api.js';
import { aliveText, conceptHref, h, imageFigure, labelElement, labelText, num, pct } from './dom.js';

export const conceptPage = {
  async mount(main, ctx) {
    const id = Number(ctx.args[0]);
    if (!Number.isInteger(id) || id < 0) {
      ctx.title('No such concept');
      main.append(h('h1', { tabindex: -1 }, 'No such concept'), h('p', null, `“${ctx.args[0] ?? ''}” is not a concept id. `, h('a', { href: '#/concepts' }, 'Back to the list'), '.'));
      return;
    }
    ctx.title(`Concept ${id}`);
    const status = h('p', { role: 'status' }, 'Loading…');
    main.append(status);
    let m = null; // the number of concepts, when /v1/info answers (else the concept's own answer says what is wrong)
    try { m = (await info()).m; } catch { /* the request below reports the failure */ }
    if (!ctx.isCurrent()) return;
    if (Number.isInteger(m) && id >= m) {
      ctx.title('No such concept');
      main.replaceChildren(h('h1', { tabindex: -1 }, 'No such concept'), h('p', null, `There is no concept ${id}: this pair has concepts 0–${m - 1}. `, h('a', { href: '#/concepts' }, 'Back to the list'), '.'));
      return;
    }
    let c;
    try {
      c = await get(`/v1/concepts/${id}`);
    } catch (e) {
      if (!ctx.isCurrent()) return;
      main.replaceChildren(h('h1', { tabindex: -1 }, `Concept ${id}`), h('p', { class: 'error', role: 'alert' }, `Could not load concept ${id}: ${e.message}` + (e.code ? ` (${e.code})` : '')), h('p', null, h('a', { href: '#/concepts' }, 'Back to the list')));
      return;
    }
    if (!ctx.isCurrent()) return;
    ctx.title(`Concept ${id}: ${labelText(c.label, c.alive)}`);
    main.replaceChildren(
      h('nav', { class: 'crumbs', 'aria-label': 'Concept navigation' },
        h('a', { href: '#/concepts' }, '← All concepts'),
        id > 0 ? h('a', { href: conceptHref(id - 1), rel: 'prev' }, `Concept ${id - 1}`) : null,
        Number.isInteger(m) && id + 1 < m ? h('a', { href: conceptHref(id + 1), rel: 'next' }, `Concept ${id + 1}`) : null),
      h('h1', { tabindex: -1 }, h('span', { class: 'muted' }, `Concept ${id}: `), labelElement(c.label, c.alive, c.words?.[0]?.z)),
      stats(c),
      words(c.words),
      h('section', { class: 'fig3', 'aria-labelledby': 'fig3-h' },
        h('h2', { id: 'fig3-h' }, 'Top images and top captions'),
        h('div', { class: 'side-by-side' },
          h('section', { 'aria-labelledby': 'top-images-h' },
            h('h3', { id: 'top-images-h' }, `Top images (image latent ${id})`),
            c.topImages.length
              ? h('ol', { class: 'top-images' }, c.topImages.map((it) => h('li', null, imageFigure(it, h('span', { class: 'value' }, ` · activation ${num(it.value)}`)))))
              : h('p', { class: 'empty' }, 'This latent never fires on the corpus images.')),
          h('section', { 'aria-labelledby': 'top-captions-h' },
            h('h3', { id: 'top-captions-h' }, `Top captions (text latent ${id})`),
            c.topCaptions.length
              ? h('ol', { class: 'top-captions' }, c.topCaptions.map((it) => h('li', null,
                h('q', null, it.caption ?? ''),
                h('span', { class: 'meta' }, ` row ${it.row} · activation ${num(it.value)}`,
                  Number.isInteger(it.image) ? [' · ', h('a', { href: `#/pair?image=${it.image}&text=${it.row}` }, `explain with image #${it.image}`)] : null))))
              : h('p', { class: 'empty' }, 'This latent never fires on the corpus captions.')))),
      h('section', { class: 'partners', 'aria-labelledby': 'partners-h' },
        h('h2', { id: 'partners-h' }, 'Partners'),
        h('p', { class: 'lead' }, 'The latents each side correlates with most on the corpus. A concept split across several latents, or two concepts merged into one, shows here.'),
        h('div', { class: 'side-by-side' },
          partnerTable(`Text latents that image latent ${id} correlates with`, c.imagePartners, id),
          partnerTable(`Image latents that text latent ${id} correlates with`, c.textPartners, id))));
  },
};

function stats(c) {
  const rows = [
    ['Alive', aliveText(c.alive)],
    ['Correlation (training data)', num(c.correlation)],
    ['Correlation (corpus)', num(c.corpusCorrelation)],
    ['Fire rate, image', pct(c.fireRate?.image, 2)],
    ['Fire rate, text', pct(c.fireRate?.text, 2)],
    ['Decoder distance (1 − cos)', num(c.decoderDistance)],
    ['Cosine of the image and text decoder directions', num(1 - c.decoderDistance)],
  ];
  return h('dl', { class: 'stats' }, rows.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v))));
}

function words(ws) {
  if (!Array.isArray(ws) || ws.length === 0) return null;
  return h('section', { 'aria-labelledby': 'words-h' },
    h('h2', { id: 'words-h' }, 'Label words'),
    h('p', { class: 'lead' }, 'The most distinctive words of the top captions against the whole caption corpus (weighted log-odds z-scores).'),
    h('ul', { class: 'words' }, ws.map((w) => h('li', null, h('a', { href: `#/concepts?q=${encodeURIComponent(w.word)}`, title: `concepts whose label contains “${w.word}”` }, w.word), h('span', { class: 'z' }, ` z = ${num(w.z, 2)}`)))));
}

function partnerTable(title, partners, id) {
  const list = Array.isArray(partners) ? partners : [];
  return h('section', null,
    h('h3', null, title),
    list.length === 0 ? h('p', { class: 'empty' }, 'None (the latent never fires on the corpus).') :
      h('table', { class: 'partners-table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Concept'), h('th', { scope: 'col', class: 'num' }, 'Correlation'))),
        h('tbody', null, list.map((p) => h('tr', { class: p.index === id ? 'matched' : null },
          h('td', null, h('a', { href: conceptHref(p.index) }, `Concept ${p.index}`), p.index === id ? ' (matched)' : ''),
          h('td', { class: 'num' }, num(p.correlation)))))));
}
