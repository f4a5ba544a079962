// Every named cross-field rule, through the rule itself and through validateDocument (the
// path the file source and compile take): a good spec passes, a bad one is named by path.
import { describe, expect, it } from 'vitest';
import { checkRules, RULES } from '../../../src/config/rules.ts';
import { validateDocument } from '../../../src/config/validate.ts';
import type { Spec } from '../../../src/config/schema.ts';
import { doc, minimalSpec } from './docs.ts';

const ep = (name: string, url = `https://${name}.example.com/v1`, extra: Record<string, unknown> = {}) => ({ name, url, ...extra });
const spec = (patch: Record<string, unknown>): Spec => ({ ...minimalSpec(), ...patch }) as Spec;

interface Case {
  good: Record<string, Spec>;
  /** path: the one violation's path, or every violation's path in order */
  bad: Record<string, { spec: Spec; path: string | string[] }>;
}

const CASES: Record<string, Case> = {
  'unique-endpoint-names': {
    good: { 'distinct names': spec({ endpoints: [ep('a'), ep('b'), ep('c')] }) },
    bad: {
      'a name used twice': { spec: spec({ endpoints: [ep('a'), ep('b'), ep('a', 'https://other.example.com/v1')] }), path: 'spec.endpoints[2].name' },
    },
  },
  'https-unless-local': {
    good: {
      https: spec({ endpoints: [ep('a', 'https://api.openai.com/v1')] }),
      'http to localhost': spec({ endpoints: [ep('a', 'http://localhost:8000/v1')] }),
      'http to 127.0.0.1': spec({ endpoints: [ep('a', 'http://127.0.0.1:8081/v1')] }),
      'http to 127.1.2.3': spec({ endpoints: [ep('a', 'http://127.1.2.3/v1')] }),
      'http to [::1]': spec({ endpoints: [ep('a', 'http://[::1]:8000/v1')] }),
      'http to a .svc name': spec({ endpoints: [ep('a', 'http://vllm.inference.svc:8000/v1')] }),
      'http to a .svc.cluster.local name': spec({ endpoints: [ep('a', 'http://vllm.inference.svc.cluster.local:8000/v1')] }),
      'http to a public host with insecure: true': spec({ endpoints: [ep('a', 'http://10.1.2.3:8000/v1', { insecure: true })] }),
    },
    bad: {
      'http to a public host': { spec: spec({ endpoints: [ep('a'), ep('b', 'http://llm.example.com/v1')] }), path: 'spec.endpoints[1].url' },
      'http to a private address without insecure': { spec: spec({ endpoints: [ep('a', 'http://10.1.2.3:8000/v1')] }), path: 'spec.endpoints[0].url' },
      'insecure: false': { spec: spec({ endpoints: [ep('a', 'http://llm.example.com/v1', { insecure: false })] }), path: 'spec.endpoints[0].url' },
      'a name that only begins with localhost': { spec: spec({ endpoints: [ep('a', 'http://localhost.example.com/v1')] }), path: 'spec.endpoints[0].url' },
      'a name that only contains .svc': { spec: spec({ endpoints: [ep('a', 'http://llm.svc.example.com/v1')] }), path: 'spec.endpoints[0].url' },
      // 127.example.com is a public DNS name, not a loopback address: the key would travel in clear text.
      'a public name that only begins with "127."': { spec: spec({ endpoints: [ep('a', 'http://127.example.com/v1')] }), path: 'spec.endpoints[0].url' },
      'a public name that begins with a whole loopback address': { spec: spec({ endpoints: [ep('a', 'http://127.0.0.1.example.com/v1')] }), path: 'spec.endpoints[0].url' },
    },
  },
  'endpoint-url-without-credentials': {
    good: {
      'no user info': spec({ endpoints: [ep('a', 'https://api.openai.com/v1?api-version=1')] }),
      'an @ in the path': spec({ endpoints: [ep('a', 'https://api.example.com/v1/@team')] }),
    },
    bad: {
      'user and password': { spec: spec({ endpoints: [ep('a'), ep('b', 'https://user:PASS@api.example.com/v1')] }), path: 'spec.endpoints[1].url' },
      'a user alone': { spec: spec({ endpoints: [ep('a', 'https://sk-abc@api.example.com/v1')] }), path: 'spec.endpoints[0].url' },
      'an empty user info': { spec: spec({ endpoints: [ep('a', 'https://@api.example.com/v1')] }), path: 'spec.endpoints[0].url' },
    },
  },
  'endpoint-url-well-formed': {
    good: {
      'a DNS name, a port, a path and a query': spec({ endpoints: [ep('a', 'https://x.openai.azure.com:443/openai/deployments/gpt-4o?api-version=2024-10-21')] }),
      'an IPv4 address': spec({ endpoints: [ep('a', 'http://127.0.0.1:8081/v1')] }),
      'an IPv6 address': spec({ endpoints: [ep('a', 'http://[::1]:8000/v1')] }),
      'port 65535 and no path': spec({ endpoints: [ep('a', 'https://api.example.com:65535')] }),
      'a colon and an escape in the path': spec({ endpoints: [ep('a', 'https://bedrock.example.com/model/claude-3:0/%7Einvoke')] }),
    },
    bad: {
      'a port above 65535 (http)': { spec: spec({ endpoints: [ep('a', 'http://127.0.0.1:99999/v1')] }), path: 'spec.endpoints[0].url' },
      'a port above 65535 (https)': { spec: spec({ endpoints: [ep('a'), ep('b', 'https://api.example.com:65536/v1')] }), path: 'spec.endpoints[1].url' },
      'an empty port': { spec: spec({ endpoints: [ep('a', 'https://api.example.com:/v1')] }), path: 'spec.endpoints[0].url' },
      'an IPv4 address out of range': { spec: spec({ endpoints: [ep('a', 'https://300.1.1.1/v1')] }), path: 'spec.endpoints[0].url' },
      'a malformed IPv6 address': { spec: spec({ endpoints: [ep('a', 'https://[:::1]/v1')] }), path: 'spec.endpoints[0].url' },
      'a bad percent-escape': { spec: spec({ endpoints: [ep('a', 'https://api.example.com/v1/%zz')] }), path: 'spec.endpoints[0].url' },
      'a fragment': { spec: spec({ endpoints: [ep('a', 'https://api.example.com/v1#x')] }), path: 'spec.endpoints[0].url' },
      'no host': { spec: spec({ endpoints: [ep('a', 'https:///v1')] }), path: 'spec.endpoints[0].url' },
    },
  },
  'auth-one-source': {
    good: {
      secretRef: spec({ endpoints: [ep('a', undefined, { auth: { secretRef: { name: 'openai', key: 'apiKey' } } })] }),
      env: spec({ endpoints: [ep('a', undefined, { auth: { env: 'OPENAI_API_KEY' } })] }),
      file: spec({ endpoints: [ep('a', undefined, { auth: { file: '/run/secrets/openai', header: 'api-key', prefix: '' } })] }),
    },
    bad: {
      'no source': { spec: spec({ endpoints: [ep('a'), ep('b', undefined, { auth: { header: 'api-key' } })] }), path: 'spec.endpoints[1].auth' },
      'two sources': {
        spec: spec({ endpoints: [ep('a', undefined, { auth: { secretRef: { name: 'openai', key: 'apiKey' }, env: 'OPENAI_API_KEY' } })] }),
        path: 'spec.endpoints[0].auth',
      },
      'three sources': {
        spec: spec({ endpoints: [ep('a', undefined, { auth: { secretRef: { name: 'o', key: 'k' }, env: 'K', file: '/k' } })] }),
        path: 'spec.endpoints[0].auth',
      },
    },
  },
  'backoff-max-not-below-initial': {
    good: {
      'max equal to initial': spec({ retry: { backoff: { initial: '1s', max: '1000ms' } } }),
      'initial alone, at the default max': spec({ retry: { backoff: { initial: '5s' } } }),
      'max alone, at the default initial': spec({ retry: { backoff: { max: '200ms' } } }),
      'no backoff at all': spec({ retry: { maxAttempts: 2 } }),
    },
    bad: {
      'max below initial': { spec: spec({ retry: { backoff: { initial: '2s', max: '500ms' } } }), path: 'spec.retry.backoff.max' },
      'initial alone, above the default max': { spec: spec({ retry: { backoff: { initial: '6s' } } }), path: 'spec.retry.backoff.max' },
      'max alone, below the default initial': { spec: spec({ retry: { backoff: { max: '100ms' } } }), path: 'spec.retry.backoff.max' },
    },
  },
  'header-names-and-values': {
    good: {
      'ordinary extra headers': spec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', headers: { 'api-version': '2025-04-01', 'x_tenant.id': 'shop' } }] }),
    },
    bad: {
      'a header name with a space': { spec: spec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', headers: { 'x bad': 'v' } }] }), path: 'spec.endpoints[0].headers' },
      'a header value with a line break': {
        spec: spec({ endpoints: [{ name: 'a', url: 'https://a.example.com/v1', headers: { 'x-tenant': 'a\r\nx-injected: 1' } }] }),
        path: 'spec.endpoints[0].headers',
      },
    },
  },
  'unique-fallback-models': {
    good: { 'one chain per model': spec({ fallbacks: [{ model: 'a', chain: [{ model: 'x' }] }, { model: 'b', chain: [{ model: 'x' }] }] }) },
    bad: {
      'two chains for one model': {
        spec: spec({ fallbacks: [{ model: 'a', chain: [{ model: 'x' }] }, { model: 'a', chain: [{ model: 'y' }] }] }),
        path: 'spec.fallbacks[1].model',
      },
    },
  },
  'fallback-chains-acyclic': {
    good: { 'a flat chain': spec({ fallbacks: [{ model: 'gpt-4.1', chain: [{ model: 'gpt-4.1-mini' }, { model: 'gpt-4.1-nano' }] }] }) },
    bad: {
      'a chain containing its own model': { spec: spec({ fallbacks: [{ model: 'a', chain: [{ model: 'b' }, { model: 'a' }] }] }), path: 'spec.fallbacks[0].chain[1].model' },
      'a two-model cycle': {
        spec: spec({ fallbacks: [{ model: 'a', chain: [{ model: 'b' }] }, { model: 'b', chain: [{ model: 'a' }] }] }),
        path: ['spec.fallbacks[0].chain[0].model', 'spec.fallbacks[1].chain[0].model'],
      },
      'a chain through a model with its own chain': {
        spec: spec({ fallbacks: [{ model: 'a', chain: [{ model: 'b' }] }, { model: 'b', chain: [{ model: 'c' }] }] }),
        path: 'spec.fallbacks[0].chain[0].model',
      },
    },
  },
  'health-check-interval-at-least-1s': {
    good: { defaults: spec({ healthCheck: { enabled: true } }), 'exactly 1s': spec({ healthCheck: { enabled: true, interval: '1s', timeout: '1s' } }) },
    bad: { 'an interval under 1s': { spec: spec({ healthCheck: { enabled: true, interval: '500ms', timeout: '100ms' } }), path: 'spec.healthCheck.interval' } },
  },
  'health-check-timeout-within-interval': {
    good: { 'a timeout equal to the interval': spec({ healthCheck: { interval: '2s', timeout: '2s' } }) },
    bad: {
      'a timeout longer than the interval': { spec: spec({ healthCheck: { interval: '2s', timeout: '3s' } }), path: 'spec.healthCheck.timeout' },
      'the default timeout (5s) over a 2s interval': { spec: spec({ healthCheck: { interval: '2s' } }), path: 'spec.healthCheck.timeout' },
    },
  },
};

it('every rule in RULES has cases here, and every case names a real rule', () => {
  expect(Object.keys(CASES).sort()).toEqual(RULES.map((r) => r.name).sort());
});

it('rule names are unique and each rule carries its CEL and message', () => {
  expect(new Set(RULES.map((r) => r.name)).size).toBe(RULES.length);
  for (const rule of RULES) {
    expect(rule.cel.length, rule.name).toBeGreaterThan(0);
    expect(rule.message.length, rule.name).toBeGreaterThan(0);
    expect(rule.at.startsWith('spec'), rule.name).toBe(true);
  }
});

describe.each(RULES.map((r) => [r.name, r] as const))('%s', (name, rule) => {
  const cases = CASES[name]!;

  it.each(Object.entries(cases.good))('accepts %s', (_label, good) => {
    expect(rule.check(good)).toEqual([]);
    expect(validateDocument(doc(good as Record<string, unknown>))).toEqual([]);
  });

  it.each(Object.entries(cases.bad))('rejects %s at its path', (_label, { spec: bad, path }) => {
    const own = rule.check(bad);
    expect(own.map((v) => v.path)).toEqual(Array.isArray(path) ? path : [path]);
    for (const v of own) expect(v.message).toContain(rule.message);
    expect(validateDocument(doc(bad as Record<string, unknown>))).toEqual(own);
  });
});

// user info is refused on its own (endpoint-url-without-credentials), and it does not fool
// https-unless-local either: the host of these URLs is llm.example.com
it.each([
  ['loopback-looking', 'http://127.0.0.1:8080@llm.example.com/v1'],
  ['localhost', 'http://localhost@llm.example.com/v1'],
])('a public host behind %s user info breaks https-unless-local and endpoint-url-without-credentials', (_label, url) => {
  const bad = spec({ endpoints: [ep('a', url)] });
  expect(RULES.find((r) => r.name === 'https-unless-local')!.check(bad).map((v) => v.path)).toEqual(['spec.endpoints[0].url']);
  expect(validateDocument(doc(bad as Record<string, unknown>)).map((v) => v.message)).toEqual([
    expect.stringContaining('user info'),
    expect.stringContaining('https unless'),
  ]);
});

it('a message about a URL never prints its user info or query values', () => {
  const bad = spec({ endpoints: [ep('a', 'http://user:PASS-d10@llm.example.com:99999/v1?key=KEY-d10')] });
  const violations = validateDocument(doc(bad as Record<string, unknown>));
  expect(violations.map((v) => v.path)).toEqual(['spec.endpoints[0].url', 'spec.endpoints[0].url', 'spec.endpoints[0].url']);
  const text = JSON.stringify(violations);
  expect(text).toContain('llm.example.com:99999/v1');
  expect(text).not.toContain('PASS-d10');
  expect(text).not.toContain('KEY-d10');
});

it('checkRules reports every broken rule, not just the first', () => {
  const broken = spec({
    endpoints: [ep('a'), ep('a', 'http://llm.example.com/v1')],
    retry: { backoff: { initial: '2s', max: '1s' } },
  });
  expect(checkRules(broken).map((v) => v.path)).toEqual(['spec.endpoints[1].name', 'spec.endpoints[1].url', 'spec.retry.backoff.max']);
});

it('rules run only once the structure is valid, so a bad duration is reported, not thrown', () => {
  const violations = validateDocument(doc(spec({ retry: { backoff: { initial: 'soon', max: '1s' } } }) as Record<string, unknown>));
  expect(violations.map((v) => v.path)).toEqual(['spec.retry.backoff.initial']);
});
