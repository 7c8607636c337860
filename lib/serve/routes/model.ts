/** The pair's routes: /v1/info, /v1/encode, /v1/decode, /v1/steer, /v1/explain. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { checkModality, type Modality } from '../../data/paired.js';
import { SaeError } from '../../errors.js';
import type { SparseCodes } from '../../types.js';
import { codeLabels, flatten, nested, type ServiceContext } from '../context.js';
import { HttpError } from '../http-errors.js';
import { decodeSchema, documentEncode, encodeSchema, explainSchema, infoSchema, steerSchema } from '../schemas.js';

type Vec = (number | null)[];

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** rows,cols of the x-shape header. */
function shapeHeader(h: unknown, d: number): { rows: number; cols: number } {
  const m = typeof h === 'string' ? /^\s*(\d{1,9})\s*,\s*(\d{1,9})\s*$/.exec(h) : null;
  if (!m) throw new SaeError('ERR_SHAPE', `a raw float32 body needs the header x-shape: rows,${d} (two integers), got ${h === undefined ? 'none' : JSON.stringify(h)}`);
  return { rows: Number(m[1]), cols: Number(m[2]) };
}

/** Little-endian float32 values of a raw body (copied: the body buffer may be unaligned). */
function float32Body(body: Buffer): Float32Array {
  if (body.length % 4 !== 0) throw new SaeError('ERR_SHAPE', `the body has ${body.length} bytes, not a whole number of float32 values`);
  const out = new Float32Array(body.length / 4);
  new Uint8Array(out.buffer).set(body);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 0) {
    // A big-endian host: read each value as little-endian.
    const v = new DataView(body.buffer, body.byteOffset, body.length);
    for (let i = 0; i < out.length; i++) out[i] = v.getFloat32(4 * i, true);
  }
  return out;
}

function wantsBinary(req: FastifyRequest): boolean {
  return /application\/octet-stream/.test(req.headers.accept ?? '');
}

/** int32 indices then float32 values (little-endian on the usual hosts), with x-shape: rows,k. */
function sendBinaryCodes(reply: FastifyReply, c: SparseCodes): FastifyReply {
  const out = Buffer.allocUnsafe(8 * c.rows * c.k);
  out.set(new Uint8Array(c.indices.buffer, c.indices.byteOffset, c.indices.byteLength), 0);
  out.set(new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength), 4 * c.rows * c.k);
  return reply.type('application/octet-stream').header('x-shape', `${c.rows},${c.k}`).send(out);
}

/** An embedding or a corpus row of one side, as codes. */
async function codesOf(ctx: ServiceContext, side: Modality, v: number | Vec, what: string): Promise<SparseCodes> {
  if (typeof v === 'number') {
    ctx.corpus.checkRow(side, v);
    if (ctx.corpus.index) return ctx.corpus.rowCodes(side, v);
    return ctx.engine.encode(side, ctx.corpus.rowEmbedding(side, v)!, 1);
  }
  const x = flatten(v, what);
  if (x.cols !== ctx.engine.d) throw new SaeError('ERR_SHAPE', `${what} has ${x.cols} values, the pair expects d = ${ctx.engine.d}`);
  return ctx.engine.encode(side, x.data, 1);
}

