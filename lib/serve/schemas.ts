/** JSON schemas of the service's routes (fastify validates requests and serializes responses with them). */
import type { FastifySchema } from 'fastify';


/** A number, or null: JSON has no NaN (JSON.stringify writes null), so null is read as NaN and refused with ERR_NONFINITE. */
const num = { type: ['number', 'null'] } as const;
export const vector = { type: 'array', items: num, minItems: 1 } as const;
export const vectors = { anyOf: [vector, { type: 'array', items: vector, minItems: 1 }] } as const;
export const modality = { type: 'string', enum: ['image', 'text'] } as const;
const intArray = { type: 'array', items: { type: 'integer' }, minItems: 1 } as const;
const intArrays = { anyOf: [intArray, { type: 'array', items: intArray, minItems: 1 }] } as const;
/** A corpus row (integer) or an embedding. */
const rowOrVector = { anyOf: [{ type: 'integer', minimum: 0 }, vector] } as const;
export const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
  required: ['error'],
} as const;
const errors = { '4xx': errorBody, '5xx': errorBody };

/** Integer strings for path and query parts (they stay strings under any ajv coercion setting). */
export const intString = { type: 'string', pattern: '^[0-9]{1,9}$' } as const;

const numArrays = { type: 'array', items: { type: 'array', items: { type: 'number' } } } as const;
const intArraysOut = { type: 'array', items: { type: 'array', items: { type: 'integer' } } } as const;

export const infoSchema = {
  summary: 'The pair: widths, modalities, normalization, provenance, batching',
  response: {
    200: {
      type: 'object',
      properties: {
        d: { type: 'integer' },
        m: { type: 'integer' },
        k: { type: 'object', properties: { image: { type: 'integer' }, text: { type: 'integer' } } },
        modalities: { type: 'array', items: { type: 'string' } },
        normalization: { type: 'string' },
        pair: { type: 'object', properties: { dir: { type: ['string', 'null'] }, n: { type: 'integer' }, checksum: { type: ['string', 'null'] } } },
        concepts: { type: ['object', 'null'], additionalProperties: true },
        corpus: { type: 'object', properties: { images: { type: 'integer' }, captions: { type: 'integer' }, embeddings: { type: 'boolean' } } },
        batching: { type: 'object', properties: { maxBatchRows: { type: 'integer' }, maxWaitMs: { type: 'integer' }, maxQueueRows: { type: 'integer' } } },
      },
    },
    ...errors,
  },
} as const;

/** The raw float32 body of POST /v1/encode as OpenAPI writes binary data (the validation schema is {}: the body is a Buffer). */
const rawFloat32Body = { type: 'string', format: 'binary', description: 'rows·d little-endian float32 values, row after row (header x-shape: rows,d)' } as const;
const encodeJson = { type: 'object', properties: { modality, embeddings: vectors }, required: ['modality', 'embeddings'], additionalProperties: false } as const;

export const encodeSchema = {
  summary: 'Aligned sparse codes of embeddings',
  description:
    'JSON { modality, embeddings } (one vector or a list of vectors), or a raw little-endian float32 body (application/octet-stream) with header x-shape: rows,d and the modality in x-modality or ?modality=. Accept: application/octet-stream answers int32 indices then float32 values (x-shape: rows,k).',
  querystring: { type: 'object', properties: { modality: { ...modality, description: 'the modality of a raw float32 body (or the x-modality header)' } }, additionalProperties: false },
  headers: {
    type: 'object',
    properties: {
      'x-shape': { type: 'string', description: 'with a raw float32 body: rows,d (two integers)' },
      'x-modality': { ...modality, description: 'with a raw float32 body: its modality (or ?modality=)' },
    },
  },
  body: { content: { 'application/json': { schema: encodeJson }, 'application/octet-stream': { schema: {} } } },
  response: {
    200: {
      description: 'The codes: JSON, or with Accept: application/octet-stream rows·k int32 indices then rows·k float32 values (little-endian)',
      headers: { 'x-shape': { type: 'string', description: 'binary answers only: rows,k' } },
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { rows: { type: 'integer' }, k: { type: 'integer' }, indices: intArraysOut, values: numArrays, labels: { type: 'array', items: { type: 'array', items: { type: 'string' } } } },
            required: ['rows', 'k', 'indices', 'values'],
          },
        },
        'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'rows·k int32 indices then rows·k float32 values, little-endian' } },
      },
    },
    ...errors,
  },
} as const;

/** @fastify/swagger's per-route transform of POST /v1/encode: documents the raw body as binary data. */
export function documentEncode({ url }: { url: string }): { schema: FastifySchema; url: string } {
  return { schema: { ...encodeSchema, body: { content: { ...encodeSchema.body.content, 'application/octet-stream': { schema: rawFloat32Body } } } }, url };
}

