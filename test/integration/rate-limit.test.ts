// Issue 10, test 3: client-side rate limits per endpoint (rateLimit), against the real fake
// provider through real HTTP and the official SDKs.
//   - At twice an endpoint's requestsPerMinute, the provider never receives more than its limit
//     in any minute and the surplus fails over to the next endpoint. Once over a real minute;
//     then over several windows with the runtime's documented test hook (rateLimitWindowMs: the
//     one-minute window shortened to 2 s; limits, code and traffic otherwise as in production),
//     so the window is seen sliding and refilling, checked at the provider's end.
//   - With tokensPerMinute and streaming, a reservation holds the request's estimate while it
//     streams and becomes the provider's final usage when it ends: the next request is admitted
//     exactly when the reconciled usage leaves room for its estimate, not one token earlier.
//   - A provider that reports its own limit in x-ratelimit-* / anthropic-ratelimit-* headers slows
//     Breakwater before it ever has to answer 429.
//   - With no endpoint left with room, the app gets a 429 rate_limited it does not retry.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, waitFor, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function openai(r: Rig) {
  return new OpenAI({ baseURL: `${r.base}/openai`, apiKey: 'sk-app-key-ignored', timeout: 10_000 });
}

/** the most requests a fake received inside any window of `windowMs` */
function peakInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Breakwater's clock (monotonic, on the epoch's scale) */
const now = () => performance.timeOrigin + performance.now();

describe('requestsPerMinute', () => {
  it('at twice the limit, the endpoint receives exactly its limit in the minute and the surplus fails over to the next endpoint', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'primary', url: `${a!.url}/v1`, rateLimit: { requestsPerMinute: 20 } },
            { name: 'secondary', url: `${b!.url}/v1`, priority: 1 },
          ],
        },
      ],
    });
    const [a, b] = rig.fakes;
    const client = openai(rig);
    const served: string[] = [];
    // 40 requests, 8 at a time: well inside one minute
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 5; i++) {
          const { response } = await client.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
          served.push(response.headers.get('x-breakwater-endpoint') ?? '');
        }
      }),
    );
    expect(served).toHaveLength(40);
    expect(a!.stats().requests).toBe(20);
    expect(b!.stats().requests).toBe(20);
    expect(served.filter((e) => e === 'primary')).toHaveLength(20);
    // Breakwater's own limit, never the provider's failure
    const primary = rig.endpoint('openai', 'primary');
    expect(primary.breaker.state.kind).toBe('closed');
    expect(primary.describe(now()).rateLimit).toMatchObject({ requestsPerMinute: 20, available: { requests: 0, tokens: null } });
    const gauge = await rig.proxy.metrics.rateLimitAvailable.get();
    expect(gauge.values.find((v) => v.labels.endpoint === 'primary' && v.labels.bucket === 'requests')?.value).toBe(0);
  });

  it('over several windows (the window shortened by the test hook), every window at the provider holds at most the limit, and room returns as the window slides', async () => {
    const WINDOW = 2_500;
    const LIMIT = 10;
    rig = await startRig({
      fakes: 2,
      rateLimitWindowMs: WINDOW,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'primary', url: `${a!.url}/v1`, rateLimit: { requestsPerMinute: LIMIT } },
            { name: 'secondary', url: `${b!.url}/v1`, priority: 1 },
          ],
        },
      ],
    });
    const [a, b] = rig.fakes;
    // twice the limit: 2 x 10 per 2.5 s (and then some), one request every 100 ms for 6 s
    const runs: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 60; i++) {
      runs.push(post(`${rig.base}/openai/chat/completions`, chatBody()));
      await sleep(100);
    }
    const results = await Promise.all(runs);
    expect(results.every((r) => r.status === 200)).toBe(true);
    const arrivals = a!.stats().recent.map((r) => r.at);
    // Breakwater admits by its own clock; the fake stamps arrival, a few ms of transit later, and
    // transit varies. Two admissions LIMIT apart are at least one window apart, so at the
    // provider they are at least a window less the transit apart: windows of WINDOW - 20 %
    // absorb that (a busy machine can delay one request's stamp by a few hundred ms). A plain
    // token bucket (LIMIT at once, then LIMIT more as it refills) would put 1.8 x LIMIT in such
    // a window.
    expect(peakInWindow(arrivals, WINDOW - WINDOW / 5)).toBeLessThanOrEqual(LIMIT);
    // and the limit is used as the window slides: 6 s of traffic hold three windows' batches
    // (at 0, 2.5 and 5 s), about 28 requests; a limit that did not refill would stop at 10
    expect(arrivals.length).toBeGreaterThanOrEqual(24);
    expect(arrivals.length + b!.stats().requests).toBe(60);
    expect(rig.endpoint('openai', 'primary').breaker.state.kind).toBe('closed');
  });

  it('a reload that changes the limit applies it at once and keeps what the minute already spent', async () => {
    const upstreams = (limit: number) => [{ name: 'openai', endpoints: [{ name: 'primary', url: `${rig!.fakes[0]!.url}/v1`, rateLimit: { requestsPerMinute: limit } }] }];
    rig = await startRig({ fakes: 1, upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'primary', url: `${a!.url}/v1`, rateLimit: { requestsPerMinute: 3 } }] }] });
    const send = async () => (await post(`${rig!.base}/openai/chat/completions`, chatBody())).status;
    expect([await send(), await send(), await send(), await send()]).toEqual([200, 200, 200, 429]);
    rig.writeConfig(upstreams(5));
    await rig.waitForGeneration(1);
    // 3 of 5 spent: two more now, not five
    expect([await send(), await send(), await send()]).toEqual([200, 200, 429]);
    rig.writeConfig(upstreams(2));
    await rig.waitForGeneration(2);
    expect(await send()).toBe(429);
    expect(rig.fakes[0]!.stats().requests).toBe(5);
  });

  it('with no endpoint left with room, the app gets a 429 rate_limited with Retry-After that the official SDK raises without retrying', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'primary', url: `${a!.url}/v1`, rateLimit: { requestsPerMinute: 2 } }] }],
    });
    const client = openai(rig);
    for (let i = 0; i < 2; i++) await client.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] });
    const error = await client.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const e = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect((e.error as { code?: string }).code).toBe('rate_limited');
    expect(e.headers?.get('x-should-retry')).toBe('false');
    const retryAfter = Number(e.headers?.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(61);
    expect(rig.fakes[0]!.stats().requests).toBe(2); // refused by Breakwater; the SDK did not retry
  });
});

