// The LLMUpstream spec as a TypeBox schema: the one source of the TypeScript types,
// the runtime structural validator and (through hack/gen-crd.ts) the CRD's OpenAPI schema.
// Cross-field rules live in rules.ts. Every number, string and list carries bounds,
// because a structural CRD schema needs them and a person deserves an early "no".
import { Type, type Static } from '@sinclair/typebox';

export const API_GROUP = 'breakwater.dev';
export const API_VERSION = 'v1alpha1';
export const KIND = 'LLMUpstream';
export const PLURAL = 'llmupstreams';

/** Go-style duration: 250ms, 30s, 5m, 1h30m. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';
const Duration = (description: string) =>
  Type.String({ pattern: DURATION_PATTERN, minLength: 2, maxLength: 32, description });

const Name = (description: string) =>
  Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', minLength: 1, maxLength: 63, description });

const ModelName = Type.String({ minLength: 1, maxLength: 256, description: 'a model name as the provider knows it' });

const StringMap = (description: string, maxProperties: number) =>
  Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 4096 }), { maxProperties, description });

export const OUTCOME_KINDS = ['throttled', 'server_error', 'timeout', 'connect', 'invalid_response'] as const;
export type ChargeableOutcome = (typeof OUTCOME_KINDS)[number];

export const SecretRefSchema = Type.Object(
  {
    name: Name('name of a Secret in the LLMUpstream\'s namespace'),
    key: Type.String({ minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$', description: 'key inside the Secret' }),
  },
  { additionalProperties: false },
);

export const AuthSchema = Type.Object(
  {
    secretRef: Type.Optional(SecretRefSchema),
    env: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', minLength: 1, maxLength: 128, description: 'environment variable holding the key (file source)' })),
    file: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'file holding the key, re-read on every reload (file source)' })),
    header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', minLength: 1, maxLength: 128, description: 'header that carries the key; default Authorization (openai) or x-api-key (anthropic)' })),
    prefix: Type.Optional(Type.String({ maxLength: 64, description: 'written before the key; default "Bearer " for Authorization, empty otherwise' })),
  },
  { additionalProperties: false },
);

export const RateLimitSchema = Type.Object(
  {
    requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000, description: 'client-side requests per minute to this endpoint' })),
    tokensPerMinute: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10000000000, description: 'client-side tokens (prompt + completion) per minute to this endpoint' }),
    ),
  },
  { additionalProperties: false, minProperties: 1, description: 'token buckets: a request is sent only when both have room' },
);

export const EndpointSchema = Type.Object(
  {
    name: Name('endpoint name, unique within the upstream'),
    url: Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$', description: 'base URL; the path after the upstream prefix is appended' }),
    insecure: Type.Optional(Type.Boolean({ description: 'allow plain http to a non-local host' })),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'lower is tried first; default 0' })),
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'share within a priority; default 100' })),
    auth: Type.Optional(AuthSchema),
    models: Type.Optional(StringMap('requested model -> model name at this endpoint', 64)),
    headers: Type.Optional(StringMap('extra request headers', 32)),
    query: Type.Optional(StringMap('extra query parameters', 32)),
    maxConcurrent: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100000, description: 'bulkhead: at most this many attempts in flight (a stream counts until it ends); default no limit' }),
    ),
    rateLimit: Type.Optional(RateLimitSchema),
  },
  { additionalProperties: false },
);

export const BreakerSchema = Type.Object(
  {
    errorThresholdPercentage: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    volumeThreshold: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000000 })),
    consecutiveFailures: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1000, description: 'open after this many failures in a row, whatever the window says (0: off)' }),
    ),
    rollingWindow: Type.Optional(Duration('window the error rate is computed over')),
    openDuration: Type.Optional(Duration('time open before the first half-open trial')),
    halfOpenRamp: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 1000 }), { minItems: 1, maxItems: 10 })),
    failOn: Type.Optional(
      Type.Array(Type.Union(OUTCOME_KINDS.map((k) => Type.Literal(k))), { maxItems: OUTCOME_KINDS.length, description: 'outcome kinds that count as failures' }),
    ),
  },
  { additionalProperties: false },
);

export const RetrySchema = Type.Object(
  {
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
    backoff: Type.Optional(
      Type.Object(
        {
          initial: Type.Optional(Duration('first backoff ceiling')),
          max: Type.Optional(Duration('largest backoff ceiling')),
          jitter: Type.Optional(Type.Union([Type.Literal('full'), Type.Literal('none')])),
        },
        { additionalProperties: false },
      ),
    ),
    budget: Type.Optional(
      Type.Object(
        {
          ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          minPerSecond: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
        },
        { additionalProperties: false },
      ),
    ),
    respectRetryAfter: Type.Optional(Type.Boolean()),
    maxRetryAfter: Type.Optional(Duration('provider waits are capped at this')),
    paths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._~/-]+$' }), { maxItems: 64 })),
  },
  { additionalProperties: false },
);

export const TimeoutsSchema = Type.Object(
  {
    connect: Type.Optional(Duration('TCP/TLS connect')),
    firstByte: Type.Optional(Duration('response headers, and the first data event of a stream')),
    response: Type.Optional(Duration('a whole non-streaming response')),
    idle: Type.Optional(Duration('between stream events')),
    total: Type.Optional(Duration('the whole request, every attempt and wait included')),
  },
  { additionalProperties: false },
);

export const FallbackSchema = Type.Object(
  {
    model: ModelName,
    chain: Type.Array(
      Type.Object({ model: ModelName, maxTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000 })) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 8 },
    ),
  },
  { additionalProperties: false },
);

export const ValidateSchema = Type.Object(
  {
    emptyChoices: Type.Optional(Type.Boolean({ description: 'a 200 with no choices/content is a failure' })),
    errorInBody: Type.Optional(Type.Boolean({ description: 'a 200 whose body is an error object is a failure' })),
  },
  { additionalProperties: false },
);

export const QueueSchema = Type.Object(
  {
    maxSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'waiting requests per upstream; 0: refuse at once when no endpoint has room' })),
    maxWait: Type.Optional(Duration('a waiter gives up after this (or its deadline, whichever is sooner)')),
  },
  { additionalProperties: false },
);

export const CacheSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    ttl: Type.Optional(Duration('how long an answer is served from the cache')),
    maxEntries: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
    maxBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1073741824, description: 'bytes of cached answers (keys included)' })),
  },
  { additionalProperties: false },
);

/** path segments that cannot be dot segments (a segment never starts with "."): the probe stays under the endpoint url */
const HEALTH_PATH_PATTERN = '^/?[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?$';

