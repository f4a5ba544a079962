// Logs of issue 5: one pino JSON line per breaker transition, failover, fallback, budget
// exhaustion and config applied/rejected, with upstream, endpoint, request id and reason;
// request lines at debug level; and the API keys never appear in a log line, /debug/state,
// /metrics or /dashboard.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../../src/config/runtime.ts';
import { chat, memoryLogger, post, startStack, type Stack } from '../admin/helpers.ts';

const KEY_ENV = `BW_LOGS_TEST_KEY_${process.pid}`;
const KEY = `sk-live-${randomBytes(12).toString('hex')}`;
const APP_KEY = `sk-app-${randomBytes(12).toString('hex')}`;

const yaml = (u: Record<string, string>, extra = '') => `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  endpoints:
    - { name: a, url: "${u.a}/v1", auth: { env: ${KEY_ENV} } }
    - { name: b, url: "${u.b}/v1", priority: 1, auth: { env: ${KEY_ENV} } }
  breaker: { volumeThreshold: 100 }
  retry: { backoff: { initial: 1ms, max: 1ms, jitter: none }, budget: { ratio: 1, minPerSecond: 10 } }
  fallbacks:
    - { model: big, chain: [ { model: small } ] }
---
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: tight }
spec:
  endpoints:
    - { name: c1, url: "${u.c}/v1" }
    - { name: c2, url: "${u.c}/v1", priority: 1 }
  retry: { budget: { ratio: 0, minPerSecond: 0 } }
${extra}`;

const memory = memoryLogger('debug');
let stack: Stack;
let urls: Record<string, string>;
const ids: Record<string, string> = {};

function find(msg: string | RegExp, where: Record<string, unknown> = {}) {
  return memory.lines().filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))) && Object.entries(where).every(([k, v]) => l[k] === v));
}

beforeAll(async () => {
  process.env[KEY_ENV] = KEY;
  stack = await startStack({ fakes: ['a', 'b', 'c'], yaml: (u) => ((urls = u), yaml(u)), log: memory.log });
  const { a, b, c } = stack.fakes;
  const app = { authorization: `Bearer ${APP_KEY}` };
  // failover
  a!.setFault({ fault: '503', times: 1 });
  ids.failover = (await chat(stack, 'chat', 'm', app)).headers.get('x-breakwater-request-id')!;
  // fallback
  a!.setFault({ fault: '503', model: 'big', times: 1 });
  b!.setFault({ fault: '503', model: 'big', times: 1 });
  ids.fallback = (await chat(stack, 'chat', 'big', app)).headers.get('x-breakwater-request-id')!;
  // budget exhaustion (ratio 0: the reserve's one token pays one failover, then nothing)
  c!.setFault({ fault: '503', times: 2 });
  ids.budget = (await chat(stack, 'tight', 'm', app)).headers.get('x-breakwater-request-id')!;
  // breaker transitions, by an operator
  expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`)).status).toBe(200);
  expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/reset`)).status).toBe(200);
  // a rejected config, then a good one
  writeFileSync(stack.configPath, yaml(urls).replace('name: chat', 'name: Not_A_Valid_Name'));
  await stack.proxy.source!.reload();
  writeFileSync(stack.configPath, yaml(urls, '# edited\n'));
  await stack.proxy.source!.reload();
  // and the places a key could leak from
  for (const path of ['/debug/state', '/metrics', '/dashboard', '/readyz', '/livez']) {
    const res = await fetch(`${stack.adminUrl}${path}`);
    ids[`body:${path}`] = await res.text();
  }
  memory.log.flush?.();
});

afterAll(async () => {
  await stack?.close();
  delete process.env[KEY_ENV];
});

