// The exact-match cache on virtual time: LRU eviction by entries and by bytes, TTL expiry,
// the canonical key (key order does not matter, everything else that changes an answer does),
// which requests qualify, the app's Cache-Control, and what a snapshot swap keeps or drops.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret, type UpstreamConfig } from '../../../src/config/runtime.ts';
import {
  cacheFor,
  canonicalJson,
  ENTRY_OVERHEAD_BYTES,
  LruStore,
  requestDirectives,
  shouldStore,
  UpstreamCache,
  type CacheableRequest,
  type CacheConfig,
} from '../../../src/proxy/cache.ts';
import { scanBody } from '../../../src/proxy/scan.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { manualClock } from '../../support/clock.ts';
import { upstream } from '../../support/loop.ts';

const KEY = 'k'.repeat(43);
const cost = (body: number, type = 'application/json') => KEY.length + body + type.length + ENTRY_OVERHEAD_BYTES;

function store(config: Partial<CacheConfig> = {}) {
  const clock = manualClock();
  return { clock, lru: new LruStore({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000, ...config }, clock) };
}

const key = (i: number) => `${String(i).padStart(2, '0')}${'k'.repeat(41)}`;

describe('LruStore', () => {
  it('evicts the least recently used entry when maxEntries is reached; a hit makes an entry recent', () => {
    const { lru } = store({ maxEntries: 3 });
    for (const i of [1, 2, 3]) lru.set(key(i), Buffer.from(`{"n":${i}}`), 'application/json');
    expect(lru.get(key(1))?.body.toString()).toBe('{"n":1}'); // 1 is now the most recent
    lru.set(key(4), Buffer.from('{"n":4}'), 'application/json');
    expect(lru.size).toBe(3);
    expect(lru.get(key(2))).toBeUndefined(); // the least recent went
    expect(lru.get(key(1))).toBeDefined();
    expect(lru.get(key(3))).toBeDefined();
    expect(lru.get(key(4))).toBeDefined();
  });

  it('evicts least recent entries until the bytes fit, counting key, body, content type and overhead', () => {
    const body = Buffer.alloc(200, 0x61);
    const { lru } = store({ maxBytes: cost(200) * 8, maxEntries: 1000 });
    for (let i = 0; i < 8; i++) expect(lru.set(key(i), body, 'application/json')).toBe(true);
    expect(lru.bytes).toBe(cost(200) * 8);
    lru.get(key(0));
    lru.set(key(8), body, 'application/json');
    expect(lru.size).toBe(8);
    expect(lru.bytes).toBe(cost(200) * 8);
    expect(lru.get(key(1))).toBeUndefined(); // the least recent went, not the one just read
    expect(lru.get(key(0))).toBeDefined();
    // one worth two entries pushes out the two least recent
    expect(lru.set(key(9), Buffer.alloc(2 * cost(200) - cost(0), 0x62), 'application/json')).toBe(true);
    expect(lru.bytes).toBe(cost(200) * 8);
    expect(lru.size).toBe(7);
    expect(lru.get(key(2))).toBeUndefined();
    expect(lru.get(key(3))).toBeUndefined();
    expect(lru.get(key(4))).toBeDefined();
  });

  it('refuses an answer larger than a quarter of maxBytes and keeps what it holds', () => {
    const { lru } = store({ maxBytes: 4096 });
    expect(lru.set(key(1), Buffer.alloc(100), 'application/json')).toBe(true);
    expect(lru.set(key(2), Buffer.alloc(1024), 'application/json')).toBe(false);
    expect(lru.size).toBe(1);
    expect(lru.get(key(2))).toBeUndefined();
  });

  it('keeps a copy of the body: a view into a larger buffer neither pins it nor changes later', () => {
    const { lru } = store();
    const big = Buffer.from('xx{"a":1}yy');
    lru.set(key(1), big.subarray(2, 9), 'application/json');
    big.fill(0x7a);
    const got = lru.get(key(1))!.body;
    expect(got.toString()).toBe('{"a":1}');
    expect(got.buffer.byteLength).toBe(got.length);
  });

  it('stores a buffer that is the whole of its own memory as it is (nothing to pin), still counting its bytes', () => {
    const { lru } = store();
    const own = Buffer.allocUnsafeSlow(7);
    own.write('{"a":1}');
    lru.set(key(1), own, 'application/json');
    expect(lru.get(key(1))!.body).toBe(own);
    expect(lru.bytes).toBe(cost(7));
    // a one-chunk answer from undici: a view into the socket read, after the headers; kept, counting the whole read
    const read = Buffer.allocUnsafeSlow(12);
    read.write('HTTP{"c":33}');
    lru.set(key(3), read.subarray(4), 'application/json');
    expect(lru.get(key(3))!.body.buffer).toBe(read.buffer);
    expect(lru.bytes).toBe(cost(7) + cost(12));
    const pooled = Buffer.from('{"b":2}'); // a view into Node's 8 KB pool: copied
    lru.set(key(2), pooled, 'application/json');
    expect(lru.get(key(2))!.body).not.toBe(pooled);
    expect(lru.get(key(2))!.body.buffer.byteLength).toBe(7);
  });

  it('serves an entry until its ttl passes on the injected clock, then drops it and its bytes', () => {
    const { lru, clock } = store({ ttlMs: 10_000 });
    lru.set(key(1), Buffer.from('{}'), 'application/json');
    clock.advance(9_999);
    expect(lru.get(key(1))).toBeDefined(); // a hit does not extend the ttl
    clock.advance(1);
    expect(lru.get(key(1))).toBeUndefined();
    expect(lru.size).toBe(0);
    expect(lru.bytes).toBe(0);
  });

  it('prunes expired entries at the cold end when it stores', () => {
    const { lru, clock } = store({ ttlMs: 1_000 });
    lru.set(key(1), Buffer.from('{}'), 'application/json');
    lru.set(key(2), Buffer.from('{}'), 'application/json');
    clock.advance(1_000);
    lru.set(key(3), Buffer.from('{}'), 'application/json');
    expect(lru.size).toBe(1);
    expect(lru.bytes).toBe(cost(2));
  });

  it('replacing an entry under the same key counts its bytes once', () => {
    const { lru } = store();
    lru.set(key(1), Buffer.from('{"a":1}'), 'application/json');
    lru.set(key(1), Buffer.from('{"a":22}'), 'application/json');
    expect(lru.size).toBe(1);
    expect(lru.bytes).toBe(cost(8));
  });

  it('resize to smaller limits evicts the least recent entries at once', () => {
    const { lru } = store();
    for (let i = 0; i < 10; i++) lru.set(key(i), Buffer.from('{}'), 'application/json');
    lru.resize({ ttlMs: 60_000, maxEntries: 4, maxBytes: 1_000_000 });
    expect(lru.size).toBe(4);
    expect(lru.get(key(5))).toBeUndefined();
    expect(lru.get(key(9))).toBeDefined();
    lru.resize({ ttlMs: 60_000, maxEntries: 4, maxBytes: cost(2) * 2 });
    expect(lru.size).toBe(2);
    expect(lru.bytes).toBe(cost(2) * 2);
  });
});

