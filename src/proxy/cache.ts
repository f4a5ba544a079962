// The exact-match cache (`spec.cache`): a repeated deterministic, non-streaming request is
// answered from memory instead of a provider. Looked up before the attempt loop (a hit touches
// no endpoint, breaker or budget), stored at the commit point (only a whole answer the
// classifier found valid: 200, JSON, the requested model's, never a stream or an error).
//
// What qualifies: a buffered JSON POST to a generation path with `temperature: 0` sent
// explicitly (absent means the provider's default, 1: not deterministic), or to embeddings
// (always deterministic), without `stream: true`. The app's `Cache-Control: no-store` neither
// reads nor writes; `no-cache` (RFC 9111 §5.2.1.4: revalidate first) skips the read but stores
// the fresh answer.
//
// The key is a sha256 over: a per-process salt, the upstream's scope, the app's credential
// headers when an endpoint has no key of its own, method, path and query as forwarded, the
// request headers that change an answer (API versions, betas, organization and project), and
// the body in canonical JSON (keys sorted at every depth), so key order does not matter and a
// key is 43 characters whatever the body. The canonical body is made from the request's bytes
// (canonical.ts: no JSON.parse, no string of the whole body; byte for byte what canonicalJson
// makes of the parsed body), and the whole input is hashed in one call. The scope is per upstream, not per endpoint: the
// lookup happens before an endpoint is chosen, and an upstream's endpoints are by design
// interchangeable for the same model (failover serves A's answer for a request meant for B).
// It is an HMAC of every endpoint's identity, key, model map and extra headers: a rotated key,
// a new url or model map starts a fresh store (an answer made under one account is never served
// under another). Keys never leave the process: only their salted digests are kept.
//
// Memory: LRU over entries and bytes (key + body + content type + a fixed overhead per entry)
// inside `maxBytes`; an answer larger than a quarter of it is not stored. The usual answer (one
// chunk, a view into the socket read that brought it) is kept without a copy and counts the whole
// read; one that would pin much more than itself is copied (keepsView). TTL on the injected
// clock, checked at lookup and pruned from the cold end at store.
import { createHmac, hash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Clock } from '../clock.ts';
import type { UpstreamConfig } from '../config/runtime.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Answer, ProxyRequest } from './attempt.ts';
import { CanonicalWriter, InvalidJson } from './canonical.ts';
import { CREDENTIAL_HEADERS } from './headers.ts';

export type CacheConfig = NonNullable<UpstreamConfig['cache']>;

/** fingerprints mean nothing outside this process (and cannot be checked against a guessed key) */
const SALT = randomBytes(32);
/** where a key's input is assembled (salt, scope, request line, canonical body) and hashed at once */
const WRITER = new CanonicalWriter();

/**
 * Bookkeeping per entry besides key, body and content type: the Map slot, the entry object, the
 * Buffer's view and ArrayBuffer objects and its backing store's header. Measured on Node 24
 * (heap + external after a forced GC, 100,000 entries): about 470 bytes; rounded up.
 */
export const ENTRY_OVERHEAD_BYTES = 512;
/** an answer larger than this share of maxBytes is not stored (it would evict a crowd for one) */
export const MAX_ENTRY_SHARE = 4;

/** request headers forwarded to the provider that change its answer (the rest, e.g. x-stainless-*, do not) */
const VARYING_HEADERS: readonly string[] = ['anthropic-version', 'anthropic-beta', 'openai-beta', 'openai-organization', 'openai-project'];

export interface CachedAnswer {
  readonly kind: 'hit';
  readonly body: Buffer;
  readonly contentType: string;
  /** clock.now() when stored */
  readonly storedAt: number;
  /** what this entry counts against maxBytes */
  readonly bytes: number;
}

