/**
 * Plain reference of the concept-index statistics (ConceptStats), written for clarity, not speed: every sum in
 * the order the native kernel uses, so the two agree bit for bit. corr_ij = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)
 * (n Syy - Sy^2)) over the n pairs (text row t, image row imageOfText[t]); Sx, Sxx summed over t ascending; Sxy over
 * the image rows r where latent i is active (ascending), then the texts of r (ascending).
 */
import { SaeError } from '../../lib/errors.js';
import type { SparseCodes } from '../../lib/types.js';
import type { ConceptStats, ConceptStatsInput, ConceptStatsOptions } from '../../lib/concepts/stats.js';

/** Active (latent, value) slots of each row, checked: indices in [0, m), finite values, no latent twice in a row. */
function activeSlots(c: SparseCodes, m: number, side: string): { latent: number; value: number }[][] {
  const rows: { latent: number; value: number }[][] = [];
  for (let r = 0; r < c.rows; r++) {
    const row: { latent: number; value: number }[] = [];
    for (let s = 0; s < c.k; s++) {
      const v = c.values[r * c.k + s], j = c.indices[r * c.k + s];
      if (!Number.isFinite(v)) throw new SaeError('ERR_NONFINITE', `${side} codes: row ${r} holds a non-finite value`);
      if (v === 0) continue;
      if (!(j >= 0 && j < m)) throw new SaeError('ERR_RANGE', `${side} codes: row ${r} names latent ${j}, outside [0, ${m})`);
      if (row.some((e) => e.latent === j)) throw new SaeError('ERR_ARG', `${side} codes: row ${r} names latent ${j} twice`);
      row.push({ latent: j, value: v });
    }
    rows.push(row);
  }
  return rows;
}

function topRows(slots: { latent: number; value: number }[][], m: number, N: number): { rows: Int32Array; values: Float32Array; fire: Int32Array } {
  const lists: { row: number; value: number }[][] = Array.from({ length: m }, () => []);
  slots.forEach((row, r) => row.forEach((e) => lists[e.latent].push({ row: r, value: e.value })));
  const rows = new Int32Array(m * N).fill(-1), values = new Float32Array(m * N), fire = new Int32Array(m);
  lists.forEach((l, i) => {
    fire[i] = l.length;
    l.sort((a, b) => b.value - a.value || a.row - b.row);
    l.slice(0, N).forEach((e, p) => {
      rows[i * N + p] = e.row;
      values[i * N + p] = e.value;
    });
  });
  return { rows, values, fire };
}

function topPartners(score: (a: number, b: number) => number, valid: Uint8Array, validOther: Uint8Array, m: number, P: number): { idx: Int32Array; corr: Float64Array } {
  const idx = new Int32Array(m * P).fill(-1), corr = new Float64Array(m * P).fill(NaN);
  for (let a = 0; a < m; a++) {
    if (!valid[a]) continue;
    const cand: { b: number; c: number }[] = [];
    for (let b = 0; b < m; b++) if (validOther[b]) cand.push({ b, c: score(a, b) });
    cand.sort((x, y) => y.c - x.c || x.b - y.b);
    cand.slice(0, P).forEach((e, p) => {
      idx[a * P + p] = e.b;
      corr[a * P + p] = e.c;
    });
  }
  return { idx, corr };
}

export function conceptStatsReference(input: ConceptStatsInput, o: ConceptStatsOptions): ConceptStats {
  const { m, topN: N, partners: P } = o;
  const { image, text } = input;
  const img = activeSlots(image, m, 'image'), txt = activeSlots(text, m, 'text');
  const n = text.rows;
  const map = input.imageOfText ?? Int32Array.from({ length: n }, (_, t) => t);
  if (!input.imageOfText && image.rows !== text.rows) throw new SaeError('ERR_SHAPE', `${image.rows} image rows and ${text.rows} text rows, and no imageOfText`);
  if (map.length !== n) throw new SaeError('ERR_SHAPE', `imageOfText has ${map.length} entries for ${n} text rows`);
  for (let t = 0; t < n; t++) if (!(map[t] >= 0 && map[t] < image.rows)) throw new SaeError('ERR_RANGE', `imageOfText[${t}] = ${map[t]} is outside [0, ${image.rows})`);
  const ti = topRows(img, m, N), tt = topRows(txt, m, N);

  const sx = new Float64Array(m), sxx = new Float64Array(m), sy = new Float64Array(m), syy = new Float64Array(m);
  for (let t = 0; t < n; t++) {
    for (const e of img[map[t]]) {
      sx[e.latent] += e.value;
      sxx[e.latent] += e.value * e.value;
    }
    for (const e of txt[t]) {
      sy[e.latent] += e.value;
      syy[e.latent] += e.value * e.value;
    }
  }
  const textsOf: number[][] = Array.from({ length: image.rows }, () => []);
  for (let t = 0; t < n; t++) textsOf[map[t]].push(t);
  // Dense co-moments (the reference may hold the whole m x m matrix; the kernel never does).
  const sxy = new Float64Array(m * m);
  for (let r = 0; r < image.rows; r++)
    for (const x of img[r]) for (const t of textsOf[r]) for (const y of txt[t]) sxy[x.latent * m + y.latent] += x.value * y.value;
  const vx = Float64Array.from(sx, (s, i) => n * sxx[i] - s * s), vy = Float64Array.from(sy, (s, j) => n * syy[j] - s * s);
  const okX = Uint8Array.from(vx, (v) => (v > 0 ? 1 : 0)), okY = Uint8Array.from(vy, (v) => (v > 0 ? 1 : 0));
  const corr = (i: number, j: number) => Math.min(1, Math.max(-1, (n * sxy[i * m + j] - sx[i] * sy[j]) / Math.sqrt(vx[i] * vy[j])));
  const matched = Float64Array.from({ length: m }, (_, i) => (okX[i] && okY[i] ? corr(i, i) : NaN));
  const ip = topPartners(corr, okX, okY, m, P);
  const tp = topPartners((j, i) => corr(i, j), okY, okX, m, P);
  return {
    m, topN: N, partners: P, pairs: n,
    fireImage: ti.fire, fireText: tt.fire,
    topImageRows: ti.rows, topImageValues: ti.values, topTextRows: tt.rows, topTextValues: tt.values,
    matched, imagePartners: ip.idx, imagePartnerCorr: ip.corr, textPartners: tp.idx, textPartnerCorr: tp.corr,
  };
}