export const HealthCheckSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: HEALTH_PATH_PATTERN, description: 'probed with GET, relative to the endpoint url; must not spend tokens' })),
    interval: Type.Optional(Duration('between probes of one open endpoint (jittered)')),
    timeout: Type.Optional(Duration('one probe')),
  },
  { additionalProperties: false },
);

export const HedgeSchema = Type.Object(
  {
    after: Duration('start one more attempt when the first byte has not arrived after this'),
    maxExtra: Type.Optional(Type.Integer({ minimum: 1, maximum: 3, description: 'hedged attempts per request; default 1' })),
  },
  { additionalProperties: false },
);

export const SpecSchema = Type.Object(
  {
    api: Type.Optional(Type.Union([Type.Literal('openai'), Type.Literal('anthropic')], { description: 'API dialect; default openai' })),
    required: Type.Optional(Type.Boolean({ description: 'counts for readiness' })),
    endpoints: Type.Array(EndpointSchema, { minItems: 1, maxItems: 32 }),
    breaker: Type.Optional(BreakerSchema),
    retry: Type.Optional(RetrySchema),
    timeouts: Type.Optional(TimeoutsSchema),
    fallbacks: Type.Optional(Type.Array(FallbackSchema, { maxItems: 32 })),
    validate: Type.Optional(ValidateSchema),
    queue: Type.Optional(QueueSchema),
    cache: Type.Optional(CacheSchema),
    healthCheck: Type.Optional(HealthCheckSchema),
    balance: Type.Optional(
      Type.Union([Type.Literal('weighted'), Type.Literal('leastLatency')], { description: 'choice within a priority; default weighted' }),
    ),
    hedge: Type.Optional(HedgeSchema),
  },
  { additionalProperties: false },
);

export const MetadataSchema = Type.Object({
  name: Name('route prefix: requests to /<name>/... use this upstream'),
  namespace: Type.Optional(Type.String({ maxLength: 63 })),
  generation: Type.Optional(Type.Integer()),
  resourceVersion: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
});

/** A whole document as the file source reads it (the API server checks apiVersion/kind itself). */
export const DocumentSchema = Type.Object({
  apiVersion: Type.Literal(`${API_GROUP}/${API_VERSION}`),
  kind: Type.Literal(KIND),
  metadata: MetadataSchema,
  spec: SpecSchema,
});

/** One status condition, shaped like metav1.Condition. */
export const ConditionSchema = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' }),
  status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0, maximum: 9007199254740991 })),
  lastTransitionTime: Type.String({ format: 'date-time', maxLength: 64 }),
  reason: Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
  message: Type.String({ maxLength: 32768 }),
});

/** Written only by the controller (the Lease holder); sidecars never write status. */
export const StatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0, maximum: 9007199254740991, description: 'the generation the conditions describe' })),
  endpoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 32, description: 'number of endpoints in the observed spec (the Endpoints printer column)' })),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, { maxItems: 8, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  ),
});

export type Spec = Static<typeof SpecSchema>;
export type EndpointSpec = Static<typeof EndpointSchema>;
export type AuthSpec = Static<typeof AuthSchema>;
export type FallbackSpec = Static<typeof FallbackSchema>;
export type Dialect = NonNullable<Spec['api']>;
export type UpstreamStatus = Static<typeof StatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export interface UpstreamDocument {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec: Spec;
}
