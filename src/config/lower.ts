// Validated spec -> RuntimeConfig: fill defaults into new objects (never the caller's), convert
// durations to ms, resolve auth. It trusts its input: compile.ts validates first, and the file
// source's parse worker validates before handing documents over, so the sidecar's main thread
// compiles a --config file without ever loading the TypeBox runtime (schema + Value).
import { DEFAULTS } from './defaults.ts';
import { parseDuration } from './duration.ts';
import { ConfigError, describeDocument, type AuthResolver } from './errors.ts';
import type { AuthSpec, ChargeableOutcome, EndpointSpec, UpstreamDocument } from './schema.ts';
import type { AuthConfig, BreakerConfig, EndpointConfig, FallbackStep, RuntimeConfig, UpstreamConfig } from './runtime.ts';
import { Secret } from './runtime.ts';

/** "/v1/chat/completions/" -> "chat/completions": how retry.paths and request paths are compared. */
export function normalizePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed.startsWith('v1/') ? trimmed.slice(3) : trimmed;
}

function compileAuth(spec: AuthSpec | undefined, api: UpstreamConfig['api'], resolve: AuthResolver, where: Parameters<AuthResolver>[1]): AuthConfig | undefined {
  if (!spec) return undefined;
  const header = (spec.header ?? (api === 'anthropic' ? 'x-api-key' : 'Authorization')).toLowerCase();
  const prefix = spec.prefix ?? (header === 'authorization' ? 'Bearer ' : '');
  const key = resolve(spec, where);
  const source = spec.secretRef ? `secret ${spec.secretRef.name}/${spec.secretRef.key}` : spec.env ? `env ${spec.env}` : `file ${spec.file}`;
  return { header, value: new Secret(prefix + key.reveal()), source };
}

function encodeQuery(entries: Iterable<[string, string]>): string {
  let out = '';
  for (const [k, v] of entries) out += `&${encodeURIComponent(k)}=${encodeURIComponent(v)}`;
  return out;
}

