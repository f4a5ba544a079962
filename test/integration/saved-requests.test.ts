// Issue 8: requests Breakwater exists to save, saved. Each test drives the real proxy with the
// official SDKs at their default settings against the fault-injecting fakes, and names the
// defect it pins (each failed on the code before issue 8).
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, primaryAndSecondary, startRig, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function openaiClient(r: Rig) {
  return new OpenAI({ baseURL: `${r.base}/openai`, apiKey: 'sk-app' });
}

/** `loops` concurrent loops of `each` requests; resolves to the number that failed */
async function concurrently(loops: number, each: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let failed = 0;
  await Promise.all(
    Array.from({ length: loops }, async (_, l) => {
      for (let i = 0; i < each; i++) await call(l * each + i).catch(() => failed++);
    }),
  );
  return failed;
}

describe('defect 1: requests fail while a healthy endpoint is there to serve them', () => {
  it('a burst of failovers at start-up all succeed: a fresh sidecar, a throttling primary (429, Retry-After 2), 6 concurrent SDK loops', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!) }] });
    // the 429s take a moment, so all six first requests reach the primary before the first answer
    rig.fakes[0]!.setFault({ fault: '429', retryAfter: 2, delayMs: 100 });
    const openai = openaiClient(rig);
    const failed = await concurrently(6, 10, (i) => openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] }));
    expect(failed).toBe(0);
    expect(rig.fakes[1]!.stats().requests).toBeGreaterThanOrEqual(55);
  });

  it('a burst of failovers at start-up all succeed: a hanging primary', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!), timeouts: { firstByte: '300ms', response: '300ms' } }],
    });
    rig.fakes[0]!.setFault({ fault: 'hang' });
    const openai = openaiClient(rig);
    const failed = await concurrently(6, 5, (i) => openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] }));
    expect(failed).toBe(0);
    // the primary's breaker opened on consecutive timeouts: it saw only the first few
    expect(rig.fakes[0]!.stats().requests).toBeLessThanOrEqual(6 + 5);
  });

  it('a burst of failovers at start-up all succeed: an Anthropic primary answering 529', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [{ name: 'claude', api: 'anthropic', endpoints: [{ name: 'primary', url: a!.url }, { name: 'secondary', url: b!.url, priority: 1 }] }],
    });
    rig.fakes[0]!.setFault({ fault: '529' });
    const claude = new Anthropic({ baseURL: `${rig.base}/claude`, apiKey: 'sk-ant-app' });
    const failed = await concurrently(6, 10, () => claude.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }));
    expect(failed).toBe(0);
  });

  it('after a long healthy run, a primary that fails every request costs no app request and takes at most 10 attempts before its breaker opens', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!) }] });
    const [primary] = rig.fakes;
    const openai = openaiClient(rig);
    const ask = (i: number) => openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] });
    // a window full of successes: the error rate alone would take many failures to cross 50 %
    expect(await concurrently(4, 100, ask)).toBe(0);
    primary!.resetStats();
    primary!.setFault({ fault: '503' });
    expect(await concurrently(4, 50, ask)).toBe(0);
    expect(primary!.stats().requests).toBeLessThanOrEqual(10);
    expect(rig.endpoint('openai', 'primary').breaker.state.kind).toBe('open');
  });
});

describe('defect 14: a hung endpoint does not eat the app\'s whole deadline', () => {
  it('with an 8 s SDK timeout and a hanging primary, every request is answered by the secondary and the primary is charged a timeout', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!) }] });
    rig.fakes[0]!.setFault({ fault: 'hang' });
    const openai = openaiClient(rig);
    // a per-request timeout is what the openai SDK announces (X-Stainless-Timeout: 8)
    const results = await Promise.all(
      Array.from({ length: 3 }, () => openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, { timeout: 8_000 }).withResponse()),
    );
    for (const { response } of results) expect(response.headers.get('x-breakwater-endpoint')).toBe('secondary');
    // the SDK never retried into the hang: one attempt per request on the primary
    expect(rig.fakes[0]!.stats().requests).toBe(3);
    expect(rig.endpoint('openai', 'primary').breaker.window().failures).toBe(3);
  }, 30_000);
});

describe('defect 15: Breakwater answers before the SDK gives up', () => {
  it('with a 5 s SDK timeout and a hanging endpoint, the app gets a 504 (x-should-retry: false) and the provider sees one attempt per app request', async () => {
    rig = await startRig({ fakes: 1, upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }] }] });
    rig.fakes[0]!.setFault({ fault: 'hang' });
    const openai = openaiClient(rig);
    const errors = await Promise.all(
      Array.from({ length: 3 }, () =>
        openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, { timeout: 5_000 }).then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    for (const e of errors) {
      expect(e).toBeInstanceOf(OpenAI.APIError);
      expect((e as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    }
    expect(rig.fakes[0]!.stats().requests).toBe(3);
  }, 30_000);
});