/**
 * Keys sorted at every depth, no whitespace: equal JSON values give equal strings. Throws a
 * RangeError on absurd nesting (the caller treats the request as not cacheable).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const k of Object.keys(record).sort()) {
    const v = record[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** Is the answer to this request fully determined by the request? (see the header) */
export function deterministic(req: CacheableRequest): boolean {
  if (req.method !== 'POST' || req.streaming || !req.retryable) return false;
  // the scan's top-level fields when the body was scanned, the parsed body otherwise
  const { fields, json } = req;
  if (fields === undefined && json === undefined) return false; // not a JSON object
  if (req.pathKind === 'embeddings') return true;
  return req.pathKind === 'generation' && (fields !== undefined ? fields.temperature : json?.temperature) === 0;
}

/** The app's Cache-Control request directives that matter here (RFC 9111 §5.2.1). */
export function requestDirectives(value: string | string[] | undefined): Directives {
  if (value === undefined) return READ_WRITE;
  const v = (Array.isArray(value) ? value.join(',') : value).toLowerCase();
  if (/(^|[\s,])no-store($|[\s,=])/.test(v)) return NEITHER;
  if (/(^|[\s,])no-cache($|[\s,=])/.test(v)) return WRITE_ONLY;
  return READ_WRITE;
}

export interface Directives {
  readonly read: boolean;
  readonly write: boolean;
}
const READ_WRITE: Directives = Object.freeze({ read: true, write: true });
const WRITE_ONLY: Directives = Object.freeze({ read: false, write: true });
const NEITHER: Directives = Object.freeze({ read: false, write: false });

/**
 * The upstream's credential and routing identity, salted: every endpoint's identity (name,
 * url), key, model map, extra headers and query. Endpoints in identity order, so a priority
 * or weight change keeps it.
 */
export function upstreamScope(config: UpstreamConfig): string {
  const h = createHmac('sha256', SALT);
  h.update(`${config.api}\n`);
  for (const e of [...config.endpoints].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    h.update(`endpoint\n${e.key}\n${e.query}\n`);
    if (e.auth) h.update(`auth\n${e.auth.header}\n`).update(e.auth.value.reveal()).update('\n');
    for (const [from, to] of e.models) h.update(`model\n${from}\n${to}\n`);
    for (const [name, value] of e.headers) h.update(`header\n${name}\n${value}\n`);
  }
  return h.digest('base64url');
}

/**
 * The LRU store: one Map in recency order (a hit moves its entry to the end), bounded by
 * entries and bytes; TTL read at lookup on the injected clock.
 */
export class LruStore {
  readonly #entries = new Map<string, CachedAnswer>();
  readonly #clock: Clock;
  #config: CacheConfig;
  #bytes = 0;

  constructor(config: CacheConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get config(): CacheConfig {
    return this.#config;
  }

  /** the fresh entry for the key, made most recent; an expired one is dropped */
  get(key: string): CachedAnswer | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (this.#clock.now() - entry.storedAt >= this.#config.ttlMs) {
      this.#bytes -= entry.bytes;
      return undefined;
    }
    this.#entries.set(key, entry);
    return entry;
  }

  /**
   * Stores `body`, or a copy of it when it is a view into a larger buffer (which it would pin);
   * false when it is too large. The caller does not write into `body` afterwards.
   */
  set(key: string, body: Buffer, contentType: string): boolean {
    const keep = keepsView(body);
    // a view kept counts all the memory it holds alive
    const bytes = key.length + (keep ? body.buffer.byteLength : body.length) + contentType.length + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.#config.maxBytes / MAX_ENTRY_SHARE) return false;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    const now = this.#clock.now();
    this.#makeRoom(now, this.#config.maxEntries - 1, this.#config.maxBytes - bytes);
    this.#entries.set(key, { kind: 'hit', body: keep ? body : copyOf(body), contentType, storedAt: now, bytes });
    this.#bytes += bytes;
    return true;
  }