export const decodeSchema = {
  summary: "Embeddings reconstructed from codes by one side's decoder",
  body: {
    type: 'object',
    properties: { modality, indices: intArrays, values: vectors },
    required: ['modality', 'indices', 'values'],
    additionalProperties: false,
  },
  response: { 200: { type: 'object', properties: { rows: { type: 'integer' }, embeddings: numArrays }, required: ['embeddings'] }, ...errors },
} as const;

const hit = { type: 'object', properties: { row: { type: 'integer' }, score: { type: 'number' }, ref: { type: ['string', 'null'] }, caption: { type: 'string' }, image: { type: 'integer' } } } as const;

export const steerSchema = {
  summary: 'Adds a concept to an embedding (the paper §7.2): its codes plus strength / |W_dec[concept]| on the concept, decoded',
  body: {
    type: 'object',
    properties: {
      modality,
      embedding: vector,
      row: { type: 'integer', minimum: 0 },
      concept: { type: 'integer', minimum: 0 },
      strength: { ...num, description: 'added to the concept as strength / |W_dec[concept]|; must stay a finite float32 after that scaling (null counts as NaN)' },
      top: { type: 'integer', minimum: 1, maximum: 100 },
    },
    required: ['concept', 'strength'],
    additionalProperties: false,
  },
  response: {
    200: {
      type: 'object',
      properties: {
        embedding: { type: 'array', items: { type: 'number' } },
        retrieved: { type: 'object', properties: { by: { type: 'string' }, images: { type: 'array', items: hit }, captions: { type: 'array', items: hit } } },
      },
      required: ['embedding'],
    },
    ...errors,
  },
} as const;

export const explainSchema = {
  summary: 'The concepts an image and a text both activate, and each one’s share of their code cosine',
  body: { type: 'object', properties: { image: rowOrVector, text: rowOrVector }, required: ['image', 'text'], additionalProperties: false },
  response: {
    200: {
      type: 'object',
      properties: {
        score: { type: 'number' },
        concepts: {
          type: 'array',
          items: { type: 'object', properties: { id: { type: 'integer' }, label: { type: 'string' }, image: { type: 'number' }, text: { type: 'number' }, share: { type: 'number' } } },
        },
      },
    },
    ...errors,
  },
} as const;

export const searchSchema = {
  summary: 'Corpus items whose codes best match the query’s codes (cosine of L2-normalized codes)',
  body: {
    type: 'object',
    properties: {
      modality,
      embedding: vector,
      codes: { type: 'object', properties: { indices: intArray, values: vector }, required: ['indices', 'values'], additionalProperties: false },
      target: modality,
      top: { type: 'integer', minimum: 1, maximum: 100 },
    },
    required: ['target'],
    additionalProperties: false,
  },
  response: { 200: { type: 'object', properties: { items: { type: 'array', items: hit } } }, ...errors },
} as const;

const summaryItem = { type: 'object', additionalProperties: true } as const;

export const conceptsSchema = {
  summary: 'Concept summaries, sorted, filtered by a label word, paginated',
  querystring: {
    type: 'object',
    properties: {
      sort: { type: 'string', enum: ['correlation', 'corpusCorrelation', 'fireRate', 'decoderDistance', 'id'] },
      order: { type: 'string', enum: ['asc', 'desc'] },
      q: { type: 'string', maxLength: 200 },
      offset: intString,
      limit: intString,
      alive: { type: 'string', enum: ['both', 'any', 'all'] },
    },
    additionalProperties: false,
  },
  response: {
    200: { type: 'object', properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: summaryItem } } },
    ...errors,
  },
} as const;

const idParams = { type: 'object', properties: { id: intString }, required: ['id'], additionalProperties: false } as const;
const rowParams = { type: 'object', properties: { row: intString }, required: ['row'], additionalProperties: false } as const;

export const conceptSchema = {
  summary: 'One concept: statistics, label words, partners, top images and captions',
  params: idParams,
  response: { 200: { type: 'object', additionalProperties: true }, ...errors },
} as const;

export const corpusRowSchema = { summary: 'One corpus row', params: rowParams, response: { 200: { type: 'object', additionalProperties: true }, ...errors } } as const;

export const heterogeneitySchema = {
  summary: "Figure 2's points: per concept its correlation, decoder distance, label and liveness",
  response: {
    200: {
      type: 'object',
      properties: {
        points: {
          type: 'array',
          items: {
            type: 'object',
            properties: { id: { type: 'integer' }, correlation: { type: 'number' }, decoderDistance: { type: 'number' }, label: { type: 'string' }, alive: { type: 'boolean' } },
          },
        },
      },
    },
    ...errors,
  },
} as const;
