// Issue 10, test 4: the exact-match cache through a real proxy, the real fake provider and the
// official openai SDK. A repeated temperature-0 request (and an embeddings request) is answered
// from the cache without reaching the provider; another credential scope, temperature 0.7 or
// none, `stream: true`, `Cache-Control: no-store` and invalid answers never are; the store stays
// inside maxBytes under 10,000 distinct requests; a config swap keeps, resizes or drops it.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../../src/fake/server.ts';
import type { UpstreamCache } from '../../src/proxy/cache.ts';
import { chatBody, post, startRig, type EndpointDef, type Rig, type UpstreamDef } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** an upstream with a cache section (the rig's UpstreamDef does not list it) */
type Def = UpstreamDef & { cache?: Record<string, unknown> };

const CACHE = { enabled: true, ttl: '5m', maxEntries: 1000, maxBytes: 1_048_576 };

function cached(endpoints: (a: FakeProvider) => EndpointDef[], extra: Partial<Def> = {}): (fakes: FakeProvider[]) => Def[] {
  return ([a]) => [{ name: 'openai', endpoints: endpoints(a!), breaker: { volumeThreshold: 1000 }, cache: CACHE, ...extra }];
}

const single = (a: FakeProvider): EndpointDef[] => [{ name: 'primary', url: `${a.url}/v1` }];

function cacheOf(r: Rig): UpstreamCache {
  const cache = r.proxy.runtime.snapshot?.upstreams.get('openai')?.cache;
  if (!cache) throw new Error('the openai upstream has no cache');
  return cache;
}

const url = (r: Rig, path = 'chat/completions') => `${r.base}/openai/${path}`;
const zero = (content = 'hello') => chatBody('gpt-4.1', { temperature: 0, messages: [{ role: 'user', content }] });
const requests = (r: Rig) => r.fakes[0]!.stats().requests;

async function metricValue(r: Rig, name: string, labels: Record<string, string>): Promise<number> {
  const metric = r.proxy.metrics.registry.getSingleMetric(name);
  const found = (await metric?.get())?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return found?.value ?? 0;
}

describe('exact-match cache', () => {
  it('answers a repeated temperature-0 request from the cache: the provider sees it once, the hit says so', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    const first = await post(url(rig), zero());
    expect(first.status).toBe(200);
    expect(first.headers.get('x-breakwater-cache')).toBe('miss');
    // the same body with its keys in another order is the same request
    const reordered = JSON.stringify({ messages: [{ content: 'hello', role: 'user' }], temperature: 0, model: 'gpt-4.1' });
    const second = await post(url(rig), reordered);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-breakwater-cache')).toBe('hit');
    expect(second.headers.get('x-breakwater-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(second.headers.get('x-breakwater-request-id')).not.toBe(first.headers.get('x-breakwater-request-id'));
    expect(second.headers.get('x-breakwater-attempts')).toBe('0');
    expect(second.headers.get('age')).toBe('0');
    expect(second.text).toBe(first.text);
    expect(requests(rig)).toBe(1);
    expect(await metricValue(rig, 'breakwater_cache_hits_total', { upstream: 'openai' })).toBe(1);
    expect(await metricValue(rig, 'breakwater_cache_lookups_total', { upstream: 'openai', result: 'miss' })).toBe(1);
    expect(await metricValue(rig, 'breakwater_cache_lookups_total', { upstream: 'openai', result: 'hit' })).toBe(1);
    expect(cacheOf(rig).describe()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
  });

  it('serves the official openai SDK from the cache for chat at temperature 0 and for embeddings', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    const openai = new OpenAI({ baseURL: `${rig.base}/openai`, apiKey: 'sk-app-key-ignored', maxRetries: 0 });
    const ask = () => openai.chat.completions.create({ model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user', content: 'what is 2+2?' }] }).withResponse();
    const a = await ask();
    const b = await ask();
    expect(a.response.headers.get('x-breakwater-cache')).toBe('miss');
    expect(b.response.headers.get('x-breakwater-cache')).toBe('hit');
    expect(b.data).toEqual(a.data);
    expect(b.data.choices[0]?.message.content).toBeTruthy();
    const embed = () => openai.embeddings.create({ model: 'text-embedding-3-small', input: 'a sentence' }).withResponse();
    const e1 = await embed();
    const e2 = await embed();
    expect(e2.response.headers.get('x-breakwater-cache')).toBe('hit');
    expect(e2.data.data[0]?.embedding).toEqual(e1.data.data[0]?.embedding);
    expect(rig.fakes[0]!.stats().byPath).toEqual({ '/v1/chat/completions': 1, '/v1/embeddings': 1 });
  });

  it('serves the official Anthropic SDK from the cache for messages at temperature 0; another anthropic-version is another request', async () => {
    rig = await startRig({ fakes: 1, upstreams: ([a]): Def[] => [{ name: 'anthropic', api: 'anthropic', endpoints: [{ name: 'primary', url: a!.url }], cache: CACHE }] });
    const claude = new Anthropic({ baseURL: `${rig.base}/anthropic`, apiKey: 'sk-ant-app', maxRetries: 0 });
    // this SDK's types do not list temperature; the API and Breakwater read it from the body
    const params = { model: 'claude-sonnet-4-5', max_tokens: 64, temperature: 0, messages: [{ role: 'user' as const, content: 'hi' }] };
    const ask = (headers?: Record<string, string>) => claude.messages.create(params, { headers }).withResponse();
    const a = await ask();
    const b = await ask();
    expect(a.response.headers.get('x-breakwater-cache')).toBe('miss');
    expect(b.response.headers.get('x-breakwater-cache')).toBe('hit');
    expect(b.data).toEqual(a.data);
    expect((await ask({ 'anthropic-version': '2024-01-01' })).response.headers.get('x-breakwater-cache')).toBe('miss');
    expect(requests(rig)).toBe(2);
  });

  it('never serves one credential scope from another: app keys on a keyless endpoint, and a rotated endpoint key', async () => {
    process.env.BREAKWATER_CACHE_TEST_KEY = 'sk-account-one';
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]): Def[] => [
        { name: 'openai', endpoints: [{ name: 'keyless', url: `${a!.url}/v1`, auth: undefined }], cache: CACHE },
        { name: 'keyed', endpoints: [{ name: 'primary', url: `${a!.url}/v1`, auth: { env: 'BREAKWATER_CACHE_TEST_KEY' } }], cache: CACHE },
      ],
    });
    const asApp = (key: string) => post(url(rig!), zero(), { authorization: `Bearer ${key}` });
    expect((await asApp('app-a')).headers.get('x-breakwater-cache')).toBe('miss');
    expect((await asApp('app-a')).headers.get('x-breakwater-cache')).toBe('hit');
    expect((await asApp('app-b')).headers.get('x-breakwater-cache')).toBe('miss');
    expect(requests(rig)).toBe(2);

    // the keyed upstream: the endpoint's key is the scope; a rotation starts afresh
    const r = rig;
    r.fakes[0]!.resetStats();
    const keyedDefs = (env: string): Def[] => [
      { name: 'openai', endpoints: [{ name: 'keyless', url: `${r.fakes[0]!.url}/v1`, auth: undefined }], cache: CACHE },
      { name: 'keyed', endpoints: [{ name: 'primary', url: `${r.fakes[0]!.url}/v1`, auth: { env } }], cache: CACHE },
    ];
    const g = r.proxy.runtime.snapshot!.generation;
    const keyed = () => post(`${r.base}/keyed/chat/completions`, zero());
    expect((await keyed()).headers.get('x-breakwater-cache')).toBe('miss');
    expect((await keyed()).headers.get('x-breakwater-cache')).toBe('hit');
    process.env.BREAKWATER_CACHE_TEST_KEY_2 = 'sk-account-two';
    r.writeConfig(keyedDefs('BREAKWATER_CACHE_TEST_KEY_2'));
    await r.waitForGeneration(g);
    expect((await keyed()).headers.get('x-breakwater-cache')).toBe('miss');
    const sent = r.fakes[0]!.stats().recent.map((x) => x.headers.authorization);
    expect(sent).toEqual(['Bearer sk-account-one', 'Bearer sk-account-two']);
  });

  it('refuses a body that is not JSON with a 400 before any provider sees it, as when the cache parsed it', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    // strings and brackets balance, so the scan reads temperature 0; the cache's walk finds the bad number
    const r = await post(url(rig), '{"model": "gpt-4.1", "temperature": 0, "messages": [{"role": "user", "content": "hi"}], "seed": 01}');
    expect(r.status).toBe(400);
    expect((JSON.parse(r.text) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('not valid JSON') });
    expect(r.headers.get('x-should-retry')).toBe('false');
    expect(requests(rig)).toBe(0);
  });

  it('never serves temperature 0.7, an absent temperature or stream: true from the cache', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    for (const extra of [{ temperature: 0.7 }, {}, { temperature: 0, stream: true }]) {
      const before = requests(rig);
      for (let i = 0; i < 2; i++) {
        const res = await post(url(rig), chatBody('gpt-4.1', extra));
        expect(res.status).toBe(200);
        expect(res.headers.get('x-breakwater-cache')).toBeNull();
      }
      expect(requests(rig) - before).toBe(2);
    }
    expect(cacheOf(rig).describe()).toMatchObject({ entries: 0, hits: 0, misses: 0 });
  });

  it('Cache-Control: no-store neither reads nor writes; no-cache skips the read and stores the fresh answer', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    const noStore = await post(url(rig), zero(), { 'cache-control': 'no-store' });
    expect(noStore.headers.get('x-breakwater-cache')).toBe('bypass');
    expect(cacheOf(rig).store.size).toBe(0);
    expect((await post(url(rig), zero())).headers.get('x-breakwater-cache')).toBe('miss');
    expect((await post(url(rig), zero(), { 'cache-control': 'no-store' })).headers.get('x-breakwater-cache')).toBe('bypass');
    expect(requests(rig)).toBe(3);
    const fresh = await post(url(rig), zero(), { 'cache-control': 'no-cache' });
    expect(fresh.headers.get('x-breakwater-cache')).toBe('bypass');
    expect(requests(rig)).toBe(4);
    const hit = await post(url(rig), zero());
    expect(hit.headers.get('x-breakwater-cache')).toBe('hit');
    expect(hit.text).toBe(fresh.text); // the no-cache answer replaced the older one
    expect(requests(rig)).toBe(4);
    expect(await metricValue(rig, 'breakwater_cache_lookups_total', { upstream: 'openai', result: 'bypass' })).toBe(3);
  });

  it('never stores an invalid answer: empty choices, an error in a 200, a client error', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single, { retry: { maxAttempts: 1 } }) });
    const fake = rig.fakes[0]!;
    for (const fault of ['empty-choices', 'error-in-200', '400-context']) {
      fake.setFault({ fault });
      const stored = cacheOf(rig).store.size;
      const bad = await post(url(rig), zero(fault));
      expect(bad.status).toBeGreaterThanOrEqual(400);
      expect(cacheOf(rig).store.size).toBe(stored);
      fake.setFault(null);
      const before = requests(rig);
      const good = await post(url(rig), zero(fault));
      expect(good.status).toBe(200);
      expect(good.headers.get('x-breakwater-cache')).toBe('miss');
      expect(requests(rig)).toBe(before + 1);
      expect((await post(url(rig), zero(fault))).headers.get('x-breakwater-cache')).toBe('hit');
      expect(requests(rig)).toBe(before + 1);
    }
  });

  it('keeps the store across a config swap that leaves it unchanged, resizes it on new limits and drops it when disabled', async () => {
    rig = await startRig({ fakes: 1, upstreams: cached(single) });
    const r = rig;
    for (let i = 0; i < 5; i++) await post(url(r), zero(`q${i}`));
    const before = cacheOf(r);
    const defs = (cache: Record<string, unknown>, extra: Partial<Def> = {}): Def[] => [
      { name: 'openai', endpoints: single(r.fakes[0]!), breaker: { volumeThreshold: 1000 }, cache, ...extra },
    ];
    r.writeConfig(defs(CACHE, { retry: { maxAttempts: 2 } }));
    let g = await r.waitForGeneration(r.proxy.runtime.snapshot!.generation);
    expect(cacheOf(r)).toBe(before);
    expect((await post(url(r), zero('q0'))).headers.get('x-breakwater-cache')).toBe('hit');
    r.writeConfig(defs({ ...CACHE, maxEntries: 2 }));
    g = await r.waitForGeneration(g);
    expect(cacheOf(r).store.size).toBe(2);
    r.writeConfig(defs({ ...CACHE, enabled: false }));
    await r.waitForGeneration(g);
    expect(r.proxy.runtime.snapshot!.upstreams.get('openai')!.cache).toBeUndefined();
    expect(before.store.size).toBe(0);
    const off = await post(url(r), zero('q0'));
    expect(off.headers.get('x-breakwater-cache')).toBeNull();
    expect(requests(r)).toBe(6);
  });

  it('stays inside maxBytes while 10,000 distinct requests pass through it', { timeout: 180_000 }, async () => {
    const maxBytes = 32 * 1024;
    rig = await startRig({ fakes: 1, upstreams: cached(single, { cache: { enabled: true, maxEntries: 1_000_000, maxBytes } }), logLevel: 'warn' });
    const r = rig;
    const cache = cacheOf(r);
    const dispatcher = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
    const total = 10_000;
    let next = 0;
    let peakBytes = 0;
    let peakEntries = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const res = await request(url(r), { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"model":"m","temperature":0,"messages":[{"role":"user","content":"${i}"}]}`, dispatcher });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw new Error(`request ${i}: status ${res.statusCode}`);
        peakBytes = Math.max(peakBytes, cache.store.bytes);
        peakEntries = Math.max(peakEntries, cache.store.size);
        if (cache.store.bytes > maxBytes) throw new Error(`request ${i}: the cache holds ${cache.store.bytes} bytes, over ${maxBytes}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    await dispatcher.close();
    expect(cache.describe()).toMatchObject({ misses: total, hits: 0 });
    expect(peakBytes).toBeLessThanOrEqual(maxBytes);
    expect(peakBytes).toBeGreaterThan(maxBytes / 2); // it did fill up, and evicted to stay inside
    expect(peakEntries).toBeLessThan(total);
    expect(await metricValue(r, 'breakwater_cache_bytes', { upstream: 'openai' })).toBe(cache.store.bytes);
    // the most recent answers are still there
    expect((await post(url(r), `{"model":"m","temperature":0,"messages":[{"role":"user","content":"${total - 1}"}]}`)).headers.get('x-breakwater-cache')).toBe('hit');
  });
});
