// spec -> UpstreamConfig: defaults from defaults.ts filled into new objects, durations in ms,
// endpoints ordered and normalized, auth resolved, and the caller's document left untouched.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compileConfig, compileUpstream, ConfigError, describeDocument } from '../../../src/config/compile.ts';
import { DEFAULTS } from '../../../src/config/defaults.ts';
import { parseDuration } from '../../../src/config/duration.ts';
import { Secret } from '../../../src/config/runtime.ts';
import { deepFreeze, doc, fakeAuth, minimalSpec, noAuth, withSpec } from './docs.ts';

describe('compileUpstream defaults', () => {
  const minimal = deepFreeze(doc());
  const before = JSON.stringify(minimal);
  const u = compileUpstream(minimal, noAuth); // throws if it writes a default into the frozen input

  it('leaves the caller\'s document as it was', () => {
    expect(JSON.stringify(minimal)).toBe(before);
  });

  it('fills every default from defaults.ts, durations in ms', () => {
    expect(u.api).toBe(DEFAULTS.api);
    expect(u.required).toBe(DEFAULTS.required);
    expect(u.breaker).toEqual({
      errorThresholdPercentage: DEFAULTS.breaker.errorThresholdPercentage,
      volumeThreshold: DEFAULTS.breaker.volumeThreshold,
      consecutiveFailures: DEFAULTS.breaker.consecutiveFailures,
      rollingWindowMs: parseDuration(DEFAULTS.breaker.rollingWindow),
      openDurationMs: parseDuration(DEFAULTS.breaker.openDuration),
      halfOpenRamp: [...DEFAULTS.breaker.halfOpenRamp],
      failOn: new Set(DEFAULTS.breaker.failOn),
      key: expect.any(String),
    });
    expect(u.retry).toEqual({
      maxAttempts: DEFAULTS.retry.maxAttempts,
      backoff: {
        initialMs: parseDuration(DEFAULTS.retry.backoff.initial),
        maxMs: parseDuration(DEFAULTS.retry.backoff.max),
        jitter: DEFAULTS.retry.backoff.jitter,
      },
      budget: { ...DEFAULTS.retry.budget },
      respectRetryAfter: DEFAULTS.retry.respectRetryAfter,
      maxRetryAfterMs: parseDuration(DEFAULTS.retry.maxRetryAfter),
      paths: new Set(DEFAULTS.retry.paths),
    });
    expect(u.timeouts).toEqual({
      connectMs: parseDuration(DEFAULTS.timeouts.connect),
      firstByteMs: parseDuration(DEFAULTS.timeouts.firstByte),
      responseMs: parseDuration(DEFAULTS.timeouts.response),
      idleMs: parseDuration(DEFAULTS.timeouts.idle),
      totalMs: parseDuration(DEFAULTS.timeouts.total),
    });
    expect(u.validate).toEqual({ ...DEFAULTS.validate });
    expect(u.fallbacks.size).toBe(0);
    expect(u.endpoints[0]).toMatchObject({ priority: DEFAULTS.endpoint.priority, weight: DEFAULTS.endpoint.weight, auth: undefined, maxConcurrent: undefined, rateLimit: undefined });
  });

  it('leaves every traffic-shaping feature off except the queue, which has its documented size and wait', () => {
    expect(u.queue).toEqual({ maxSize: 256, maxWaitMs: 5000 });
    expect(u.cache).toBeUndefined();
    expect(u.healthCheck).toBeUndefined();
    expect(u.hedge).toBeUndefined();
    expect(u.balance).toBe('weighted');
  });

  it('matches the values DESIGN.md section 3 documents', () => {
    expect(u.breaker).toMatchObject({ errorThresholdPercentage: 50, volumeThreshold: 10, rollingWindowMs: 30_000, openDurationMs: 30_000, halfOpenRamp: [1, 5, 10] });
    expect(u.retry).toMatchObject({ maxAttempts: 3, backoff: { initialMs: 200, maxMs: 5000, jitter: 'full' }, budget: { ratio: 0.2, minPerSecond: 2 }, maxRetryAfterMs: 60_000 });
    expect(u.timeouts).toEqual({ connectMs: 2000, firstByteMs: 60_000, responseMs: 300_000, idleMs: 30_000, totalMs: 600_000 });
  });

  it('gives each compile its own collections, never the defaults themselves', () => {
    const again = compileUpstream(doc(), noAuth);
    expect(again.breaker.halfOpenRamp).not.toBe(u.breaker.halfOpenRamp);
    expect(u.breaker.halfOpenRamp).not.toBe(DEFAULTS.breaker.halfOpenRamp);
    (u.breaker.halfOpenRamp as number[]).push(99);
    expect(DEFAULTS.breaker.halfOpenRamp).toEqual([1, 5, 10]);
    expect(again.breaker.halfOpenRamp).toEqual([1, 5, 10]);
  });
});

