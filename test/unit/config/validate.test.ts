// Structural validation (the TypeBox schema the CRD is generated from): every error names the
// field's path, in the same dotted form the rules use.
import { describe, expect, it } from 'vitest';
import { pointerToPath, validateDocument, validateSpec } from '../../../src/config/validate.ts';
import { doc, minimalSpec, withSpec } from './docs.ts';

/** the distinct paths named, in order (TypeBox may name one field twice: "required", then "Expected object") */
const pathsOf = (violations: { path: string }[]) => [...new Set(violations.map((v) => v.path))];
const endpoints = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `region-${i}`, url: `https://region-${i}.example.com/v1` }));

describe('pointerToPath', () => {
  it.each([
    ['/spec/endpoints/0/url', 'spec.endpoints[0].url'],
    ['/spec/fallbacks/1/chain/0/model', 'spec.fallbacks[1].chain[0].model'],
    ['/spec/endpoints/0/headers/a~1b', 'spec.endpoints[0].headers.a/b'],
    ['/spec/endpoints/0/headers/a~0b', 'spec.endpoints[0].headers.a~b'],
    ['', ''],
  ])('%j -> %j', (pointer, path) => {
    expect(pointerToPath(pointer)).toBe(path);
  });
});

describe('validateDocument', () => {
  it('accepts the smallest spec: one endpoint with a url', () => {
    expect(validateDocument(doc())).toEqual([]);
  });

  it.each([
    ['a negative errorThresholdPercentage', { breaker: { errorThresholdPercentage: -5 } }, 'spec.breaker.errorThresholdPercentage'],
    ['an errorThresholdPercentage over 100', { breaker: { errorThresholdPercentage: 101 } }, 'spec.breaker.errorThresholdPercentage'],
    ['a negative volumeThreshold', { breaker: { volumeThreshold: -1 } }, 'spec.breaker.volumeThreshold'],
    ['a fractional volumeThreshold', { breaker: { volumeThreshold: 2.5 } }, 'spec.breaker.volumeThreshold'],
    ['an empty halfOpenRamp', { breaker: { halfOpenRamp: [] } }, 'spec.breaker.halfOpenRamp'],
    ['a zero step in the halfOpenRamp', { breaker: { halfOpenRamp: [1, 0] } }, 'spec.breaker.halfOpenRamp[1]'],
    ['an unknown failOn kind', { breaker: { failOn: ['throttled', 'client_fault'] } }, 'spec.breaker.failOn[1]'],
    ['a bad rollingWindow', { breaker: { rollingWindow: '30' } }, 'spec.breaker.rollingWindow'],
    ['a bad openDuration', { breaker: { openDuration: '1.5s' } }, 'spec.breaker.openDuration'],
    ['a bad total timeout', { timeouts: { total: 'ten minutes' } }, 'spec.timeouts.total'],
    ['a bad connect timeout', { timeouts: { connect: '2 s' } }, 'spec.timeouts.connect'],
    ['a bad backoff.initial', { retry: { backoff: { initial: '-1s' } } }, 'spec.retry.backoff.initial'],
    ['a bad maxRetryAfter', { retry: { maxRetryAfter: '1d' } }, 'spec.retry.maxRetryAfter'],
    ['maxAttempts 0', { retry: { maxAttempts: 0 } }, 'spec.retry.maxAttempts'],
    ['maxAttempts 11', { retry: { maxAttempts: 11 } }, 'spec.retry.maxAttempts'],
    ['a budget ratio over 1', { retry: { budget: { ratio: 1.5 } } }, 'spec.retry.budget.ratio'],
    ['a negative minPerSecond', { retry: { budget: { minPerSecond: -1 } } }, 'spec.retry.budget.minPerSecond'],
    ['an unknown jitter', { retry: { backoff: { jitter: 'half' } } }, 'spec.retry.backoff.jitter'],
    ['a retry path with a space', { retry: { paths: ['chat completions'] } }, 'spec.retry.paths[0]'],
    ['an unknown api', { api: 'gemini' }, 'spec.api'],
    ['a non-boolean required', { required: 'yes' }, 'spec.required'],
    ['an empty fallback chain', { fallbacks: [{ model: 'a', chain: [] }] }, 'spec.fallbacks[0].chain'],
    ['a zero maxTokens', { fallbacks: [{ model: 'a', chain: [{ model: 'b', maxTokens: 0 }] }] }, 'spec.fallbacks[0].chain[0].maxTokens'],
  ])('rejects %s, naming the field', (_label, patch, path) => {
    expect(pathsOf(validateDocument(withSpec(patch)))).toContain(path);
  });

  it('rejects 40 endpoints at spec.endpoints (the limit is 32) and accepts 32', () => {
    const v = validateDocument(withSpec({ endpoints: endpoints(40) }));
    expect(v).toEqual([{ path: 'spec.endpoints', message: expect.stringContaining('32') }]);
    expect(validateDocument(withSpec({ endpoints: endpoints(32) }))).toEqual([]);
  });

  it('rejects an upstream with no endpoints', () => {
    expect(pathsOf(validateDocument(withSpec({ endpoints: [] })))).toEqual(['spec.endpoints']);
  });

  it.each([
    ['in spec', { retries: 3 }, 'spec.retries'],
    ['in breaker', { breaker: { threshold: 50 } }, 'spec.breaker.threshold'],
    ['in retry.backoff', { retry: { backoff: { multiplier: 2 } } }, 'spec.retry.backoff.multiplier'],
    ['in retry.budget', { retry: { budget: { perSecond: 2 } } }, 'spec.retry.budget.perSecond'],
    ['in timeouts', { timeouts: { read: '1s' } }, 'spec.timeouts.read'],
    ['in validate', { validate: { strict: true } }, 'spec.validate.strict'],
    ['in a fallback step', { fallbacks: [{ model: 'a', chain: [{ model: 'b', temperature: 0 }] }] }, 'spec.fallbacks[0].chain[0].temperature'],
  ])('rejects an unknown field %s, naming it', (_label, patch, path) => {
    expect(validateDocument(withSpec(patch))).toEqual([{ path, message: 'Unexpected property' }]);
  });

  it('rejects an unknown field in an endpoint and in its auth, naming each', () => {
    const d = withSpec({
      endpoints: [
        { name: 'a', url: 'https://a.example.com/v1', timeout: '1s' },
        { name: 'b', url: 'https://b.example.com/v1', auth: { env: 'KEY', value: 'sk-inline' } },
      ],
    });
    expect(pathsOf(validateDocument(d))).toEqual(['spec.endpoints[0].timeout', 'spec.endpoints[1].auth.value']);
  });

  it.each([
    ['an upper-case endpoint name', { name: 'Primary', url: 'https://a.example.com/v1' }, 'spec.endpoints[0].name'],
    ['a url without a scheme', { name: 'a', url: 'api.openai.com/v1' }, 'spec.endpoints[0].url'],
    ['an ftp url', { name: 'a', url: 'ftp://files.example.com/v1' }, 'spec.endpoints[0].url'],
    ['a priority over 100', { name: 'a', url: 'https://a.example.com/v1', priority: 101 }, 'spec.endpoints[0].priority'],
    ['a weight of 0', { name: 'a', url: 'https://a.example.com/v1', weight: 0 }, 'spec.endpoints[0].weight'],
    ['a lower-case env name with a dash', { name: 'a', url: 'https://a.example.com/v1', auth: { env: 'OPENAI-KEY' } }, 'spec.endpoints[0].auth.env'],
    ['a secretRef without a key', { name: 'a', url: 'https://a.example.com/v1', auth: { secretRef: { name: 'openai' } } }, 'spec.endpoints[0].auth.secretRef.key'],
  ])('rejects %s', (_label, endpoint, path) => {
    expect(pathsOf(validateDocument(withSpec({ endpoints: [endpoint] })))).toContain(path);
  });

  // undici refuses such a request with UND_ERR_INVALID_ARG, which classifyTransport counts as a
  // connect failure: every request would fail and the endpoint's breaker would open.
  it.each([
    ['a name with a space', { 'x bad': 'v' }],
    ['a name with a colon', { 'x-bad:': 'v' }],
    ['a value with a line break', { 'x-tenant': 'a\r\nx-injected: 1' }],
  ])('rejects an extra header with %s, naming the headers', (_label, headers) => {
    const v = validateDocument(withSpec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', headers }] }));
    expect(pathsOf(v).some((p) => p.startsWith('spec.endpoints[0].headers')), JSON.stringify(v)).toBe(true);
  });

  it('checks the document envelope: apiVersion, kind and metadata.name', () => {
    expect(pathsOf(validateDocument({ ...doc(), apiVersion: 'breakwater.dev/v1' }))).toEqual(['apiVersion']);
    expect(pathsOf(validateDocument({ ...doc(), kind: 'Upstream' }))).toEqual(['kind']);
    expect(pathsOf(validateDocument({ ...doc(), metadata: { name: 'Chat_1' } }))).toEqual(['metadata.name']);
    expect(pathsOf(validateDocument({ ...doc(), metadata: {} }))).toEqual(['metadata.name']);
  });

  it('names a missing spec and a missing url', () => {
    const { spec: _spec, ...noSpec } = doc();
    expect(pathsOf(validateDocument(noSpec))).toEqual(['spec']);
    expect(pathsOf(validateDocument(withSpec({ endpoints: [{ name: 'a' }] })))).toEqual(['spec.endpoints[0].url']);
  });

  it('says "(document)" when the document is not an object', () => {
    for (const bad of [null, 'chat', 42, []]) expect(pathsOf(validateDocument(bad))).toContain('(document)');
  });

  it('reports at most five violations', () => {
    const v = validateDocument(withSpec({ api: 'x', required: 'x', breaker: { volumeThreshold: -1, errorThresholdPercentage: 0, halfOpenRamp: [] }, retry: { maxAttempts: 0 } }));
    expect(v.length).toBe(5);
  });

  it('does not run the cross-field rules while the structure is broken', () => {
    const d = withSpec({ endpoints: [{ name: 'a', url: 'http://llm.example.com/v1' }, { name: 'a', url: 'https://b.example.com/v1', priority: -1 }] });
    expect(pathsOf(validateDocument(d))).toEqual(['spec.endpoints[1].priority']);
  });

  it('leaves Kubernetes metadata and status alone', () => {
    const d = { ...doc(), metadata: { name: 'chat', namespace: 'shop', labels: { app: 'x' }, generation: 3 }, status: { observedGeneration: 3 } };
    expect(validateDocument(d)).toEqual([]);
  });
});

describe('validateSpec', () => {
  it('checks a bare spec and prefixes its paths with spec.', () => {
    expect(validateSpec(minimalSpec())).toEqual([]);
    expect(pathsOf(validateSpec({ ...minimalSpec(), timeouts: { idle: 'forever' } }))).toEqual(['spec.timeouts.idle']);
    expect(pathsOf(validateSpec({ endpoints: [{ name: 'a', url: 'https://a.example.com' }, { name: 'a', url: 'https://b.example.com' }] }))).toEqual([
      'spec.endpoints[1].name',
    ]);
  });
});