  /** new limits: evicts the least recent entries until they hold (the TTL applies at the next lookup) */
  resize(config: CacheConfig): void {
    this.#config = config;
    this.#makeRoom(undefined, config.maxEntries, config.maxBytes);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  /**
   * From the cold end, in one pass: expired entries (nobody asked for them since they expired;
   * only when `now` is given), then the least recent while over either limit.
   */
  #makeRoom(now: number | undefined, maxEntries: number, maxBytes: number): void {
    const entries = this.#entries;
    const ttlMs = this.#config.ttlMs;
    for (const key of entries.keys()) {
      const entry = entries.get(key)!;
      const expired = now !== undefined && now - entry.storedAt >= ttlMs;
      if (!expired && entries.size <= maxEntries && this.#bytes <= maxBytes) return;
      entries.delete(key);
      this.#bytes -= entry.bytes;
    }
  }
}

/**
 * Whether to keep `body` as it is rather than copy it: when it is at least half of the memory
 * it keeps alive. That is an answer that owns its memory (Buffer.concat of a large answer, an
 * inflated one) and the usual one-chunk answer, a view into the socket read that brought it
 * (Node allocates each read at its size: the answer plus its headers). Not a view into Node's
 * shared 8 KB pool (what Buffer.concat gives a small answer) or into a read of many answers.
 */
export function keepsView(body: Buffer): boolean {
  return body.buffer.byteLength <= 2 * body.length;
}

function copyOf(body: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(body.length);
  body.copy(copy);
  return copy;
}

/** A miss (or a bypass) to remember until the commit: where to store and whether to. */
export interface CachePlan {
  readonly kind: 'plan';
  readonly cache: UpstreamCache;
  readonly key: string;
  /** the store's epoch at the lookup: an answer is not stored into a store dropped since */
  readonly epoch: number;
  /** reported to the app in x-breakwater-cache */
  readonly result: 'miss' | 'bypass';
  readonly store: boolean;
}

/**
 * What the cache reads of a request: the buffered body's bytes and scanned fields (the request
 * path), or only the parsed body (unit tests, and any caller without bytes).
 */
export type CacheableRequest = Pick<ProxyRequest, 'method' | 'path' | 'search' | 'headers' | 'json' | 'pathKind' | 'streaming' | 'retryable'> &
  Partial<Pick<ProxyRequest, 'body' | 'fields'>>;

/** the body would have been keyed but is not JSON: the app's 400 (the cache was the only reader of the whole body) */
export interface InvalidBody {
  readonly kind: 'invalid';
  readonly message: string;
}

/** a hit (the stored answer itself) or the plan for the commit: no wrapper is allocated */
export type Consulted = CachedAnswer | CachePlan | InvalidBody;

export interface CacheDeps {
  clock: Clock;
  metrics: Metrics;
}

/**
 * One upstream's cache: its store, its scope and its metrics (children bound once). Kept by
 * upstream name across snapshot swaps (ProxyRuntime), like the retry budget.
 */
export class UpstreamCache {
  readonly store: LruStore;
  readonly #clock: Clock;
  #scope: string;
  /** the salt and the scope's bytes: how every key's input starts */
  #saltedScope: Buffer;
  /** some endpoint sends no key of its own: the app's credential is the identity */
  #appScoped: boolean;
  /** grows whenever the entries are dropped (new scope, disabled, upstream removed) */
  #epoch = 0;
  #disposed = false;
  /** what the bytes gauge was last set to */
  #reportedBytes = 0;
  hits = 0;
  misses = 0;
  bypasses = 0;
  readonly #counters: { hits: { inc(): void }; hit: { inc(): void }; miss: { inc(): void }; bypass: { inc(): void }; bytes: { set(v: number): void } };

