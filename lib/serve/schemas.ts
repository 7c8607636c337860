/** JSON schemas of the service's routes (fastify validates requests and serializes responses with them). */

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

export const encodeSchema = {
  summary: 'Aligned sparse codes of embeddings',
  description:
    'JSON { modality, embeddings } (one vector or a list of vectors), or a raw little-endian float32 body (application/octet-stream) with header x-shape: rows,d and the modality in x-modality or ?modality=. Accept: application/octet-stream answers int32 indices then float32 values (x-shape: rows,k).',
  querystring: { type: 'object', properties: { modality }, additionalProperties: false },
  body: {
    content: {
      'application/json': { schema: { type: 'object', properties: { modality, embeddings: vectors }, required: ['modality', 'embeddings'], additionalProperties: false } },
      'application/octet-stream': { schema: {} },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: { rows: { type: 'integer' }, k: { type: 'integer' }, indices: intArraysOut, values: numArrays, labels: { type: 'array', items: { type: 'array', items: { type: 'string' } } } },
      required: ['rows', 'k', 'indices', 'values'],
    },
    ...errors,
  },
} as const;

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
      strength: { type: 'number' },
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