function compileEndpoint(upstream: string, api: UpstreamConfig['api'], e: EndpointSpec, i: number, resolve: AuthResolver, document: string, namespace: string | undefined): EndpointConfig {
  const url = new URL(e.url);
  const query = [...url.searchParams.entries(), ...Object.entries(e.query ?? {})];
  return {
    key: `${upstream}/${e.name}/${e.url}`,
    name: e.name,
    url: e.url,
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    query: encodeQuery(query),
    priority: e.priority ?? DEFAULTS.endpoint.priority,
    weight: e.weight ?? DEFAULTS.endpoint.weight,
    auth: compileAuth(e.auth, api, resolve, { document, path: `spec.endpoints[${i}].auth`, namespace }),
    models: new Map(Object.entries(e.models ?? {})),
    headers: Object.entries(e.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    maxConcurrent: e.maxConcurrent,
    rateLimit: e.rateLimit ? { requestsPerMinute: e.rateLimit.requestsPerMinute, tokensPerMinute: e.rateLimit.tokensPerMinute } : undefined,
  };
}

/** every breaker field, in a stable form: the breaker's change-detection key */
function breakerKey(b: Omit<BreakerConfig, 'key'>): string {
  return JSON.stringify({ ...b, failOn: [...b.failOn].sort() });
}

/** A document validateDocument passed -> its UpstreamConfig (defaults filled, durations in ms, auth resolved). */
export function lowerUpstream(doc: UpstreamDocument, resolve: AuthResolver, document = `LLMUpstream "${doc.metadata.name}"`): UpstreamConfig {
  const { spec, metadata } = doc;
  const api = spec.api ?? DEFAULTS.api;
  const b = spec.breaker ?? {};
  const r = spec.retry ?? {};
  const t = spec.timeouts ?? {};
  const endpoints = spec.endpoints
    .map((e, i) => compileEndpoint(metadata.name, api, e, i, resolve, document, metadata.namespace))
    .sort((x, y) => x.priority - y.priority); // Array.prototype.sort is stable: spec order within a priority
  const fallbacks = new Map<string, readonly FallbackStep[]>();
  for (const f of spec.fallbacks ?? []) fallbacks.set(f.model, f.chain.map((c) => ({ model: c.model, maxTokens: c.maxTokens })));
  const breaker = {
    errorThresholdPercentage: b.errorThresholdPercentage ?? DEFAULTS.breaker.errorThresholdPercentage,
    volumeThreshold: b.volumeThreshold ?? DEFAULTS.breaker.volumeThreshold,
    consecutiveFailures: b.consecutiveFailures ?? DEFAULTS.breaker.consecutiveFailures,
    rollingWindowMs: parseDuration(b.rollingWindow ?? DEFAULTS.breaker.rollingWindow),
    openDurationMs: parseDuration(b.openDuration ?? DEFAULTS.breaker.openDuration),
    halfOpenRamp: [...(b.halfOpenRamp ?? DEFAULTS.breaker.halfOpenRamp)],
    failOn: new Set<ChargeableOutcome>(b.failOn ?? DEFAULTS.breaker.failOn),
  };
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    generation: metadata.generation,
    api,
    required: spec.required ?? DEFAULTS.required,
    endpoints,
    breaker: { ...breaker, key: breakerKey(breaker) },
    retry: {
      maxAttempts: r.maxAttempts ?? DEFAULTS.retry.maxAttempts,
      backoff: {
        initialMs: parseDuration(r.backoff?.initial ?? DEFAULTS.retry.backoff.initial),
        maxMs: parseDuration(r.backoff?.max ?? DEFAULTS.retry.backoff.max),
        jitter: r.backoff?.jitter ?? DEFAULTS.retry.backoff.jitter,
      },
      budget: {
        ratio: r.budget?.ratio ?? DEFAULTS.retry.budget.ratio,
        minPerSecond: r.budget?.minPerSecond ?? DEFAULTS.retry.budget.minPerSecond,
      },
      respectRetryAfter: r.respectRetryAfter ?? DEFAULTS.retry.respectRetryAfter,
      maxRetryAfterMs: parseDuration(r.maxRetryAfter ?? DEFAULTS.retry.maxRetryAfter),
      paths: new Set((r.paths ?? DEFAULTS.retry.paths).map(normalizePath)),
    },
    timeouts: {
      connectMs: parseDuration(t.connect ?? DEFAULTS.timeouts.connect),
      firstByteMs: parseDuration(t.firstByte ?? DEFAULTS.timeouts.firstByte),
      responseMs: parseDuration(t.response ?? DEFAULTS.timeouts.response),
      idleMs: parseDuration(t.idle ?? DEFAULTS.timeouts.idle),
      totalMs: parseDuration(t.total ?? DEFAULTS.timeouts.total),
    },
    fallbacks,
    validate: {
      emptyChoices: spec.validate?.emptyChoices ?? DEFAULTS.validate.emptyChoices,
      errorInBody: spec.validate?.errorInBody ?? DEFAULTS.validate.errorInBody,
    },
    queue: {
      maxSize: spec.queue?.maxSize ?? DEFAULTS.queue.maxSize,
      maxWaitMs: parseDuration(spec.queue?.maxWait ?? DEFAULTS.queue.maxWait),
    },
    cache:
      (spec.cache?.enabled ?? DEFAULTS.cache.enabled)
        ? {
            ttlMs: parseDuration(spec.cache?.ttl ?? DEFAULTS.cache.ttl),
            maxEntries: spec.cache?.maxEntries ?? DEFAULTS.cache.maxEntries,
            maxBytes: spec.cache?.maxBytes ?? DEFAULTS.cache.maxBytes,
          }
        : undefined,
    healthCheck:
      (spec.healthCheck?.enabled ?? DEFAULTS.healthCheck.enabled)
        ? {
            path: normalizePath(spec.healthCheck?.path ?? DEFAULTS.healthCheck.path),
            intervalMs: parseDuration(spec.healthCheck?.interval ?? DEFAULTS.healthCheck.interval),
            timeoutMs: parseDuration(spec.healthCheck?.timeout ?? DEFAULTS.healthCheck.timeout),
          }
        : undefined,
    balance: spec.balance ?? DEFAULTS.balance,
    hedge: spec.hedge ? { afterMs: parseDuration(spec.hedge.after), maxExtra: spec.hedge.maxExtra ?? DEFAULTS.hedge.maxExtra } : undefined,
  };
}

/**
 * Compiles a whole set of documents with `each` (lowerUpstream for validated ones); the first bad
 * one rejects the set (last good config keeps serving).
 */
export function lowerConfig(
  docs: readonly unknown[],
  resolve: AuthResolver,
  source: string,
  generation: number,
  now = Date.now(),
  each: (doc: UpstreamDocument, resolve: AuthResolver, document: string) => UpstreamConfig = lowerUpstream,
): RuntimeConfig {
  const upstreams = new Map<string, UpstreamConfig>();
  docs.forEach((doc, i) => {
    if (doc === undefined) return; // an empty document in a YAML stream: numbered, never compiled
    const document = describeDocument(doc, i);
    const upstream = each(doc as UpstreamDocument, resolve, document);
    if (upstreams.has(upstream.name)) throw new ConfigError(document, 'metadata.name', `upstream "${upstream.name}" is defined twice`);
    upstreams.set(upstream.name, upstream);
  });
  return { generation, source, appliedAt: now, upstreams };
}