  constructor(config: UpstreamConfig, cache: CacheConfig, deps: CacheDeps) {
    this.#clock = deps.clock;
    this.store = new LruStore(cache, deps.clock);
    this.#scope = upstreamScope(config);
    this.#saltedScope = Buffer.concat([SALT, Buffer.from(this.#scope)]);
    this.#appScoped = config.endpoints.some((e) => e.auth === undefined);
    const { metrics } = deps;
    const name = config.name;
    this.#counters = {
      hits: metrics.cacheHits.labels(name),
      hit: metrics.cacheLookups.labels(name, 'hit'),
      miss: metrics.cacheLookups.labels(name, 'miss'),
      bypass: metrics.cacheLookups.labels(name, 'bypass'),
      bytes: metrics.cacheBytes.labels(name),
    };
    this.#counters.bytes.set(0);
  }

  /** A snapshot swap: a new scope (key, url, model map…) drops every entry; new limits resize. */
  reconfigure(config: UpstreamConfig, cache: CacheConfig): void {
    const scope = upstreamScope(config);
    if (scope !== this.#scope) {
      this.store.clear();
      this.#epoch++;
    }
    this.#scope = scope;
    this.#saltedScope = Buffer.concat([SALT, Buffer.from(scope)]);
    this.#appScoped = config.endpoints.some((e) => e.auth === undefined);
    this.store.resize(cache);
    this.#reportBytes();
  }

  /** the cache is off or the upstream gone: memory is released now */
  dispose(): void {
    this.#disposed = true;
    this.#epoch++;
    this.store.clear();
    this.#reportBytes();
  }

