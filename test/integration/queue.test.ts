// Issue 10, test 2: the priority queue per upstream, through the real openai SDK (default retry
// settings) against a real fake provider. Under an overload of 10x the bulkhead the high-priority
// requests finish first and none is shed while low-priority ones are; every shed answer is a 429
// with Retry-After and x-should-retry: false that the SDK raises without retrying; no wait passes
// maxWait; a waiter whose app disconnects leaves the queue at once.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { Priority } from '../../src/proxy/admission.ts';
import type { UpstreamRuntime } from '../../src/proxy/upstream.ts';
import { chatBody, post, startRig, waitFor, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** the SDK, with every HTTP request it makes counted (its own retries included) */
function countingClient(r: Rig) {
  const sent = { count: 0 };
  const openai = new OpenAI({
    baseURL: `${r.base}/openai`,
    apiKey: 'sk-app-key-ignored',
    timeout: 30_000,
    fetch: (input, init) => {
      sent.count++;
      return fetch(input, init);
    },
  });
  return { openai, sent };
}

function upstreamOf(r: Rig): UpstreamRuntime {
  return r.proxy.runtime.snapshot!.upstreams.get('openai')!;
}

async function metricSum(r: Rig, metric: 'queueDepth' | 'shed', labels: Record<string, string> = {}): Promise<number> {
  const { values } = await r.proxy.metrics[metric].get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

interface Finished {
  priority: Priority;
  ok: boolean;
  at: number;
  error?: InstanceType<typeof OpenAI.APIError>;
}

describe('priority queue', () => {
  it('under 10x the bulkhead, high-priority requests finish first and none is shed while low ones are; sheds are 429s the SDK does not retry', async () => {
    const maxWaitMs = 10_000;
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1`, maxConcurrent: 2 }], queue: { maxSize: 10, maxWait: `${maxWaitMs}ms` } }],
    });
    const [a] = rig.fakes;
    // the first two hold the slots while the queue is set up (a hang guard's worth of margin), the rest are quick
    a!.setFaults([{ delayMs: 3_000, times: 2 }, { delayMs: 300 }]);
    const { openai, sent } = countingClient(rig);
    const queue = upstreamOf(rig).queue;
    const finished: Finished[] = [];
    const started = Date.now();
    const send = (priority: Priority) =>
      openai.chat.completions
        .create({ model: 'gpt-4.1', messages: [{ role: 'user', content: priority }] }, { headers: { 'x-breakwater-priority': priority } })
        .then(
          () => void finished.push({ priority, ok: true, at: Date.now() - started }),
          (error: unknown) => {
            if (!(error instanceof OpenAI.APIError)) throw error;
            finished.push({ priority, ok: false, at: Date.now() - started, error });
          },
        );
    const all: Promise<void>[] = [];
    // 8 low: two take the slots, six wait
    for (let i = 0; i < 8; i++) all.push(send('low'));
    await waitFor(() => queue.describe().waiting.low === 6, 'six low waiters');
    // 6 high: four fill the queue, two evict the newest lows
    for (let i = 0; i < 6; i++) all.push(send('high'));
    await waitFor(() => queue.describe().waiting.high === 6, 'six high waiters');
    // 6 normal: four evict the remaining lows, two find only higher priorities and are refused
    for (let i = 0; i < 6; i++) all.push(send('normal'));
    await Promise.all(all);

    const of = (p: Priority, ok: boolean) => finished.filter((f) => f.priority === p && f.ok === ok);
    expect(of('high', true)).toHaveLength(6);
    expect(of('high', false)).toHaveLength(0);
    expect(of('low', false)).toHaveLength(6);
    expect(of('low', true)).toHaveLength(2); // the two that had slots before anyone waited
    expect(of('normal', true)).toHaveLength(4);
    expect(of('normal', false)).toHaveLength(2);
    // every high finished before any normal did
    expect(Math.max(...of('high', true).map((f) => f.at))).toBeLessThan(Math.min(...of('normal', true).map((f) => f.at)));

    const shed = finished.filter((f) => !f.ok);
    for (const { error } of shed) {
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error!.status).toBe(429);
      expect(error!.code).toBe('queue_full');
      expect(Number(error!.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(error!.headers?.get('x-should-retry')).toBe('false');
    }
    // the SDK sent each of the 20 requests once (no retry of a 429), the provider saw only the 12 served
    expect(sent.count).toBe(20);
    expect(a!.stats().requests).toBe(12);
    expect(a!.stats().peakConcurrency).toBe(2);
    expect(await metricSum(rig, 'shed', { reason: 'queue_full' })).toBe(8);

    // no wait passed maxWait (a generous bound: the longest real wait is about 4.5 s)
    const { values } = await rig.proxy.metrics.queueWait.get();
    const count = values.filter((v) => v.metricName === 'breakwater_queue_wait_seconds_count').reduce((s, v) => s + v.value, 0);
    const withinMaxWait = values.filter((v) => v.metricName === 'breakwater_queue_wait_seconds_bucket' && v.labels.le === maxWaitMs / 1000).reduce((s, v) => s + v.value, 0);
    expect(count).toBe(18); // 6 low + 6 high + 6 normal waited (or were refused at the door)
    expect(withinMaxWait).toBe(count);
    expect(queue.depth).toBe(0);
    expect(await metricSum(rig, 'queueDepth')).toBe(0);
  });

  it('a waiter gives up at maxWait with a 429 queue_timeout that the SDK raises without retrying', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1`, maxConcurrent: 1 }], queue: { maxSize: 10, maxWait: '500ms' } }],
    });
    const [a] = rig.fakes;
    a!.setFault({ delayMs: 2_000 });
    const { openai, sent } = countingClient(rig);
    const holder = openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'first' }] });
    await waitFor(() => a!.stats().inflight === 1, 'the holder in flight');
    const started = Date.now();
    const error = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'second' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const waited = Date.now() - started;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const e = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('queue_timeout');
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(e.headers?.get('x-should-retry')).toBe('false');
    expect(waited).toBeLessThan(2_500); // maxWait is 500 ms: a hang guard, not a measurement
    expect(sent.count).toBe(2);
    expect(await metricSum(rig, 'shed', { reason: 'queue_timeout' })).toBe(1);
    await holder;
    expect(a!.stats().requests).toBe(1);
  });

  it('a waiter whose app disconnects leaves the queue at once: the depth returns to 0 while the slot is still held', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1`, maxConcurrent: 1 }], queue: { maxSize: 10, maxWait: '30s' } }],
    });
    const [a] = rig.fakes;
    a!.setFault({ delayMs: 1_500 });
    const url = `${rig.base}/openai/v1/chat/completions`;
    const headers = { 'content-type': 'application/json' };
    const holder = fetch(url, { method: 'POST', headers, body: chatBody() });
    await waitFor(() => a!.stats().inflight === 1, 'the holder in flight');
    const apps = Array.from({ length: 3 }, () => new AbortController());
    const waiters = apps.map((app) => fetch(url, { method: 'POST', headers, body: chatBody(), signal: app.signal }).catch((e: unknown) => e));
    const queue = upstreamOf(rig).queue;
    await waitFor(() => queue.depth === 3, 'three waiters queued');
    expect(await metricSum(rig, 'queueDepth')).toBe(3);
    for (const app of apps) app.abort();
    await Promise.all(waiters);
    await waitFor(() => queue.depth === 0, 'the queue empty after the apps left', 1_000);
    expect(await metricSum(rig, 'queueDepth')).toBe(0);
    expect(a!.stats().inflight).toBe(1); // still the holder's: nobody else got its slot
    const held = await holder;
    expect(held.status).toBe(200);
    await held.text();
    expect(a!.stats().requests).toBe(1);
  });

  it('an unknown x-breakwater-priority is a 400 invalid_request naming the header, and nothing is sent', async () => {
    rig = await startRig({ fakes: 1, upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1` }] }] });
    const res = await post(`${rig.base}/openai/v1/chat/completions`, chatBody(), { 'x-breakwater-priority': 'urgent' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-should-retry')).toBe('false');
    const body = JSON.parse(res.text) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toContain('x-breakwater-priority');
    expect(rig.fakes[0]!.stats().requests).toBe(0);
  });

  it('on an anthropic upstream the shed answer is Anthropic\'s 429 rate_limit_error, which @anthropic-ai/sdk raises without retrying', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [{ name: 'claude', api: 'anthropic', endpoints: [{ name: 'a', url: a!.url, maxConcurrent: 1 }], queue: { maxSize: 0 } }],
    });
    const [a] = rig.fakes;
    a!.setFault({ delayMs: 1_000 });
    const sent = { count: 0 };
    const claude = new Anthropic({
      baseURL: `${rig.base}/claude`,
      apiKey: 'sk-ant-app',
      fetch: (input: string | URL | Request, init?: RequestInit) => {
        sent.count++;
        return fetch(input, init);
      },
    });
    const ask = () => claude.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const holder = ask();
    await waitFor(() => a!.stats().inflight === 1, 'the holder in flight');
    const error = await ask().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const e = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect((e.error as { error?: { type?: string } }).error?.type).toBe('rate_limit_error');
    expect(e.headers?.get('x-breakwater-error')).toBe('queue_full');
    expect(e.headers?.get('retry-after')).not.toBeNull();
    expect(sent.count).toBe(2);
    await holder;
    expect(a!.stats().requests).toBe(1);
  });
});