describe('compileUpstream with every field set', () => {
  const spec = {
    api: 'anthropic',
    required: true,
    endpoints: [
      { name: 'backup', url: 'https://backup.example.com/v1/', priority: 2, weight: 5 },
      { name: 'first', url: 'https://api.anthropic.com/v1?beta=true', priority: 0, query: { 'api-version': '2025 04', a: 'b&c' }, headers: { 'Anthropic-Beta': 'x' }, models: { big: 'claude-big-2025' } },
      { name: 'second', url: 'https://second.example.com', priority: 0, auth: { env: 'SECOND_KEY' } },
    ],
    breaker: { errorThresholdPercentage: 25, volumeThreshold: 4, consecutiveFailures: 3, rollingWindow: '1m30s', openDuration: '45s', halfOpenRamp: [2, 4], failOn: ['server_error', 'timeout'] },
    retry: {
      maxAttempts: 5,
      backoff: { initial: '100ms', max: '2s', jitter: 'none' },
      budget: { ratio: 0.5, minPerSecond: 1 },
      respectRetryAfter: false,
      maxRetryAfter: '10s',
      paths: ['/v1/messages/', 'messages/count_tokens', 'v1/complete'],
    },
    timeouts: { connect: '500ms', firstByte: '5s', response: '1m', idle: '10s', total: '2m' },
    fallbacks: [{ model: 'big', chain: [{ model: 'medium', maxTokens: 2048 }, { model: 'small' }] }],
    validate: { emptyChoices: false, errorInBody: false },
    queue: { maxSize: 10, maxWait: '250ms' },
    cache: { enabled: true, ttl: '1m', maxEntries: 50, maxBytes: 65536 },
    healthCheck: { enabled: true, path: '/v1/models/', interval: '3s', timeout: '1s' },
    balance: 'leastLatency',
    hedge: { after: '1500ms', maxExtra: 2 },
  };
  const frozen = deepFreeze(doc(spec));
  const before = JSON.stringify(frozen);
  const auth = fakeAuth('sk-ant-secret');
  const u = compileUpstream(frozen, auth);

  it('does not write into the caller\'s (deep-frozen) document', () => {
    expect(JSON.stringify(frozen)).toBe(before);
  });

  it('takes every value from the spec, durations in ms', () => {
    expect(u).toMatchObject({ name: 'chat', api: 'anthropic', required: true });
    expect(u.breaker).toEqual({ errorThresholdPercentage: 25, volumeThreshold: 4, consecutiveFailures: 3, rollingWindowMs: 90_000, openDurationMs: 45_000, halfOpenRamp: [2, 4], failOn: new Set(['server_error', 'timeout']), key: expect.any(String) });
    expect(u.retry).toEqual({
      maxAttempts: 5,
      backoff: { initialMs: 100, maxMs: 2000, jitter: 'none' },
      budget: { ratio: 0.5, minPerSecond: 1 },
      respectRetryAfter: false,
      maxRetryAfterMs: 10_000,
      paths: new Set(['messages', 'messages/count_tokens', 'complete']),
    });
    expect(u.timeouts).toEqual({ connectMs: 500, firstByteMs: 5000, responseMs: 60_000, idleMs: 10_000, totalMs: 120_000 });
    expect(u.validate).toEqual({ emptyChoices: false, errorInBody: false });
    expect([...u.fallbacks]).toEqual([['big', [{ model: 'medium', maxTokens: 2048 }, { model: 'small', maxTokens: undefined }]]]);
    expect(u.queue).toEqual({ maxSize: 10, maxWaitMs: 250 });
    expect(u.cache).toEqual({ ttlMs: 60_000, maxEntries: 50, maxBytes: 65536 });
    expect(u.healthCheck).toEqual({ path: 'models', intervalMs: 3000, timeoutMs: 1000 });
    expect(u.balance).toBe('leastLatency');
    expect(u.hedge).toEqual({ afterMs: 1500, maxExtra: 2 });
  });

  it('compiles an endpoint\'s bulkhead and rate limits, and a cache or health check that is present but not enabled stays off', () => {
    const e = compileUpstream(
      doc({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', maxConcurrent: 4, rateLimit: { tokensPerMinute: 1000 } }], cache: { ttl: '1m' }, healthCheck: { enabled: false } }),
      noAuth,
    );
    expect(e.endpoints[0]).toMatchObject({ maxConcurrent: 4, rateLimit: { requestsPerMinute: undefined, tokensPerMinute: 1000 } });
    expect(e.cache).toBeUndefined();
    expect(e.healthCheck).toBeUndefined();
  });

  it('orders endpoints by priority, keeping spec order within a priority', () => {
    expect(u.endpoints.map((e) => e.name)).toEqual(['first', 'second', 'backup']);
  });

  it('normalizes each endpoint: identity key, origin, base path, query, headers, models', () => {
    const [first, second, backup] = u.endpoints;
    expect(first).toMatchObject({
      key: 'chat/first/https://api.anthropic.com/v1?beta=true',
      origin: 'https://api.anthropic.com',
      basePath: '/v1',
      query: '&beta=true&api-version=2025%2004&a=b%26c',
      headers: [['anthropic-beta', 'x']],
      weight: 100,
    });
    expect(first!.models).toEqual(new Map([['big', 'claude-big-2025']]));
    expect(second).toMatchObject({ basePath: '', query: '', headers: [] });
    expect(backup).toMatchObject({ key: 'chat/backup/https://backup.example.com/v1/', basePath: '/v1', priority: 2, weight: 5 });
  });

  it('resolves auth through the resolver with the endpoint\'s spec path, and the dialect\'s default header', () => {
    expect(auth.calls).toEqual(['spec.endpoints[2].auth:env']);
    const a = u.endpoints[1]!.auth!;
    expect(a.header).toBe('x-api-key');
    expect(a.value.reveal()).toBe('sk-ant-secret');
    expect(a.source).toBe('env SECOND_KEY');
  });

  it('never shows the key in the compiled config', () => {
    expect(JSON.stringify({ ...u, endpoints: u.endpoints })).not.toContain('sk-ant-secret');
    expect(inspect(u, { depth: 10 })).not.toContain('sk-ant-secret');
  });
});

describe('auth header and prefix', () => {
  const compileAuth = (api: 'openai' | 'anthropic', auth: Record<string, unknown>) =>
    compileUpstream(withSpec({ api, endpoints: [{ name: 'a', url: 'https://a.example.com/v1', auth }] }), fakeAuth('KEY')).endpoints[0]!.auth!;

  it.each([
    ['openai', { env: 'K' }, 'authorization', 'Bearer KEY', 'env K'],
    ['anthropic', { env: 'K' }, 'x-api-key', 'KEY', 'env K'],
    ['openai', { file: '/run/k', header: 'api-key' }, 'api-key', 'KEY', 'file /run/k'],
    ['anthropic', { env: 'K', header: 'Authorization' }, 'authorization', 'Bearer KEY', 'env K'],
    ['openai', { secretRef: { name: 'openai', key: 'apiKey' }, prefix: 'Token ' }, 'authorization', 'Token KEY', 'secret openai/apiKey'],
    ['openai', { env: 'K', prefix: '' }, 'authorization', 'KEY', 'env K'],
  ] as const)('%s %j -> %s: %s', (api, auth, header, value, source) => {
    const a = compileAuth(api, auth);
    expect(a.header).toBe(header);
    expect(a.value.reveal()).toBe(value);
    expect(a.source).toBe(source);
  });

  it('passes the document, path and namespace to the resolver', () => {
    const seen: unknown[] = [];
    const d = { ...withSpec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1' }, { name: 'b', url: 'https://b.example.com/v1', auth: { env: 'K' } }] }), metadata: { name: 'chat', namespace: 'shop' } };
    compileUpstream(d, (_auth, where) => {
      seen.push(where);
      return new Secret('k');
    });
    expect(seen).toEqual([{ document: 'LLMUpstream "chat"', path: 'spec.endpoints[1].auth', namespace: 'shop' }]);
  });
});

describe('compile errors', () => {
  it('throws a ConfigError naming the document and the first violation\'s path', () => {
    const bad = withSpec({ breaker: { errorThresholdPercentage: -5 } });
    let error: unknown;
    try {
      compileUpstream(bad, noAuth);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'BREAKWATER_CONFIG_INVALID', reason: 'Invalid', document: 'LLMUpstream "chat"', path: 'spec.breaker.errorThresholdPercentage' });
    expect((error as Error).message).toMatch(/^LLMUpstream "chat": spec\.breaker\.errorThresholdPercentage: /);
  });

  // issue 8, defect 10: compile threw a TypeError (a stack trace at start-up) for this URL
  it('an https URL with a port out of range is a ConfigError at the url, not a crash', () => {
    const bad = withSpec({ endpoints: [{ name: 'a', url: 'https://api.example.com:99999/v1' }] });
    expect(() => compileUpstream(bad, noAuth)).toThrow(expect.objectContaining({ name: 'ConfigError', path: 'spec.endpoints[0].url' }));
  });

  it('a URL with a password is refused, and no part of the error prints the password', () => {
    const bad = withSpec({ endpoints: [{ name: 'a', url: 'http://user:PASS-d10@api.example.com:99999/v1' }] });
    let error: unknown;
    try {
      compileUpstream(bad, noAuth);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).detail).toContain('user info');
    for (const text of [(error as Error).message, (error as Error).stack ?? '', JSON.stringify(error), inspect(error, { depth: 5 })]) expect(text).not.toContain('PASS-d10');
  });

  it('redacts any URL in a detail, whoever wrote it', () => {
    const error = new ConfigError('LLMUpstream "chat"', '(spec)', 'could not reach https://user:PASS-d10@api.example.com/v1?key=KEY-d10: refused');
    expect(error.detail).toBe('could not reach https://api.example.com/v1?key=redacted: refused');
    expect(error.message).not.toContain('PASS-d10');
  });

  it('lets a resolver\'s ConfigError through unchanged', () => {
    const failure = new ConfigError('LLMUpstream "chat"', 'spec.endpoints[0].auth', 'environment variable K is not set', 'SecretNotFound');
    const d = withSpec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', auth: { env: 'K' } }] });
    expect(() =>
      compileUpstream(d, () => {
        throw failure;
      }),
    ).toThrow(failure);
  });
});

describe('compileConfig', () => {
  it('compiles a set of documents into one snapshot', () => {
    const config = compileConfig([doc(undefined, 'openai'), doc({ ...minimalSpec(), api: 'anthropic' }, 'claude')], noAuth, 'file:/etc/b.yaml', 7, 1234);
    expect(config).toMatchObject({ generation: 7, source: 'file:/etc/b.yaml', appliedAt: 1234 });
    expect([...config.upstreams.keys()]).toEqual(['openai', 'claude']);
    expect(config.upstreams.get('claude')!.api).toBe('anthropic');
  });

  it('rejects the whole set at its first bad document, naming it by position and name', () => {
    const set = [doc(undefined, 'a'), { ...withSpec({ timeouts: { total: 'ten minutes' } }), metadata: { name: 'b' } }];
    expect(() => compileConfig(set, noAuth, 'file:x', 1)).toThrow(expect.objectContaining({ document: 'document 2 (LLMUpstream "b")', path: 'spec.timeouts.total' }));
  });

  it('names a document without a name by position only', () => {
    expect(() => compileConfig([doc(), { kind: 'LLMUpstream' }], noAuth, 'file:x', 1)).toThrow(expect.objectContaining({ document: 'document 2' }));
    expect(describeDocument(null, 0)).toBe('document 1');
    expect(describeDocument({ metadata: { name: 'x' } }, 2)).toBe('document 3 (LLMUpstream "x")');
  });

  it('rejects an upstream defined twice, at metadata.name of the second', () => {
    expect(() => compileConfig([doc(), doc()], noAuth, 'file:x', 1)).toThrow(
      expect.objectContaining({ document: 'document 2 (LLMUpstream "chat")', path: 'metadata.name', detail: 'upstream "chat" is defined twice' }),
    );
  });

  it('accepts an empty set (a file with no upstreams)', () => {
    expect(compileConfig([], noAuth, 'file:x', 1).upstreams.size).toBe(0);
  });
});

describe('the breaker key (computed at compile time)', () => {
  it('changes with every breaker field and with nothing else', () => {
    const key = (spec: Record<string, unknown>) => compileUpstream(withSpec(spec), noAuth).breaker.key;
    const base = key({});
    expect(key({})).toBe(base);
    expect(key({ retry: { maxAttempts: 2 } })).toBe(base);
    for (const breaker of [
      { errorThresholdPercentage: 20 },
      { volumeThreshold: 3 },
      { consecutiveFailures: 9 },
      { rollingWindow: '1m' },
      { openDuration: '5s' },
      { halfOpenRamp: [2] },
      { failOn: ['timeout'] },
    ]) {
      expect(key({ breaker }), JSON.stringify(breaker)).not.toBe(base);
    }
    expect(key({ breaker: { failOn: ['timeout', 'connect'] } })).toBe(key({ breaker: { failOn: ['connect', 'timeout'] } }));
  });
});