describe('canonical JSON', () => {
  it('is independent of key order at every depth and keeps array order', () => {
    const a = JSON.parse('{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}],"x":{"b":1,"a":[1,2]}}') as unknown;
    const b = JSON.parse('{"x":{"a":[1,2],"b":1},"messages":[{"content":"hi","role":"user"}],"temperature":0.0,"model":"m"}') as unknown;
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"messages":[{"content":"hi","role":"user"}],"model":"m","temperature":0,"x":{"a":[1,2],"b":1}}');
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });
});

const resolver = (keys: Record<string, string>) => (auth: { env?: string }) => new Secret(keys[auth.env ?? ''] ?? 'none');

function compiled(spec: Record<string, unknown> = {}, keys: Record<string, string> = { K: 'sk-one' }): UpstreamConfig {
  return compileUpstream(
    upstream({ cache: { enabled: true, ttl: '1m', maxEntries: 100, maxBytes: 1_000_000 }, each: { auth: { env: 'K' } }, ...spec }),
    resolver(keys) as Parameters<typeof compileUpstream>[1],
  );
}

function request(json: Record<string, unknown>, over: Partial<CacheableRequest> = {}): CacheableRequest {
  return { method: 'POST', path: '/chat/completions', search: '', headers: {}, json, pathKind: 'generation', streaming: false, retryable: true, ...over };
}

const chat = (extra: Record<string, unknown> = {}) => ({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }], temperature: 0, ...extra });

function upstreamCache(config = compiled()) {
  const clock = manualClock();
  const metrics = createMetrics(new Registry());
  return { clock, metrics, cache: new UpstreamCache(config, config.cache!, { clock, metrics }) };
}

const answer = (body = '{"choices":[{"message":{"content":"x"}}]}', status = 200, headers: Record<string, string> = { 'content-type': 'application/json' }) => ({
  result: { kind: 'answer' as const, outcome: { kind: 'ok' as const }, status, headers, body: { kind: 'buffered' as const, bytes: Buffer.from(body) } },
  fallbackModel: undefined,
});