describe('decision logs', () => {
  it('log config applied, with source and generation', () => {
    const applied = find('config applied');
    expect(applied.map((l) => l.generation)).toEqual([1, 2]);
    expect(applied[0]).toMatchObject({ level: 'info', source: `file:${stack.configPath}`, upstreams: ['chat', 'tight'] });
  });

  it('log config rejected, naming the document, field and reason, while the last good config serves', () => {
    const [rejected, ...more] = find(/^config rejected, last good config keeps serving/);
    expect(more).toEqual([]);
    expect(rejected).toMatchObject({ level: 'error', source: `file:${stack.configPath}` });
    expect(rejected!.path).toMatch(/metadata/);
  });

  it('log each failover with upstream, endpoint, request id and the reason', () => {
    const [line] = find('attempt failed: failing over', { requestId: ids.failover });
    expect(line).toMatchObject({ upstream: 'chat', endpoint: 'a', outcome: 'server error 503', attempt: 1 });
  });

  it('log each fallback with the models and request id', () => {
    const [line] = find('falling back to a smaller model', { requestId: ids.fallback });
    expect(line).toMatchObject({ level: 'warn', upstream: 'chat', from: 'big', to: 'small' });
  });

  it('log budget exhaustion with upstream and request id', () => {
    const [line] = find('retry budget exhausted: no further attempts for this request', { requestId: ids.budget });
    expect(line).toMatchObject({ level: 'warn', upstream: 'tight' });
  });

  it('log every breaker transition with upstream, endpoint and reason', () => {
    expect(find('breaker opened', { upstream: 'chat', endpoint: 'a' })).toEqual([
      expect.objectContaining({ level: 'warn', from: 'closed', to: 'open', reason: 'opened by an operator' }),
    ]);
    expect(find('breaker closed', { upstream: 'chat', endpoint: 'a' })).toEqual([
      expect.objectContaining({ from: 'open', to: 'closed', reason: 'reset by an operator' }),
    ]);
    expect(find(/^admin: operator/).map((l) => l.action)).toEqual(['open', 'reset']);
  });

  it('log every request at debug level with its request id and outcome', () => {
    for (const id of [ids.failover, ids.fallback, ids.budget]) {
      const [line] = find('request', { requestId: id });
      expect(line).toMatchObject({ level: 'debug', method: 'POST', path: '/v1/chat/completions' });
    }
  });
});

describe('redaction', () => {
  it('keeps the endpoint key and the app\'s own key out of every log line', () => {
    const raw = memory.raw();
    expect(raw.length).toBeGreaterThan(1000);
    expect(raw).not.toContain(KEY);
    expect(raw).not.toContain(APP_KEY);
  });

  it('keeps them out of /debug/state, /metrics, /dashboard and the probes', () => {
    for (const path of ['/debug/state', '/metrics', '/dashboard', '/readyz', '/livez']) {
      const body = ids[`body:${path}`]!;
      expect(body.length, path).toBeGreaterThan(10);
      expect(body, path).not.toContain(KEY);
      expect(body, path).not.toContain(APP_KEY);
    }
    const state = JSON.parse(ids['body:/debug/state']!);
    expect(state.upstreams[0].endpoints[0].auth).toEqual({ header: 'authorization', source: `env ${KEY_ENV}` });
  });

  it('censors credential headers and Secret values that reach the logger', () => {
    const secret = new Secret(`Bearer ${KEY}`);
    memory.log.warn({ headers: { authorization: `Bearer ${KEY}`, 'x-api-key': KEY, 'content-type': 'application/json' } }, 'headers bag');
    memory.log.warn({ req: { headers: { 'api-key': KEY, cookie: `s=${KEY}` } } }, 'nested request');
    memory.log.warn({ auth: { header: 'authorization', value: secret }, endpoint: { auth: { value: secret } } }, 'auth objects');
    memory.log.warn({ key: secret }, `a secret in a message: ${secret}`);
    const raw = memory.raw();
    expect(raw).not.toContain(KEY);
    const [headers] = find('headers bag');
    expect(headers!.headers).toEqual({ authorization: '[redacted]', 'x-api-key': '[redacted]', 'content-type': 'application/json' });
    expect((find('nested request')[0]!.req as { headers: unknown }).headers).toEqual({ 'api-key': '[redacted]', cookie: '[redacted]' });
    expect(find('a secret in a message: [redacted]')[0]!.key).toBe('[redacted]');
  });
});
