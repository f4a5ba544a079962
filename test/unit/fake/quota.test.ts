// The fake's provider-side rate limit: reported in each dialect's headers on every answer,
// enforced with a 429 when a request does not fit, refilled continuously, set and cleared
// through the control API.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { goDuration } from '../../../src/fake/quota.ts';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { chatBody, sleep } from './helpers.ts';

let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFake({ name: 'quota' });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.setQuota(null);
  fake.resetStats();
});

const chat = (headers: Record<string, string> = {}) =>
  fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(chatBody({ model: 'gpt-4.1' })) });

describe('fake provider quota', () => {
  it('writes resets as OpenAI does', () => {
    expect(goDuration(20)).toBe('20ms');
    expect(goDuration(1500)).toBe('1.5s');
    expect(goDuration(360_000)).toBe('6m0s');
    expect(goDuration(61_250)).toBe('1m1.25s');
  });

  it('reports what is left in OpenAI headers and answers 429 once nothing is, without charging the refused request', async () => {
    fake.setQuota({ requests: 2, windowMs: 60_000 });
    const first = await chat();
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    expect(first.headers.get('x-ratelimit-reset-requests')).toBe('30s');
    expect((await chat()).headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = await chat();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after-ms'))).toBeGreaterThan(29_000);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    expect(fake.stats().byFault).toEqual({ none: 2, 'over-quota': 1 });
  });

  it('refills continuously and reports tokens and Anthropic\'s headers with RFC 3339 resets', async () => {
    fake.setQuota({ requests: 2, tokens: 10_000, windowMs: 200 });
    const res = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.headers.get('anthropic-ratelimit-requests-remaining')).toBe('1');
    expect(Number(res.headers.get('anthropic-ratelimit-tokens-remaining'))).toBeLessThan(10_000 - 100);
    expect(Date.parse(res.headers.get('anthropic-ratelimit-requests-reset')!)).toBeGreaterThan(Date.now());
    await chat();
    expect((await chat()).status).toBe(429);
    await sleep(250);
    expect((await chat()).status).toBe(200);
  });

  it('is set and cleared through the control API, which refuses a bad spec', async () => {
    const ctl = (method: string, body?: unknown) =>
      fetch(`${fake.url}/_fake/quota`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    expect((await ctl('POST', { requests: 1, windowMs: 60_000 })).status).toBe(200);
    await chat();
    expect((await chat()).status).toBe(429);
    expect((await ctl('DELETE')).status).toBe(200);
    const free = await chat();
    expect(free.status).toBe(200);
    expect(free.headers.get('x-ratelimit-remaining-requests')).toBeNull();
    expect((await ctl('POST', { requests: 1 })).status).toBe(400);
    expect((await ctl('POST', { windowMs: 1000 })).status).toBe(400);
    expect((await ctl('POST', { requests: -1, windowMs: 1000 })).status).toBe(400);
  });
});