describe('UpstreamCache', () => {
  it('the key ignores key order but not path, query, answer-changing headers or the body', () => {
    const { cache } = upstreamCache();
    const k = (r: CacheableRequest) => cache.key(r, {});
    const base = k(request(chat()));
    expect(base).toHaveLength(43);
    expect(k(request({ temperature: 0, messages: [{ content: 'hi', role: 'user' }], model: 'gpt-4.1' }))).toBe(base);
    expect(k(request(chat(), { path: '/responses' }))).not.toBe(base);
    expect(k(request(chat(), { search: '?api-version=2' }))).not.toBe(base);
    expect(k(request(chat(), { headers: { 'anthropic-version': '2023-06-01' } }))).not.toBe(base);
    expect(k(request(chat(), { headers: { 'x-stainless-retry-count': '1' } }))).toBe(base);
    expect(k(request(chat({ seed: 1 })))).not.toBe(base);
    // the app's key plays no part while every endpoint sends its own
    expect(cache.key(request(chat()), { authorization: 'Bearer app-a' })).toBe(base);
  });

  it('keys a body from its bytes exactly as from its parsed form: key order, whitespace, escapes and 1.0 against 1 do not matter', () => {
    const { cache } = upstreamCache();
    const fromJson = cache.key(request(chat()), {});
    const fromBytes = (text: string) => {
      const bytes = Buffer.from(text);
      const scan = scanBody(bytes);
      if (scan.kind !== 'object') throw new Error('not an object');
      return cache.key(request({}, { json: undefined, body: bytes, fields: scan.fields }), {});
    };
    expect(fromBytes(JSON.stringify(chat()))).toBe(fromJson);
    expect(fromBytes('{ "temperature": 0.0, "messages": [ { "content": "h\u0069", "role": "user" } ], "model": "gpt-4.1" }')).toBe(fromJson);
    expect(fromBytes(JSON.stringify(chat({ seed: 1 })))).not.toBe(fromJson);
    expect(fromBytes('{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"temperature":0,"n":1.0}')).toBe(cache.key(request(chat({ n: 1 })), {}));
  });

  it('reports a body that is not JSON as invalid (the app gets a 400) instead of keying it, and counts nothing', () => {
    const { cache } = upstreamCache();
    const bytes = Buffer.from('{"model":"gpt-4.1","temperature":0,"messages":[],"seed":01}'); // sound structure: the scan passes it
    const scan = scanBody(bytes);
    if (scan.kind !== 'object') throw new Error('the scan should pass it');
    expect(cache.consult(request({}, { json: undefined, body: bytes, fields: scan.fields }), {})).toMatchObject({ kind: 'invalid', message: expect.stringContaining('number') });
    expect(cache.describe()).toMatchObject({ hits: 0, misses: 0, bypasses: 0 });
  });

  it('scopes by the app credential when an endpoint has no key of its own', () => {
    const config = compileUpstream(upstream({ cache: { enabled: true } }), resolver({}) as Parameters<typeof compileUpstream>[1]);
    const { cache } = upstreamCache(config);
    const a = cache.key(request(chat()), { authorization: 'Bearer app-a' });
    expect(cache.key(request(chat()), { authorization: 'Bearer app-b' })).not.toBe(a);
    expect(cache.key(request(chat()), { authorization: 'Bearer app-a' })).toBe(a);
    expect(a).not.toContain('app-a');
  });

  it('qualifies explicit temperature 0 generation and embeddings only, never streams or unbuffered bodies', () => {
    const { cache } = upstreamCache();
    expect(cache.consult(request(chat()), {})?.kind).toBe('plan');
    expect(cache.consult(request(chat({ temperature: undefined })), {})).toBeUndefined(); // absent: the provider's default of 1
    expect(cache.consult(request(chat({ temperature: 0.7 })), {})).toBeUndefined();
    expect(cache.consult(request(chat(), { streaming: true }), {})).toBeUndefined();
    expect(cache.consult(request(chat(), { retryable: false }), {})).toBeUndefined();
    expect(cache.consult(request(chat(), { method: 'GET' }), {})).toBeUndefined();
    expect(cache.consult(request({ model: 'e', input: 'x' }, { path: '/embeddings', pathKind: 'embeddings' }), {})?.kind).toBe('plan');
    expect(cache.consult(request({ model: 'm', input: 'x' }, { path: '/moderations', pathKind: 'other' }), {})).toBeUndefined();
  });

  it('answers a repeated request from the store and counts hits, misses and bypasses', async () => {
    const { cache, metrics } = upstreamCache();
    const first = cache.consult(request(chat()), {});
    expect(first).toMatchObject({ kind: 'plan', result: 'miss', store: true });
    if (first?.kind !== 'plan') throw new Error('expected a plan');
    cache.storeAnswer(first, answer());
    const second = cache.consult(request(chat()), {});
    expect(second?.kind).toBe('hit');
    if (second?.kind === 'hit') expect(second.body.toString()).toBe('{"choices":[{"message":{"content":"x"}}]}');
    expect(cache.consult(request(chat()), { 'cache-control': 'no-cache' })).toMatchObject({ kind: 'plan', result: 'bypass', store: true });
    expect(cache.consult(request(chat()), { 'cache-control': 'max-age=0, no-store' })).toMatchObject({ kind: 'plan', result: 'bypass', store: false });
    expect(cache.describe()).toMatchObject({ entries: 1, hits: 1, misses: 1, bypasses: 2 });
    const lookups = (await metrics.cacheLookups.get()).values.map((v) => [v.labels.result, v.value]);
    expect(Object.fromEntries(lookups)).toEqual({ hit: 1, miss: 1, bypass: 2 });
    expect((await metrics.cacheHits.get()).values[0]?.value).toBe(1);
    expect((await metrics.cacheBytes.get()).values[0]?.value).toBe(cache.store.bytes);
  });

  it('stores only a whole valid answer of the requested model', () => {
    expect(shouldStore(200, 'ok', { 'content-type': 'application/json' }, undefined)).toBe(true);
    expect(shouldStore(400, 'client_fault', { 'content-type': 'application/json' }, undefined)).toBe(false);
    expect(shouldStore(200, 'invalid_response', { 'content-type': 'application/json' }, undefined)).toBe(false);
    expect(shouldStore(200, 'ok', { 'content-type': 'text/plain' }, undefined)).toBe(false);
    expect(shouldStore(200, 'ok', {}, undefined)).toBe(false);
    expect(shouldStore(200, 'ok', { 'content-type': 'application/json' }, 'gpt-4.1-mini')).toBe(false);
    expect(shouldStore(200, 'ok', { 'content-type': 'application/json', 'cache-control': 'private, no-store' }, undefined)).toBe(false);
    const { cache } = upstreamCache();
    cache.storeAnswer({ key: 'x', epoch: 0 }, { ...answer(), fallbackModel: 'small' });
    cache.storeAnswer({ key: 'y', epoch: 0 }, answer('{}', 201));
    expect(cache.store.size).toBe(0);
    cache.storeAnswer({ key: 'z', epoch: 0 }, answer());
    expect(cache.store.size).toBe(1);
  });

  it('does not store an answer into a store dropped after its lookup (a request on an older snapshot)', () => {
    const deps = { clock: manualClock(), metrics: createMetrics(new Registry()) };
    const cache = cacheFor(undefined, compiled(), deps)!;
    const plan = cache.consult(request(chat()), {});
    if (plan?.kind !== 'plan') throw new Error('expected a plan');
    cacheFor(cache, compiled({}, { K: 'sk-rotated' }), deps);
    cache.storeAnswer(plan, answer());
    expect(cache.store.size).toBe(0);
    const late = cache.consult(request(chat()), {});
    if (late?.kind !== 'plan') throw new Error('expected a plan');
    cacheFor(cache, compiled({ cache: { enabled: false } }), deps);
    cache.storeAnswer(late, answer());
    expect(cache.store.size).toBe(0);
  });

  it('reads the app Cache-Control as RFC 9111 says: no-cache skips the read, no-store skips both', () => {
    expect(requestDirectives(undefined)).toEqual({ read: true, write: true });
    expect(requestDirectives('max-age=60')).toEqual({ read: true, write: true });
    expect(requestDirectives('No-Cache')).toEqual({ read: false, write: true });
    expect(requestDirectives(['public', 'no-store'])).toEqual({ read: false, write: false });
    expect(requestDirectives('x-no-cache-please')).toEqual({ read: true, write: true });
  });

  it('a swap keeps the store when nothing that scopes it changed, resizes on new limits, drops it on a new key or when disabled', () => {
    const deps = { clock: manualClock(), metrics: createMetrics(new Registry()) };
    const cache = cacheFor(undefined, compiled(), deps)!;
    for (let i = 0; i < 10; i++) cache.store.set(key(i), Buffer.from('{}'), 'application/json');
    expect(cacheFor(cache, compiled({ retry: { maxAttempts: 2 } }), deps)).toBe(cache);
    expect(cache.store.size).toBe(10);
    cacheFor(cache, compiled({ cache: { enabled: true, maxEntries: 3 } }), deps);
    expect(cache.store.size).toBe(3);
    cacheFor(cache, compiled({ cache: { enabled: true, maxEntries: 3 } }, { K: 'sk-rotated' }), deps);
    expect(cache.store.size).toBe(0);
    cache.store.set(key(1), Buffer.from('{}'), 'application/json');
    expect(cacheFor(cache, compiled({ cache: { enabled: false } }), deps)).toBeUndefined();
    expect(cache.store.size).toBe(0);
  });
});
