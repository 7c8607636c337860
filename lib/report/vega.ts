/** Renders a vega-lite spec without a browser: SVG (vega's headless renderer) and PNG (resvg, 2x). */
// vega and vega-lite are imported on first use: they are large, and loading them eagerly makes tsx (tests)
// load this library's modules a second time through its CommonJS path (two SaeError classes).

export const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

export async function render(spec: unknown): Promise<{ svg: string; png: Uint8Array }> {
  const [vega, vl, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  const withConfig = { ...(spec as object), config: { legend: { labelLimit: 400 }, font: 'DejaVu Sans' } };
  const view = new vega.View(vega.parse(vl.compile(withConfig as import('vega-lite').TopLevelSpec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { font: { loadSystemFonts: true }, fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng();
  return { svg, png };
}

export const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
