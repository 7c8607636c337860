/**
 * The web explorer in a real browser: a tiny toy run (toy dataset, post-hoc pair, concept index) served by the real
 * createService on a loopback port, driven by headless Chromium through playwright-core (one launch). It sorts,
 * searches, opens a concept, reads its captions, checks the prev/next links, weak-label marks and label placeholders,
 * opens the heterogeneity and pair views, and fails on any console
 * error, page error, failed request or HTTP error answer. Screenshots go to $CMSAE_SCREENSHOTS (else a temp dir).
 * Skips, saying so, only where no Chromium exists.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';

import { AlignedPair, ConceptIndex, Trainer, conceptIndexFor, conceptService, createService, generateToy, writeToy } from '../../lib/index.js';
import { tempDir } from '../helpers/tmp.js';

type Service = Awaited<ReturnType<typeof createService>>;

/** $CHROMIUM_PATH when set (only it), else Debian's and Ubuntu's usual places. */
const CHROMIUM_CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** A toy dataset, a post-hoc pair trained on it for a few epochs, and the pair's concept index (a few seconds). */
async function toyRun(dir: string): Promise<{ index: ConceptIndex; pairDir: string }> {
  const toyDir = path.join(dir, 'toy');
  await writeToy(toyDir, generateToy({ d: 48, objects: 16, imageAttributes: 6, textAttributes: 6, trainPairs: 4000, evalImages: 150, captionsPerImage: 2, zeroShotImages: 40, externalDim: 8, seed: 5 }));
  const run = await new Trainer({
    method: 'posthoc',
    data: { image: { path: path.join(toyDir, 'train_image.npy') }, text: { path: path.join(toyDir, 'train_text.npy') }, valFraction: 0 },
    sae: { m: 64, k: 4 },
    train: { epochs: 8, batchSize: 200, lr: 3e-3, schedule: 'warmup-constant', warmupRatio: 0.02 },
  }, { out: path.join(dir, 'run') }).run();
  const pairDir = run.models.pair!;
  const { index } = await conceptIndexFor(pairDir, { toy: toyDir }, { topN: 8, partners: 4 });
  return { index, pairDir };
}