/** an SSE body's final usage, as the provider reported it (input + output tokens) */
function finalUsage(sse: string): number {
  let input = 0;
  let output = 0;
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const data = JSON.parse(line.slice(6)) as { usage?: Record<string, number> | null; message?: { usage?: Record<string, number> } };
    const u = data.usage ?? data.message?.usage;
    if (!u) continue;
    input = Math.max(input, u.prompt_tokens ?? u.input_tokens ?? 0);
    output = Math.max(output, u.completion_tokens ?? u.output_tokens ?? 0);
  }
  return input + output;
}

describe('tokensPerMinute with streaming', () => {
  const TPM = 1000;

  it.each([
    {
      api: 'openai' as const,
      path: '/openai/chat/completions',
      body: (maxTokens: number, stream = false) =>
        JSON.stringify({ model: 'gpt-4.1', max_tokens: maxTokens, messages: [{ role: 'user', content: 'count to three' }], ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) }),
    },
    {
      api: 'anthropic' as const,
      path: '/anthropic/v1/messages',
      body: (maxTokens: number, stream = false) =>
        JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: maxTokens, messages: [{ role: 'user', content: 'count to three' }], ...(stream ? { stream: true } : {}) }),
    },
  ])('$api: a stream holds its estimate until its final usage, and the next request is admitted exactly when the reconciled usage leaves room', async ({ api, path, body }) => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: api,
          api,
          endpoints: [
            { name: 'primary', url: api === 'openai' ? `${a!.url}/v1` : a!.url, rateLimit: { tokensPerMinute: TPM } },
            { name: 'secondary', url: api === 'openai' ? `${b!.url}/v1` : b!.url, priority: 1 },
          ],
        },
      ],
    });
    const url = `${rig.base}${path}`;
    /** a body whose estimate (bytes / 4 + max_tokens) is exactly `tokens` */
    const costing = (tokens: number) => {
      // the estimate's prompt part grows with the digits of max_tokens: settle it in two steps
      let max = tokens - Math.ceil(Buffer.byteLength(body(tokens)) / 4);
      max = tokens - Math.ceil(Buffer.byteLength(body(max)) / 4);
      const text = body(max);
      expect(Math.ceil(Buffer.byteLength(text) / 4) + max).toBe(tokens);
      return text;
    };
    const endpointOf = async (text: string) => (await post(url, text, { 'x-fake-events': '2' })).headers.get('x-breakwater-endpoint');
    const limiter = rig.endpoint(api, 'primary').gate.limiter!;

    // a stream of 3 slow events (0.5 s apart), estimated at its prompt + max_tokens 600
    const streamBody = body(600, true);
    const estimate = Math.ceil(Buffer.byteLength(streamBody) / 4) + 600;
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-events': '3', 'x-fake-delay-ms': '500' }, body: streamBody });
    expect(res.headers.get('x-breakwater-endpoint')).toBe('primary');
    const reader = res.body!.getReader();
    let sse = new TextDecoder().decode((await reader.read()).value);
    // while it streams, its whole estimate is held: one token more than what is left goes elsewhere
    expect(limiter.available('tokens', now())).toBe(TPM - estimate);
    expect(await endpointOf(costing(TPM - estimate + 1))).toBe('secondary');
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      sse += new TextDecoder().decode(value);
    }
    const used = finalUsage(sse);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(estimate);
    // reconciled when the stream ended: the reservation is now the reported usage
    await waitFor(() => limiter.available('tokens', now()) === TPM - used, 'the stream reconciled with its usage');
    expect(await endpointOf(costing(TPM - used + 1))).toBe('secondary');
    expect(await endpointOf(costing(TPM - used))).toBe('primary');
    expect(rig.fakes[0]!.stats().requests).toBe(2);
  });
});