describe('defect 16: a long provider wait is not slept inside the request', () => {
  it('both endpoints answer 429 with Retry-After 30: the app hears it at once, with the wait and x-should-retry: false', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!) }] });
    for (const f of rig.fakes) f.setFault({ fault: '429', retryAfter: 30 });
    const started = performance.now();
    const r = await post(`${rig.base}/openai/chat/completions`, chatBody());
    expect(performance.now() - started).toBeLessThan(5_000); // a hang guard: today it slept 30 s
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(r.headers.get('x-should-retry')).toBe('false');
  });
});

describe('defect 17: a model-scoped throttle does not open the whole endpoint', () => {
  it('429 rate_limit_exceeded for one model (no Retry-After): that model fails over, other models stay on the primary, whose breaker stays closed', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!), breaker: { volumeThreshold: 5 } }] });
    rig.fakes[0]!.setFault({ fault: '429', model: 'gpt-4.1' });
    const openai = openaiClient(rig);
    for (let i = 0; i < 20; i++) {
      const big = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      expect(big.response.headers.get('x-breakwater-endpoint')).toBe('secondary');
      const mini = await openai.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      expect(mini.response.headers.get('x-breakwater-endpoint')).toBe('primary');
    }
    expect(rig.endpoint('openai', 'primary').breaker.state.kind).toBe('closed');
    expect(rig.endpoint('openai', 'primary').describe(Date.now()).modelHolds).toHaveProperty('gpt-4.1');
  });
});

describe('defect 18: an Anthropic stream that fails right after message_start is failed over', () => {
  it('an overloaded_error event before any content: 4 of 4 streams complete on the secondary', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [{ name: 'claude', api: 'anthropic', endpoints: [{ name: 'primary', url: a!.url }, { name: 'secondary', url: b!.url, priority: 1 }] }],
    });
    rig.fakes[0]!.setFault({ fault: 'error-after-start' });
    const claude = new Anthropic({ baseURL: `${rig.base}/claude`, apiKey: 'sk-ant-app' });
    for (let i = 0; i < 4; i++) {
      const stream = claude.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
      const message = await stream.finalMessage();
      expect(message.content.length).toBeGreaterThan(0);
    }
    // a streamed overloaded_error is a model-scoped throttle: the pair is held, the breaker untouched
    expect(rig.endpoint('claude', 'primary').breaker.window().failures).toBe(0);
    expect(rig.endpoint('claude', 'primary').describe(Date.now()).modelHolds).toHaveProperty('claude-sonnet-4-5');
  });
});

describe('defect 20: a long non-streaming generation is not cut and billed again', () => {
  it('a non-streaming answer that takes longer than firstByte (but within timeouts.response) arrives after one attempt', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!), timeouts: { firstByte: '300ms', response: '10s' } }],
    });
    // the provider sends its headers only when the whole answer is ready, as a reasoning model does
    rig.fakes[0]!.setFault({ fault: 'none', delayMs: 1_000 });
    const { response } = await openaiClient(rig).chat.completions.create({ model: 'o3', messages: [{ role: 'user', content: 'think' }] }).withResponse();
    expect(response.headers.get('x-breakwater-endpoint')).toBe('primary');
    expect(response.headers.get('x-breakwater-attempts')).toBe('1');
    expect(rig.fakes[0]!.stats().requests).toBe(1);
    expect(rig.fakes[1]!.stats().requests).toBe(0);
  });
});

describe('defect 21: refusals say what happened, once', () => {
  it('with x-breakwater-fallback: off, a held model is refused 429 model_held with the hold\'s Retry-After, not 503 breaker_open', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [
        { name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }], fallbacks: [{ model: 'gpt-4.1', chain: [{ model: 'gpt-4.1-mini' }] }] },
      ],
    });
    rig.fakes[0]!.setFault({ fault: '429', model: 'gpt-4.1', retryAfter: 20 });
    const first = await post(`${rig.base}/openai/chat/completions`, chatBody('gpt-4.1'), { 'x-breakwater-fallback': 'off' });
    expect(first.status).toBe(429); // the provider's own answer, passed on
    const second = await post(`${rig.base}/openai/chat/completions`, chatBody('gpt-4.1'), { 'x-breakwater-fallback': 'off' });
    expect(second.status).toBe(429);
    expect(second.headers.get('x-breakwater-error')).toBe('model_held');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(15);
    expect(second.headers.get('x-should-retry')).toBe('false');
    expect(JSON.parse(second.text).error.code).toBe('model_held');
    expect(rig.fakes[0]!.stats().requests).toBe(1);
  });

  it('a provider SSE error event after the commit is relayed once, without a second error event from Breakwater', async () => {
    rig = await startRig({ fakes: 1, upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }] }] });
    rig.fakes[0]!.setFault({ fault: 'error-mid-stream' });
    const res = await fetch(`${rig.base}/openai/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody('gpt-4.1', { stream: true }) });
    const text = await res.text();
    expect(res.status).toBe(200);
    const errorEvents = text.split(/\r?\n\r?\n/).filter((e) => /"error"/.test(e));
    expect(errorEvents).toHaveLength(1);
    expect(text).not.toContain('breakwater request'); // Breakwater's own error events name the request
  });
});
