// DOM and formatting helpers of the explorer: elements are built with textContent only (corpus text is never HTML).
import { at } from './api.js';

/** h('a', { href: '#/x', class: 'c' }, 'text', child): an element; null/false children and attributes are skipped. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name in el && typeof value !== 'string') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * A number with `digits` decimals; '–' for null, undefined or NaN (e.g. a correlation where a side never fires).
 * A value that rounds to zero prints without a sign (0.000, never -0.000).
 */
export function num(x, digits = 3) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  const s = x.toFixed(digits);
  return Number(s) === 0 ? s.replace(/^-/, '') : s;
}

/** A fraction as a percentage (fire rates, shares). */
export function pct(x, digits = 1) {
  return typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '–';
}

/** Below this z-score the first label word is not distinctive at the two-sided 5% level: the label is tentative. */
export const WEAK_LABEL_Z = 1.96;

/**
 * The label of a concept, or a stand-in saying why it has none: the text latent never fires on the corpus captions
 * (an image-only concept), or neither side fires (a dead one).
 */
export function labelText(label, alive) {
  if (typeof label === 'string' && label.length > 0) return label;
  if (alive && alive.image && !alive.text) return '(no caption fires)';
  if (alive && !alive.image && !alive.text) return '(dead: fires on neither side)';
  return '(no label)';
}

/** Whether a label is tentative: it has one, and the z-score of its first word (`z`) is below WEAK_LABEL_Z. */
export function isWeakLabel(label, z) {
  return typeof label === 'string' && label.length > 0 && typeof z === 'number' && z < WEAK_LABEL_Z;
}

/**
 * A concept's label as an element: span.label, span.label.placeholder for a stand-in; markWeak(el, z) marks it.
 * `z` (the first label word's z-score) may be unknown yet (the list learns it later).
 */
export function labelElement(label, alive, z) {
  const has = typeof label === 'string' && label.length > 0;
  const el = h('span', { class: has ? 'label' : 'label placeholder' }, labelText(label, alive));
  if (isWeakLabel(label, z)) markWeak(el, z);
  return el;
}

/** Marks a label element as weak: muted, with a visible "weak" tag and the reason as its title. */
export function markWeak(el, z) {
  if (el.classList.contains('weak')) return;
  el.classList.add('weak');
  el.title = `weak label: z < ${WEAK_LABEL_Z} (its first word has z = ${num(z, 2)})`;
  el.append(h('span', { class: 'weak-tag' }, ' weak', h('span', { class: 'sr-only' }, ` label: z < ${WEAK_LABEL_Z}`)));
}

export function conceptHref(id) {
  return `#/concept/${id}`;
}

/** Whether both sides of a concept fire on the corpus / training data. */
export function aliveText(alive) {
  if (!alive) return '–';
  if (alive.image && alive.text) return 'both';
  if (alive.image) return 'image only';
  if (alive.text) return 'text only';
  return 'dead';
}

/** Where an image reference is shown from: an http(s) URL as is, a relative path under /images/. */
export function imageUrl(ref) {
  if (typeof ref !== 'string' || ref.length === 0) return null;
  if (/^https?:\/\//i.test(ref)) return ref;
  return at('/images/' + ref.split('/').map(encodeURIComponent).join('/'));
}

/**
 * A figure for one corpus image: its thumbnail when the reference loads (alt text: its caption), otherwise its row
 * id and caption text; labels (e.g. the toy scene's objects) as a list.
 */
export function imageFigure(item, extra, { listCaptions = true } = {}) {
  const caption = item.caption ?? (Array.isArray(item.captions) ? item.captions[0] : null);
  const url = imageUrl(item.ref);
  const fallback = h('div', { class: 'noimg', 'aria-hidden': url ? 'true' : null, hidden: url ? true : null }, `image #${item.row}`);
  const fig = h('figure', { class: 'image' });
  if (url) {
    const img = h('img', { src: url, alt: caption ? `Image ${item.row}: ${caption}` : `Image ${item.row}`, loading: 'lazy', decoding: 'async', width: 160, height: 160 });
    img.addEventListener('error', () => { img.remove(); fallback.hidden = false; fallback.removeAttribute('aria-hidden'); }, { once: true });
    fig.append(img);
  }
  fig.append(fallback);
  const captions = Array.isArray(item.captions) ? item.captions.map((c) => (typeof c === 'string' ? c : c.caption)) : caption ? [caption] : [];
  fig.append(h('figcaption', null,
    h('span', { class: 'row' }, `row ${item.row}`), extra ?? null,
    listCaptions && captions.length ? h('ul', { class: 'captions' }, captions.map((c) => h('li', null, c))) : null,
    Array.isArray(item.labels) && item.labels.length ? h('ul', { class: 'labels', 'aria-label': 'labels' }, item.labels.map((l) => h('li', null, l))) : null));
  return fig;
}