describe('provider rate-limit headers', () => {
  it.each([
    { api: 'openai' as const, path: '/openai/chat/completions', body: chatBody() },
    { api: 'anthropic' as const, path: '/anthropic/v1/messages', body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }) },
  ])('$api: an endpoint whose provider reports its quota running out is slowed before the provider has to answer 429', async ({ api, path, body }) => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: api,
          api,
          endpoints: [
            // Breakwater's own limit is far away: only the provider's headers can slow it
            { name: 'primary', url: api === 'openai' ? `${a!.url}/v1` : a!.url, rateLimit: { requestsPerMinute: 100_000 } },
            { name: 'secondary', url: api === 'openai' ? `${b!.url}/v1` : b!.url, priority: 1 },
          ],
        },
      ],
    });
    const [a, b] = rig.fakes;
    // the provider's own limit: 5 requests, refilling over 2 s (one every 400 ms)
    a!.setQuota({ requests: 5, windowMs: 2_000 });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      statuses.push((await post(`${rig.base}${path}`, body)).status);
      await sleep(25);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    const seen = a!.stats();
    expect(seen.byFault['over-quota'] ?? 0).toBe(0); // never had to say 429
    expect(seen.requests).toBeGreaterThanOrEqual(5); // used its quota...
    expect(seen.requests).toBeLessThan(20); // ...and no more: the rest went to the secondary
    expect(seen.requests + b!.stats().requests).toBe(40);
    expect(rig.endpoint(api, 'primary').describe(now()).rateLimit?.provider.requests).not.toBeNull();

    // the control: without a rateLimit the headers are not mirrored, and the provider has to refuse
    a!.setQuota({ requests: 5, windowMs: 60_000 });
    rig.writeConfig([{ name: api, api, endpoints: [{ name: 'primary', url: api === 'openai' ? `${a!.url}/v1` : a!.url }, { name: 'secondary', url: api === 'openai' ? `${b!.url}/v1` : b!.url, priority: 1 }] }]);
    await rig.waitForGeneration(1);
    for (let i = 0; i < 6; i++) await post(`${rig.base}${path}`, body);
    expect(a!.stats().byFault['over-quota']).toBeGreaterThan(0);
  });
});

describe('an Anthropic client at the limit', () => {
  it('gets a 429 rate_limit_error in Anthropic\'s shape, not retried by the SDK', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'claude', api: 'anthropic', endpoints: [{ name: 'primary', url: a!.url, rateLimit: { requestsPerMinute: 1 } }] }],
    });
    const client = new Anthropic({ baseURL: `${rig.base}/claude`, apiKey: 'sk-app-key-ignored', timeout: 10_000 });
    const ask = () => client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
    await ask();
    const error = await ask().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect((error as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(rig.fakes[0]!.stats().requests).toBe(1);
  });
});
