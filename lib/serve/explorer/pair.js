// The pair view: pick a corpus image and a caption, POST /v1/explain, and see the concepts both activate with each
// one's share of the match. The chosen rows live in the hash (#/pair?image=3&text=9).
import { corpusSizes, get, info, post } from './api.js';
import { conceptHref, h, imageFigure, labelText, num, pct } from './dom.js';

let ui = null;

function rowParam(params, name, n) {
  const v = params.get(name);
  if (v === null || v === '') return null;
  const r = Number(v);
  return Number.isInteger(r) && r >= 0 && r < n ? r : null;
}

export const pairView = {
  async mount(main, ctx) {
    ctx.title('Explain a pair');
    main.append(h('h1', { tabindex: -1 }, 'Explain an image–caption pair'),
      h('p', { class: 'lead' }, 'Pick a corpus image and a caption: the service encodes both, and lists the concepts they both activate, each with its share of the match (its image activation times its text activation, over the sum of those products).'));
    let sizes;
    try {
      const i = await info();
      sizes = corpusSizes(i);
    } catch (e) {
      main.append(h('p', { class: 'error', role: 'alert' }, `The service did not answer /v1/info: ${e.message}`));
      return;
    }
    if (!ctx.isCurrent()) return;
    if (!sizes) {
      main.append(h('p', { class: 'error', role: 'alert' }, 'This service has no corpus (start it with a concept index), so there is nothing to pick from.'));
      return;
    }
    const image = h('input', { type: 'number', id: 'pair-image', name: 'image', min: 0, max: sizes.images - 1, step: 1, required: true, inputmode: 'numeric' });
    const text = h('input', { type: 'number', id: 'pair-text', name: 'text', min: 0, max: sizes.texts - 1, step: 1, required: true, inputmode: 'numeric' });
    const random = h('button', { type: 'button', id: 'pair-random' }, 'Random image');
    const explainBtn = h('button', { type: 'submit', id: 'pair-explain', class: 'primary' }, 'Explain');
    const go = (img, txt) => ctx.navigate(`#/pair?image=${img}&text=${txt}`);
    random.addEventListener('click', async () => {
      const img = Math.floor(Math.random() * sizes.images);
      const first = await firstCaption(img);
      go(img, first ?? (Number(text.value) || 0));
    });
    const form = h('form', { class: 'controls', 'aria-label': 'Choose a pair', onsubmit: (e) => { e.preventDefault(); if (form.reportValidity()) go(Number(image.value), Number(text.value)); } },
      h('div', null, h('label', { for: 'pair-image' }, `Image row (0–${sizes.images - 1})`), image),
      h('div', null, h('label', { for: 'pair-text' }, `Caption row (0–${sizes.texts - 1})`), text),
      h('div', { class: 'buttons' }, explainBtn, random));
    const imageCard = h('section', { 'aria-labelledby': 'pair-image-h', class: 'card' }, h('h2', { id: 'pair-image-h' }, 'Image'));
    const captionCard = h('section', { 'aria-labelledby': 'pair-caption-h', class: 'card' }, h('h2', { id: 'pair-caption-h' }, 'Caption'));
    const result = h('section', { 'aria-labelledby': 'pair-result-h', 'aria-live': 'polite', id: 'pair-result' });
    main.append(form, h('div', { class: 'side-by-side' }, imageCard, captionCard), result);
    ui = { ctx, sizes, image, text, imageCard, captionCard, result, go };
    return pairView.update(main, ctx);
  },

  async update(_main, ctx) {
    if (!ui) return;
    ui.ctx = ctx;
    const img = rowParam(ctx.params, 'image', ui.sizes.images);
    const txt = rowParam(ctx.params, 'text', ui.sizes.texts);
    ui.image.value = img ?? '';
    ui.text.value = txt ?? '';
    const body = (card) => { const hd = card.firstChild; card.replaceChildren(hd); return card; };
    body(ui.imageCard); body(ui.captionCard); ui.result.replaceChildren();
    if (img === null || txt === null) {
      ui.result.append(h('h2', { id: 'pair-result-h', class: 'sr-only' }, 'Shared concepts'), h('p', { class: 'empty' }, 'Choose an image row and a caption row, then Explain.'));
      return;
    }
    const [imageInfo, captionInfo, explained] = await Promise.allSettled([
      get(`/v1/corpus/images/${img}`), get(`/v1/corpus/captions/${txt}`), post('/v1/explain', { image: img, text: txt })]);
    if (!ctx.isCurrent()) return;
    if (imageInfo.status === 'fulfilled') ui.imageCard.append(imageFigure({ row: img, ref: imageInfo.value.ref, labels: imageInfo.value.labels, caption: captionsOf(imageInfo.value)[0]?.caption }, null, { listCaptions: false }), captionPicker(imageInfo.value, img, txt));
    else ui.imageCard.append(h('p', { class: 'error', role: 'alert' }, `Could not load image ${img}: ${imageInfo.reason.message}`));
    if (captionInfo.status === 'fulfilled') {
      const c = captionInfo.value;
      ui.captionCard.append(h('blockquote', { class: 'caption' }, c.caption ?? ''), h('p', { class: 'meta' }, `row ${txt}`,
        Number.isInteger(c.image) ? [' · describes ', c.image === img ? `this image (#${c.image})` : h('a', { href: `#/pair?image=${c.image}&text=${txt}` }, `image #${c.image}`)] : null));
    } else ui.captionCard.append(h('p', { class: 'error', role: 'alert' }, `Could not load caption ${txt}: ${captionInfo.reason.message}`));
    ui.result.append(h('h2', { id: 'pair-result-h' }, 'Shared concepts'));
    if (explained.status === 'rejected') {
      ui.result.append(h('p', { class: 'error', role: 'alert' }, `Could not explain the pair: ${explained.reason.message}` + (explained.reason.code ? ` (${explained.reason.code})` : '')));
      return;
    }
    ui.result.append(...explanation(explained.value));
  },
};

