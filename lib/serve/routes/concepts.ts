/** The concept index's routes: concepts, one concept, search, corpus rows, Figure 2's points. */
import type { FastifyInstance } from 'fastify';

import type { ConceptSummary } from '../../concepts/types.js';
import type { Modality } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import { flatten, type ServiceContext } from '../context.js';
import type { ConceptIndex } from '../../concepts/concept-index.js';
import { HttpError } from '../http-errors.js';
import { conceptSchema, conceptsSchema, corpusRowSchema, heterogeneitySchema, searchSchema } from '../schemas.js';

/** The most concept summaries one GET /v1/concepts answers. */
export const MAX_PAGE = 500;

type SortKey = 'correlation' | 'corpusCorrelation' | 'fireRate' | 'decoderDistance' | 'id';

/** The sort value of a summary (fireRate: the larger of the two sides); NaN sorts last either way. */
function sortValue(s: ConceptSummary, key: SortKey): number {
  if (key === 'fireRate') return Math.max(s.fireRate.image, s.fireRate.text);
  return s[key];
}

function needIndex(ctx: ServiceContext): ConceptIndex {
  if (!ctx.corpus.index) throw new HttpError(409, 'ERR_STATE', 'this service has no concept index: start it with --concepts <dir> (cmsae concepts builds one) or --demo');
  return ctx.corpus.index;
}

export function conceptRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  let summaries: ConceptSummary[] | null = null;
  const all = () => (summaries ??= needIndex(ctx).summaries());

  app.get('/v1/concepts', { schema: conceptsSchema }, async (req) => {
    const q = req.query as { sort?: SortKey; order?: 'asc' | 'desc'; q?: string; offset?: string; limit?: string; alive?: 'both' | 'any' | 'all' };
    const key = q.sort ?? 'correlation', desc = (q.order ?? (key === 'id' ? 'asc' : 'desc')) === 'desc';
    const offset = Number(q.offset ?? 0), limit = Number(q.limit ?? 50);
    if (limit < 1) throw new SaeError('ERR_ARG', 'limit must be at least 1');
    if (limit > MAX_PAGE) throw new SaeError('ERR_RANGE', `limit ${limit} is above the most concepts one page holds, ${MAX_PAGE}: page with offset`);
    const words = (q.q ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    const alive = q.alive ?? 'all';
    let items = all().filter((s) => {
      if (alive === 'both' && !(s.alive.image && s.alive.text)) return false;
      if (alive === 'any' && !(s.alive.image || s.alive.text)) return false;
      if (words.length === 0) return true;
      const labelWords = s.label.toLowerCase().split(/[^\p{L}\p{N}]+/u);
      return words.every((w) => labelWords.some((lw) => lw.startsWith(w)));
    });
    items = items
      .map((s) => ({ s, v: sortValue(s, key) }))
      .sort((a, b) => {
        const an = Number.isNaN(a.v), bn = Number.isNaN(b.v);
        if (an || bn) return an === bn ? a.s.id - b.s.id : an ? 1 : -1;
        return (desc ? b.v - a.v : a.v - b.v) || a.s.id - b.s.id;
      })
      .map((x) => x.s);
    return { total: items.length, offset, limit, items: items.slice(offset, offset + limit) };
  });

  app.get('/v1/concepts/:id', { schema: conceptSchema }, async (req) => {
    const index = needIndex(ctx);
    const id = Number((req.params as { id: string }).id);
    if (id >= index.m) throw new HttpError(404, 'ERR_RANGE', `concept ${id} does not exist: the index has concepts 0..${index.m - 1}`);
    const c = index.concept(id);
    return {
      ...c,
      topImages: c.topImages.map((t) => ({
        ...t,
        ref: ctx.corpus.imageRef(t.row),
        labels: ctx.corpus.imageLabels(t.row),
        captions: ctx.corpus.captionsOfImage(t.row).slice(0, 3).map((r) => ctx.corpus.caption(r)),
      })),
      topCaptions: c.topCaptions.map((t) => ({ ...t, caption: ctx.corpus.caption(t.row), image: ctx.corpus.imageOfCaption(t.row) })),
    };
  });

  app.post('/v1/search', { schema: searchSchema }, async (req) => {
    const b = req.body as { modality?: Modality; embedding?: (number | null)[]; codes?: { indices: number[]; values: (number | null)[] }; target: Modality; top?: number };
    if ((b.embedding === undefined) === (b.codes === undefined)) throw new SaeError('ERR_ARG', 'search needs exactly one of embedding (with modality) or codes { indices, values }');
    let indices: ArrayLike<number>, values: ArrayLike<number>;
    if (b.embedding) {
      if (!b.modality) throw new SaeError('ERR_ARG', 'search by embedding needs its modality');
      const x = flatten(b.embedding, 'embedding');
      if (x.cols !== ctx.engine.d) throw new SaeError('ERR_SHAPE', `embedding has ${x.cols} values, the pair expects d = ${ctx.engine.d}`);
      const c = await ctx.engine.encode(b.modality, x.data, 1);
      ({ indices, values } = c);
    } else {
      const c = b.codes!;
      if (c.indices.length !== c.values.length) throw new SaeError('ERR_SHAPE', `codes have ${c.indices.length} indices and ${c.values.length} values`);
      const v = Float32Array.from(c.values, (x) => x ?? NaN);
      for (let s = 0; s < v.length; s++) {
        if (!Number.isFinite(v[s])) throw new SaeError('ERR_NONFINITE', `codes.values[${s}] is not a finite number`);
        if (!(c.indices[s] >= 0 && c.indices[s] < ctx.engine.m)) throw new SaeError('ERR_RANGE', `codes.indices[${s}] = ${c.indices[s]} is outside [0, m = ${ctx.engine.m})`);
      }
      indices = c.indices;
      values = v;
    }
    if (!ctx.corpus.present) throw new HttpError(409, 'ERR_STATE', 'this service has no corpus to search: start it with --concepts <dir> or --demo');
    const hits = ctx.corpus.searchCodes(b.target, indices, values, b.top ?? 10);
    return {
      items: hits.map((h) =>
        b.target === 'image' ? { ...h, ref: ctx.corpus.imageRef(h.row) } : { ...h, caption: ctx.corpus.caption(h.row), image: ctx.corpus.imageOfCaption(h.row) },
      ),
    };
  });

  app.get('/v1/corpus/images/:row', { schema: corpusRowSchema }, async (req) => {
    const row = Number((req.params as { row: string }).row);
    ctx.corpus.checkRow('image', row);
    const captions = ctx.corpus.captionsOfImage(row).map((r) => ({ row: r, caption: ctx.corpus.caption(r) }));
    return { row, ref: ctx.corpus.imageRef(row), labels: ctx.corpus.imageLabels(row), captions };
  });

  app.get('/v1/corpus/captions/:row', { schema: corpusRowSchema }, async (req) => {
    const row = Number((req.params as { row: string }).row);
    ctx.corpus.checkRow('text', row);
    return { row, caption: ctx.corpus.caption(row), image: ctx.corpus.imageOfCaption(row) };
  });

  app.get('/v1/heterogeneity', { schema: heterogeneitySchema }, async () => ({
    points: all().map((s) => ({ id: s.id, correlation: s.correlation, decoderDistance: s.decoderDistance, label: s.label, alive: s.alive.image && s.alive.text })),
  }));
}