export function modelRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { engine } = ctx;

  app.get('/v1/info', { schema: infoSchema }, async () => {
    const p = engine.pair;
    return {
      d: engine.d,
      m: engine.m,
      k: { image: p.image.k, text: p.text.k },
      modalities: ['image', 'text'],
      normalization: p.normalizer.kind,
      pair: { dir: ctx.provenance.dir, n: p.stats.n, checksum: ctx.provenance.checksum },
      concepts: ctx.corpus.index ? ctx.corpus.index.meta : null,
      corpus: { images: ctx.corpus.rows('image'), captions: ctx.corpus.rows('text'), embeddings: ctx.corpus.raw !== null },
      batching: { maxBatchRows: ctx.options.maxBatchRows, maxWaitMs: ctx.options.maxWaitMs, maxQueueRows: ctx.options.maxQueueRows },
    };
  });

  app.post('/v1/encode', { schema: encodeSchema, config: { rawFloat32: true, swaggerTransform: documentEncode } }, async (req, reply) => {
    let side: Modality, x: { rows: number; cols: number; data: Float32Array };
    if (Buffer.isBuffer(req.body)) {
      const q = req.query as { modality?: string };
      side = checkModality(q.modality ?? req.headers['x-modality'], 'modality (?modality= or the x-modality header)');
      const shape = shapeHeader(req.headers['x-shape'], engine.d);
      const data = float32Body(req.body);
      if (data.length !== shape.rows * shape.cols) throw new SaeError('ERR_SHAPE', `x-shape says ${shape.rows} x ${shape.cols} = ${shape.rows * shape.cols} values, the body holds ${data.length}`);
      x = { ...shape, data };
    } else {
      const b = req.body as { modality: Modality; embeddings: Vec | Vec[] };
      side = b.modality;
      x = flatten(b.embeddings, 'embeddings');
    }
    if (x.cols !== engine.d) throw new SaeError('ERR_SHAPE', `embeddings have ${x.cols} values per row, the pair expects d = ${engine.d}`);
    if (x.rows < 1) throw new SaeError('ERR_SHAPE', 'no rows to encode');
    const c = await engine.encode(side, x.data, x.rows);
    if (wantsBinary(req)) return sendBinaryCodes(reply, c);
    return { rows: c.rows, k: c.k, indices: nested(c.indices, c.rows, c.k), values: nested(c.values, c.rows, c.k), labels: codeLabels(ctx, c) };
  });

  app.post('/v1/decode', { schema: decodeSchema }, async (req) => {
    const b = req.body as { modality: Modality; indices: number[] | number[][]; values: Vec | Vec[] };
    const idx = flatten(b.indices, 'indices');
    const val = flatten(b.values, 'values');
    if (idx.rows !== val.rows || idx.cols !== val.cols) throw new SaeError('ERR_SHAPE', `indices are ${idx.rows} x ${idx.cols} but values ${val.rows} x ${val.cols}: they must have the same shape`);
    if (idx.cols > engine.m) throw new SaeError('ERR_SHAPE', `${idx.cols} slots per row, more than the m = ${engine.m} latents`);
    const x = await engine.decode(b.modality, { rows: idx.rows, k: idx.cols, indices: Int32Array.from(idx.data), values: val.data });
    return { rows: idx.rows, embeddings: nested(x, idx.rows, engine.d) };
  });

  app.post('/v1/steer', { schema: steerSchema }, async (req) => {
    const b = req.body as { modality?: Modality; embedding?: Vec; row?: number; concept: number; strength: number | null; top?: number };
    const side = b.modality ?? 'image';
    if ((b.embedding === undefined) === (b.row === undefined)) throw new SaeError('ERR_ARG', 'steer needs exactly one of embedding (a vector) or row (a corpus row of that modality)');
    if (b.concept >= engine.m) throw new HttpError(404, 'ERR_RANGE', `concept ${b.concept} does not exist: the pair has concepts 0..${engine.m - 1}`);
    if (b.strength === null || !Number.isFinite(b.strength)) throw new SaeError('ERR_NONFINITE', 'strength is not a finite number (a JSON null counts as NaN)');
    const norms = await engine.decoderNorms(side);
    const scale = Math.max(norms[b.concept], 1e-12);
    const value = b.strength / scale;
    if (!(Math.abs(value) <= FLOAT32_MAX))
      throw new SaeError('ERR_NONFINITE', `strength ${b.strength} overflows float32 once divided by |W_dec[${b.concept}]| = ${scale}: give |strength| <= ${(FLOAT32_MAX * scale).toPrecision(6)}`);
    const base = await codesOf(ctx, side, (b.embedding ?? b.row)!, 'embedding');
    const k = base.k + 1;
    const steered: SparseCodes = { rows: 1, k, indices: new Int32Array(k), values: new Float32Array(k) };
    steered.indices.set(base.indices);
    steered.values.set(base.values);
    steered.indices[base.k] = b.concept;
    steered.values[base.k] = value;
    const embedding = await engine.decode(side, steered);
    if (!embedding.every(Number.isFinite)) throw new SaeError('ERR_NONFINITE', `strength ${b.strength} makes the steered embedding overflow float32: give a smaller |strength|`);
    if (!ctx.corpus.present) return { embedding: Array.from(embedding) };
    const top = b.top ?? 10;
    const dense = (s: Modality) => ctx.corpus.searchDense(s, embedding, top);
    let images = dense('image'), captions = dense('text'), by = 'embedding cosine';
    if (!images || !captions) {
      // No corpus embeddings (an index only): retrieve by the steered embedding's codes on each side.
      const [ci, ct] = await Promise.all([engine.encode('image', embedding, 1), engine.encode('text', embedding, 1)]);
      images = ctx.corpus.searchCodes('image', ci.indices, ci.values, top);
      captions = ctx.corpus.searchCodes('text', ct.indices, ct.values, top);
      by = 'code cosine';
    }
    return {
      embedding: Array.from(embedding),
      retrieved: {
        by,
        images: images.map((h) => ({ ...h, ref: ctx.corpus.imageRef(h.row) })),
        captions: captions.map((h) => ({ ...h, caption: ctx.corpus.caption(h.row), image: ctx.corpus.imageOfCaption(h.row) })),
      },
    };
  });

  app.post('/v1/explain', { schema: explainSchema }, async (req) => {
    const b = req.body as { image: number | Vec; text: number | Vec };
    const [a, t] = await Promise.all([codesOf(ctx, 'image', b.image, 'image'), codesOf(ctx, 'text', b.text, 'text')]);
    const dense = (c: SparseCodes) => {
      const m = new Map<number, number>();
      for (let s = 0; s < c.k; s++) if (c.values[s] !== 0) m.set(c.indices[s], (m.get(c.indices[s]) ?? 0) + c.values[s]);
      return m;
    };
    const ai = dense(a), ti = dense(t);
    const norm = (m: Map<number, number>) => Math.sqrt([...m.values()].reduce((s, v) => s + v * v, 0));
    const shared: { id: number; image: number; text: number; product: number }[] = [];
    for (const [id, v] of ai) if (ti.has(id)) shared.push({ id, image: v, text: ti.get(id)!, product: v * ti.get(id)! });
    const dot = shared.reduce((s, c) => s + c.product, 0);
    const denom = Math.max(norm(ai) * norm(ti), 1e-12);
    shared.sort((x, y) => y.product - x.product || x.id - y.id);
    return {
      score: dot / denom,
      concepts: shared.map((c) => ({ id: c.id, label: ctx.labels?.[c.id] ?? '', image: c.image, text: c.text, share: dot !== 0 ? c.product / dot : 0 })),
    };
  });
}