async function firstCaption(img) {
  try {
    const r = await get(`/v1/corpus/images/${img}`);
    const c = captionsOf(r)[0];
    return c ? c.row : null;
  } catch { return null; }
}

/** The captions of an image, as [{ row, caption }], from whichever form the corpus route answers. */
function captionsOf(r) {
  const list = Array.isArray(r.captions) ? r.captions : [];
  return list.map((c, i) => (typeof c === 'string' ? { row: Array.isArray(r.textRows) ? r.textRows[i] : null, caption: c } : c)).filter((c) => Number.isInteger(c.row));
}

function captionPicker(r, img, txt) {
  const caps = captionsOf(r);
  if (caps.length === 0) return null;
  return h('div', { class: 'picker' }, h('p', null, 'Captions of this image:'),
    h('ul', null, caps.map((c) => h('li', null,
      c.row === txt ? h('span', { class: 'chosen' }, `#${c.row} (chosen)`) : h('a', { href: `#/pair?image=${img}&text=${c.row}` }, `use #${c.row}`),
      ' ', h('q', null, c.caption)))));
}

function explanation(e) {
  const list = Array.isArray(e.concepts) ? e.concepts : [];
  const parts = [h('p', null, 'Match score ', h('strong', null, num(e.score)), ` from ${list.length} shared concept${list.length === 1 ? '' : 's'}.`)];
  if (list.length === 0) {
    parts.push(h('p', { class: 'empty' }, 'The image and the caption activate no concept in common.'));
    return parts;
  }
  parts.push(h('table', { class: 'shared' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Concept'), h('th', { scope: 'col', class: 'num' }, 'Image activation'), h('th', { scope: 'col', class: 'num' }, 'Text activation'), h('th', { scope: 'col' }, 'Share'))),
    h('tbody', null, list.map((c) => h('tr', null,
      h('td', null, h('a', { href: conceptHref(c.id) }, `${c.id}: ${labelText(c.label)}`)),
      h('td', { class: 'num' }, num(c.image)), h('td', { class: 'num' }, num(c.text)),
      h('td', { class: 'share' }, h('span', { class: 'track', 'aria-hidden': 'true' }, h('span', { class: 'bar', style: `width: ${Math.max(0, Math.min(100, 100 * c.share)).toFixed(1)}%` })), pct(c.share)))))));
  return parts;
}