describe('web explorer in headless Chromium', function () {
  this.timeout(180_000);
  const executablePath = CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  const tmp = tempDir('cmsae-explorer-');
  const shots = process.env.CMSAE_SCREENSHOTS || path.join(tmp.dir, 'screenshots');
  let index: ConceptIndex;
  let pairDir = '';
  let app: Service | null = null;
  let browser: Browser | null = null;
  let page: Page;
  let base = '';
  const problems: string[] = [];

  before(async function () {
    if (!executablePath) {
      console.log(`      (skipped: no Chromium at ${CHROMIUM_CANDIDATES.join(', ')}; install Debian's with 'apt-get install -y chromium' or set CHROMIUM_PATH)`);
      this.skip();
    }
    mkdirSync(shots, { recursive: true });
    const run = await toyRun(tmp.dir);
    index = run.index;
    pairDir = run.pairDir;
    app = await createService({ pair: run.pairDir, concepts: index, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    if (browser && !process.env.CMSAE_SCREENSHOTS) console.log(`      screenshots: ${shots} (removed; set CMSAE_SCREENSHOTS to keep them)`);
    tmp.cleanup();
  });

  afterEach(function () {
    const seen = problems.splice(0); // each test answers for its own
    if (this.currentTest?.state !== 'pending') expect(seen, seen.join('\n')).to.deep.equal([]);
  });

  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  /** Waits for a condition evaluated in the page (an expression: the test's tsconfig has no DOM types). */
  const until = (expr: string) => page.waitForFunction(expr);
  const hashIs = (h: string) => until(`location.hash === ${JSON.stringify(h)}`);
  const firstIdIs = (id: number) => until(`document.querySelector('table.concepts tbody tr td')?.textContent === ${JSON.stringify(String(id))}`);
  /** The text of one column of the concept list's body rows. */
  const column = (i: number) => page.locator(`table.concepts tbody tr td:nth-child(${i})`).allInnerTexts();

  it('lists the concepts, and a column header sorts them (again: the other way)', async () => {
    await page.goto(`${base}/`);
    await page.locator('table.concepts tbody tr').first().waitFor();
    const summaries = index.summaries();
    expect(await page.locator('#concept-status').innerText()).to.contain(`of ${summaries.length}`);
    await page.getByRole('button', { name: /Decoder distance/ }).click();
    await until(`location.hash.includes('sort=decoderDistance')`);
    await page.locator('th[aria-sort="descending"] >> text=Decoder distance').waitFor();
    const want = [...summaries].sort((a, b) => b.decoderDistance - a.decoderDistance || a.id - b.id).slice(0, 50);
    await firstIdIs(want[0].id);
    expect((await column(1)).map(Number)).to.deep.equal(want.map((c) => c.id));
    await page.getByRole('button', { name: /Decoder distance/ }).click(); // ascending now
    const up = [...summaries].sort((a, b) => a.decoderDistance - b.decoderDistance || a.id - b.id);
    await firstIdIs(up[0].id);
    const dists = (await column(6)).map(Number);
    for (let i = 1; i < dists.length; i++) expect(dists[i]).to.be.at.least(dists[i - 1]);
    await shot('list-sorted');
  });

  it('searches the list by a label word', async () => {
    const labelled = index.summaries().filter((c) => c.label !== '');
    expect(labelled.length, 'the toy run has labelled concepts').to.be.above(0);
    // The route keeps the labels with a word starting with the query (docs/serve.md): 'dog' finds 'dog' and 'dogs'.
    const tokens = (label: string) => label.toLowerCase().split(/[^\p{L}\p{N}]+/u);
    const hasWord = (label: string, w: string) => tokens(label).some((t) => t.startsWith(w));
    const word = tokens(labelled[0].label)[0];
    const expected = labelled.filter((c) => hasWord(c.label, word)).map((c) => c.id);
    await page.getByLabel('Label word').fill(word);
    await page.getByLabel('Label word').press('Enter');
    await until(`new URLSearchParams(location.hash.split('?')[1]).get('q') === ${JSON.stringify(word)}`);
    await page.locator('#concept-status', { hasText: `of ${expected.length} matching` }).waitFor();
    const labels = await column(2);
    expect(labels).to.have.length(Math.min(50, expected.length));
    for (const l of labels) expect(hasWord(l, word), `${l} has a word starting with ${word}`).to.equal(true);
    expect((await column(1)).map(Number).sort((a, b) => a - b)).to.deep.equal(expected.slice(0, 50).sort((a, b) => a - b));
    await shot('list-search');
  });

  it('opens a concept from the list and shows its top captions and images (Figure 3 view) and partners', async () => {
    const first = await page.locator('table.concepts tbody tr').first();
    const id = Number(await first.locator('td').first().innerText());
    await first.getByRole('link').click();
    await hashIs(`#/concept/${id}`);
    await page.locator('.top-captions li').first().waitFor();
    const c = index.concept(id);
    const captions = (await page.locator('.top-captions li q').allInnerTexts());
    expect(captions).to.deep.equal(index.captions(c.topCaptions.map((t) => t.row)));
    const imageRows = await page.locator('.top-images figcaption .row').allInnerTexts();
    expect(imageRows).to.deep.equal(c.topImages.map((t) => `row ${t.row}`));
    expect(await page.locator('h1').innerText()).to.contain(c.label);
    expect(await page.locator('.stats').innerText()).to.contain(c.decoderDistance.toFixed(3));
    expect(await page.locator('.partners-table tbody tr').count()).to.equal(c.imagePartners.length + c.textPartners.length);
    expect(await page.title()).to.contain(`Concept ${id}`);
    await shot('concept');
    const partner = c.imagePartners.find((p) => p.index !== id);
    if (partner) {
      await page.locator('.partners-table a', { hasText: `Concept ${partner.index}` }).first().click();
      await hashIs(`#/concept/${partner.index}`);
      await page.locator('h1', { hasText: `Concept ${partner.index}` }).waitFor();
    }
  });

  it('draws the heterogeneity figure with vega-embed: a tooltip on hover, a click opens the concept', async () => {
    await page.getByRole('link', { name: 'Heterogeneity' }).click();
    const points = page.locator('#het-chart .mark-symbol path');
    await points.first().waitFor();
    const alive = index.summaries().filter((c) => c.alive.image && c.alive.text && Number.isFinite(c.correlation) && Number.isFinite(c.decoderDistance));
    expect(await points.count()).to.equal(alive.length);
    await shot('heterogeneity');
    const point = points.nth(0);
    await point.hover();
    await page.locator('#vg-tooltip-element.visible').waitFor();
    const tip = await page.locator('#vg-tooltip-element').innerText();
    const id = Number(/concept\s+(\d+)/.exec(tip)?.[1]);
    expect(Number.isInteger(id), tip).to.equal(true);
    await point.click();
    await hashIs(`#/concept/${id}`);
    await page.locator('h1', { hasText: `Concept ${id}` }).waitFor();
  });

  it('explains a corpus image and one of its captions: the concepts both codes activate', async () => {
    const active = (side: 'image' | 'text', row: number) => {
      const c = index.codes(side);
      const ids = new Set<number>();
      for (let j = 0; j < c.k; j++) if (c.values[row * c.k + j] > 0) ids.add(c.indices[row * c.k + j]);
      return ids;
    };
    const imageOf = (t: number) => index.imageOfText()?.[t] ?? t;
    const sharedOf = (t: number) => { const img = active('image', imageOf(t)); return [...active('text', t)].filter((i) => img.has(i)).sort((a, b) => a - b); };
    // The first caption that shares at least two concepts with its own image (the toy run has many).
    let text = 0;
    while (text < index.meta.corpus.texts && sharedOf(text).length < 2) text++;
    expect(text, 'a caption sharing two concepts with its image').to.be.below(index.meta.corpus.texts);
    const image = imageOf(text), shared = sharedOf(text);
    await page.goto(`${base}/#/pair?image=${image}&text=${text}`);
    await page.locator('table.shared tbody tr').first().waitFor();
    const shown = (await page.locator('table.shared tbody tr td:first-child a').allInnerTexts()).map((t) => Number(t.split(':')[0])).sort((a, b) => a - b);
    expect(shown).to.deep.equal(shared);
    expect(await page.locator('blockquote.caption').innerText()).to.equal(index.captions([text])[0]);
    await shot('pair');
  });

  it('links the previous and next concepts only where they exist; an id past the last says so without a 404', async () => {
    const m = index.m;
    await page.goto(`${base}/#/concept/${m - 1}`);
    await page.locator('h1', { hasText: `Concept ${m - 1}` }).waitFor();
    await page.locator('.stats').waitFor();
    expect(await page.locator('.crumbs a[rel="next"]').count(), 'no next link on the last concept').to.equal(0);
    expect(await page.locator('.crumbs a[rel="prev"]').innerText()).to.equal(`Concept ${m - 2}`);
    await page.goto(`${base}/#/concept/0`);
    await page.locator('.stats').waitFor();
    expect(await page.locator('.crumbs a[rel="prev"]').count(), 'no previous link on concept 0').to.equal(0);
    expect(await page.locator('.crumbs a[rel="next"]').innerText()).to.equal('Concept 1');
    await page.goto(`${base}/#/concept/${m}`);
    await page.locator('h1', { hasText: 'No such concept' }).waitFor();
    expect(await page.locator('main').innerText()).to.contain(`0–${m - 1}`);
  });

  it('sorts by corpus correlation, from the address and from its column header', async () => {
    await page.goto(`${base}/#/concepts?alive=any&sort=corpusCorrelation&order=asc&limit=100`);
    await page.locator('th[aria-sort="ascending"]', { hasText: 'Corpus correlation' }).waitFor();
    expect(await page.locator('th[aria-sort]').count(), 'one sorted column').to.equal(1);
    const alive = index.summaries().filter((c) => c.alive.image || c.alive.text);
    const byCorpus = (dir: number) => [...alive].sort((a, b) => {
      const an = Number.isNaN(a.corpusCorrelation), bn = Number.isNaN(b.corpusCorrelation);
      if (an || bn) return an === bn ? a.id - b.id : an ? 1 : -1;
      return dir * (a.corpusCorrelation - b.corpusCorrelation) || a.id - b.id;
    }).map((c) => c.id);
    await firstIdIs(byCorpus(1)[0]);
    expect((await column(1)).map(Number)).to.deep.equal(byCorpus(1));
    await page.getByRole('button', { name: /Corpus correlation/ }).click(); // the other way
    await until(`location.hash.includes('sort=corpusCorrelation') && !location.hash.includes('order=asc')`);
    await page.locator('th[aria-sort="descending"]', { hasText: 'Corpus correlation' }).waitFor();
    await firstIdIs(byCorpus(-1)[0]);
    expect((await column(1)).map(Number)).to.deep.equal(byCorpus(-1));
    await page.locator('table.concepts[data-labels="checked"]').waitFor();
  });

  it('shows an image-only concept with a placeholder label and prints a tiny negative correlation as 0.000', async () => {
    // The toy run has no image-only concept: the service's answers for concept 0 are edited to make one.
    const imageOnly = <T extends Record<string, unknown>>(c: T): T => ({ ...c, label: '', words: [], alive: { image: true, text: false }, corpusCorrelation: -0.0001, topCaptions: [], textPartners: [] });
    await page.route(/\/v1\/concepts(\?|\/0$)/, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      await route.fulfill({ response: res, json: Array.isArray(body.items) ? { ...body, items: body.items.map((c: { id: number }) => (c.id === 0 ? imageOnly(c) : c)) } : imageOnly(body) });
    });
    try {
      await page.goto(`${base}/#/concepts?sort=id`);
      await firstIdIs(0);
      const first = page.locator('table.concepts tbody tr').first();
      expect(await first.locator('td:nth-child(2)').innerText()).to.equal('(no caption fires)');
      expect(await first.locator('td:nth-child(4)').innerText()).to.equal('0.000');
      await page.locator('table.concepts[data-labels="checked"]').waitFor();
      await first.getByRole('link').click();
      await hashIs('#/concept/0');
      await page.locator('.stats').waitFor();
      expect(await page.locator('h1').innerText()).to.equal('Concept 0: (no caption fires)');
      expect(await page.locator('.stats div', { hasText: 'Correlation (corpus)' }).locator('dd').innerText()).to.equal('0.000');
      expect(await page.title()).to.contain('(no caption fires)');
    } finally {
      await page.unroute(/\/v1\/concepts(\?|\/0$)/);
    }
  });

  it('marks a label whose first word has z < 1.96 as weak, in the list and on the concept page', async () => {
    const weak = (id: number) => { const c = index.concept(id); return c.label !== '' && c.words.length > 0 && c.words[0].z < 1.96; };
    const ids = index.summaries().map((c) => c.id);
    const weakIds = ids.filter(weak), strongIds = ids.filter((i) => index.concept(i).label !== '' && !weak(i));
    expect(weakIds.length, 'the toy run has weak labels').to.be.above(0);
    expect(strongIds.length, 'the toy run has strong labels').to.be.above(0);
    await page.goto(`${base}/#/concepts?sort=id&limit=200`);
    await page.locator('table.concepts[data-labels="checked"]').waitFor();
    const marked = await page.locator('table.concepts tbody tr:has(.label.weak) td:first-child').allInnerTexts();
    expect(marked.map(Number)).to.deep.equal(weakIds);
    expect(await page.locator('table.concepts .label.weak').first().getAttribute('title')).to.contain('weak label: z < 1.96');
    await shot('list-weak');
    await page.goto(`${base}/#/concept/${weakIds[0]}`);
    await page.locator('.stats').waitFor();
    const h1weak = page.locator('h1 .label.weak');
    expect(await h1weak.count()).to.equal(1);
    expect(await h1weak.getAttribute('title')).to.contain('weak label: z < 1.96');
    expect(await page.locator('h1').innerText()).to.contain('weak');
    await page.goto(`${base}/#/concept/${strongIds[0]}`);
    await page.locator('.stats').waitFor();
    expect(await page.locator('h1 .label').count()).to.equal(1);
    expect(await page.locator('h1 .label.weak').count()).to.equal(0);
  });

  it('works under a plugin prefix: another fastify app registers conceptService at /sae', async () => {
    const host = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
    using pair = await AlignedPair.load(pairDir);
    try {
      await host.register(conceptService, { prefix: '/sae', pair, concepts: index }); // as docs/serve.md shows
      await host.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}/sae/`;
      await page.goto(`${url}#/heterogeneity`);
      await page.locator('#het-chart .mark-symbol path').first().waitFor();
      await page.getByRole('link', { name: 'Concepts' }).click();
      await page.locator('#concept-status', { hasText: `of ${index.m}` }).waitFor();
      await page.locator('table.concepts[data-labels="checked"]').waitFor(); // the label checks are answered before the app closes
      expect(page.url()).to.equal(`${url}#/concepts`);
    } finally {
      await host.close();
    }
  });
});