  /**
   * For a request that qualifies: a hit, or the plan for its commit. Undefined when the request
   * does not qualify (nothing is counted then).
   */
  consult(req: CacheableRequest, appHeaders: IncomingHttpHeaders): Consulted | undefined {
    if (!deterministic(req)) return undefined;
    let key: string | undefined;
    try {
      key = this.key(req, appHeaders);
    } catch (err) {
      if (err instanceof InvalidJson) return { kind: 'invalid', message: err.message };
      throw err;
    }
    if (key === undefined) return undefined;
    const { read, write } = requestDirectives(appHeaders['cache-control']);
    if (!read) {
      this.bypasses++;
      this.#counters.bypass.inc();
      return { kind: 'plan', cache: this, key, epoch: this.#epoch, result: 'bypass', store: write };
    }
    const answer = this.store.get(key);
    if (answer) {
      this.hits++;
      this.#counters.hits.inc();
      this.#counters.hit.inc();
      return answer;
    }
    this.misses++;
    this.#counters.miss.inc();
    if (this.store.bytes !== this.#reportedBytes) this.#reportBytes(); // an expired entry may just have gone
    return { kind: 'plan', cache: this, key, epoch: this.#epoch, result: 'miss', store: true };
  }

  /**
   * The request's key, or undefined when its body cannot be put in canonical form (nested past
   * MAX_DEPTH, or too much to rearrange: canonical.ts). Throws InvalidJson when the body's bytes are not JSON. The input is assembled in
   * one scratch buffer and hashed in one call: salt, scope, the app's credentials when they are
   * the identity, request line, answer-changing headers, then the canonical body (from the bytes
   * when there are any, canonical.ts; the same bytes canonicalJson makes of the parsed body).
   */
  key(req: CacheableRequest, appHeaders: IncomingHttpHeaders): string | undefined {
    let head = this.#appScoped ? appCredentials(appHeaders) : '';
    head += `\n${req.method} ${req.path}${req.search}\n`;
    for (const name of VARYING_HEADERS) {
      const v = req.headers[name];
      if (v !== undefined) head += `${name}:${Array.isArray(v) ? v.join(',') : v}\n`;
    }
    WRITER.start();
    WRITER.writeBytes(this.#saltedScope);
    WRITER.writeString(head);
    const secretEnd = WRITER.length;
    try {
      if (Buffer.isBuffer(req.body)) WRITER.writeCanonical(req.body);
      else WRITER.writeString(canonicalJson(req.json));
      return hash('sha256', WRITER.bytes, 'base64url');
    } catch (err) {
      if (err instanceof InvalidJson) throw err;
      return undefined; // too complex to canonicalise (canonical.ts): not worth caching
    } finally {
      WRITER.finish(secretEnd); // the salt and an app's credential do not linger in the scratch buffer
    }
  }

  /**
   * At the commit: keeps a whole valid answer of the requested model (see shouldStore), unless
   * the store was dropped since the lookup (a request still running on an older snapshot).
   */
  storeAnswer(plan: Pick<CachePlan, 'key' | 'epoch'>, answer: Pick<Answer, 'result' | 'fallbackModel'>): void {
    if (this.#disposed || plan.epoch !== this.#epoch) return;
    const { result } = answer;
    if (result.body.kind !== 'buffered' || !shouldStore(result.status, result.outcome.kind, result.headers, answer.fallbackModel)) return;
    this.store.set(plan.key, result.body.bytes, String(result.headers['content-type']));
    this.#reportBytes();
  }

  #reportBytes(): void {
    this.#reportedBytes = this.store.bytes;
    this.#counters.bytes.set(this.#reportedBytes);
  }

  /** for /debug/state */
  describe() {
    const { ttlMs, maxEntries, maxBytes } = this.store.config;
    return { entries: this.store.size, bytes: this.store.bytes, maxEntries, maxBytes, ttlMs, hits: this.hits, misses: this.misses, bypasses: this.bypasses };
  }

  /** a hit's age in whole seconds (the Age header, RFC 9111 §5.1) */
  ageOf(answer: CachedAnswer): number {
    return Math.max(0, Math.floor((this.#clock.now() - answer.storedAt) / 1000));
  }
}

/** the app's credential headers, when the endpoint has no key: the app's key is then the identity (hashed, never kept) */
function appCredentials(headers: IncomingHttpHeaders): string {
  let out = '';
  for (const name of CREDENTIAL_HEADERS) {
    const v = headers[name];
    if (v !== undefined) out += `${name}:${Array.isArray(v) ? v.join(',') : v}\n`;
  }
  return out;
}

/**
 * Only a whole valid answer: 200, classified ok (forward.ts ran the dialect's body checks on
 * every JSON answer), JSON, made by the requested model (a fallback's answer is not what a
 * later `x-breakwater-fallback: off` request asked for), and not marked no-store by the provider.
 */
export function shouldStore(status: number, outcome: string, headers: IncomingHttpHeaders, fallbackModel: string | undefined): boolean {
  if (status !== 200 || outcome !== 'ok' || fallbackModel !== undefined) return false;
  const type = headers['content-type'];
  if (typeof type !== 'string' || !type.includes('json')) return false;
  const control = headers['cache-control'];
  return control === undefined || !/no-store/i.test(Array.isArray(control) ? control.join(',') : control);
}

/** Writes a hit: the stored body, with the usual request id, `x-breakwater-cache: hit` and `Age`. */
export function sendHit(res: ServerResponse, cache: UpstreamCache, answer: CachedAnswer, requestId: string): void {
  res.writeHead(200, {
    'content-type': answer.contentType,
    'content-length': answer.body.length,
    age: String(cache.ageOf(answer)),
    'x-breakwater-request-id': requestId,
    'x-breakwater-cache': 'hit',
    'x-breakwater-attempts': '0',
  });
  res.end(answer.body);
}

/** The cache an upstream gets in a new snapshot: the same store when enabled (reconfigured), none when off. */
export function cacheFor(existing: UpstreamCache | undefined, config: UpstreamConfig, deps: CacheDeps): UpstreamCache | undefined {
  if (config.cache === undefined) {
    existing?.dispose();
    return undefined;
  }
  if (existing) {
    existing.reconfigure(config, config.cache);
    return existing;
  }
  return new UpstreamCache(config, config.cache, deps);
}
