// The explorer's entry: hash routing (#/concepts, #/concept/12, #/heterogeneity, #/pair), the header's facts.
import { corpusSizes, info } from './api.js';
import { h } from './dom.js';
import { conceptList } from './list.js';
import { conceptPage } from './concept.js';
import { heterogeneityView } from './heterogeneity.js';
import { pairView } from './pair.js';

const views = { concepts: conceptList, concept: conceptPage, heterogeneity: heterogeneityView, pair: pairView };
const main = document.getElementById('main');
let current = null; // { name, view } of the view on screen
let token = 0;
let lastHash = null;
let routed = false;

/** '#/concept/12?x=1' -> { name: 'concept', args: ['12'], params: URLSearchParams('x=1') }. */
function parse(hash) {
  const [route, q] = hash.replace(/^#\/?/, '').split('?', 2);
  const [name, ...args] = route.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: name || 'concepts', args, params: new URLSearchParams(q ?? '') };
}

/** Goes to a hash; replace: true rewrites the current history entry (typing in a search box). */
export function navigate(hash, { replace = false } = {}) {
  if (location.hash === hash) return;
  if (replace) history.replaceState(null, '', hash);
  else history.pushState(null, '', hash);
  route();
}

function route() {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor, not a route
  if (location.hash === lastHash) return; // popstate and hashchange both report one back step
  lastHash = location.hash;
  const { name, args, params } = parse(location.hash);
  const view = views[name];
  const my = ++token;
  const ctx = {
    args, params, navigate,
    isCurrent: () => my === token,
    title: (t) => { if (my === token) document.title = `${t} · crossmodal-sae explorer`; },
  };
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    const on = a.dataset.view === name || (name === 'concept' && a.dataset.view === 'concepts');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (current && current.view !== view) current.view.unmount?.(); // leaving a view: let it free what it holds
  if (!view) {
    current = null;
    main.replaceChildren(h('h1', { tabindex: -1 }, 'Not found'), h('p', null, 'No view is called ', h('code', null, name), '. ', h('a', { href: '#/concepts' }, 'Go to the concept list'), '.'));
    ctx.title('Not found');
    return;
  }
  if (current && current.view === view && view.update) {
    view.update(main, ctx);
    return;
  }
  const first = !routed;
  routed = true;
  current = { name, view };
  main.replaceChildren();
  Promise.resolve(view.mount(main, ctx)).then(() => {
    // Move focus to the new view's heading so that a screen reader announces it (not on the first load).
    if (!first && ctx.isCurrent()) main.querySelector('h1')?.focus({ preventScroll: false });
  });
}

async function header() {
  const el = document.getElementById('info');
  try {
    const i = await info();
    const c = corpusSizes(i);
    el.textContent = `m = ${i.m} concepts · d = ${i.d}` + (c ? ` · corpus: ${c.images} images, ${c.texts} captions` : ' · no corpus') + (i.concepts ? '' : ' · no concept index');
  } catch (e) {
    el.textContent = `The service did not answer /v1/info: ${e.message}`;
  }
}

document.getElementById('skip-link').addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
window.addEventListener('hashchange', route);
window.addEventListener('popstate', route);
if (!location.hash || location.hash === '#' || location.hash === '#/') history.replaceState(null, '', '#/concepts');
header();
route();
