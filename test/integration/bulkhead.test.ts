// Issue 10, test 1: a bulkhead per endpoint (endpoints[].maxConcurrent), through the real openai
// SDK against real fake providers. A slow endpoint never sees more attempts at once than its
// limit (the fake's own peak-concurrency counter), the surplus fails over or waits in the queue,
// and a full bulkhead is never charged to the endpoint's breaker.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startRig, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function client(r: Rig) {
  return new OpenAI({ baseURL: `${r.base}/openai`, apiKey: 'sk-app-key-ignored', timeout: 20_000 });
}

async function twelveAtOnce(r: Rig) {
  const openai = client(r);
  return Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] }).withResponse(),
    ),
  );
}

describe('bulkhead', () => {
  it('with maxConcurrent 4 on a slow A, 12 concurrent requests: A never sees more than 4 at once, the other 8 go to B, A\'s breaker is not charged', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'a', url: `${a!.url}/v1`, maxConcurrent: 4 },
            { name: 'b', url: `${b!.url}/v1`, priority: 1 },
          ],
          // a breaker that would open on the first charged failure
          breaker: { consecutiveFailures: 1, volumeThreshold: 1 },
        },
      ],
    });
    const [a, b] = rig.fakes;
    a!.setFault({ delayMs: 400 });
    b!.setFault({ delayMs: 400 });
    const results = await twelveAtOnce(rig);
    expect(results.every(({ data }) => typeof data.choices[0]?.message.content === 'string')).toBe(true);
    const by = (name: string) => results.filter(({ response }) => response.headers.get('x-breakwater-endpoint') === name).length;
    expect(by('a')).toBe(4);
    expect(by('b')).toBe(8);
    expect(a!.stats().peakConcurrency).toBe(4);
    expect(a!.stats().requests).toBe(4);
    const endpointA = rig.endpoint('openai', 'a');
    expect(endpointA.breaker.state.kind).toBe('closed');
    expect(endpointA.breaker.window()).toMatchObject({ fires: 4, failures: 0 });
    expect(endpointA.gate.slots.describe()).toEqual({ inUse: 0, limit: 4 });
    expect(rig.logs.some((l) => l.includes('"breaker opened"'))).toBe(false);
  });

  it('when A and B are both full the rest wait in the queue and are served as slots free up; neither endpoint ever exceeds its limit', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'a', url: `${a!.url}/v1`, maxConcurrent: 4 },
            { name: 'b', url: `${b!.url}/v1`, priority: 1, maxConcurrent: 2 },
          ],
          breaker: { consecutiveFailures: 1, volumeThreshold: 1 },
          queue: { maxSize: 20, maxWait: '15s' },
        },
      ],
    });
    const [a, b] = rig.fakes;
    a!.setFault({ delayMs: 400 });
    b!.setFault({ delayMs: 400 });
    const results = await twelveAtOnce(rig);
    expect(results).toHaveLength(12);
    expect(a!.stats().peakConcurrency).toBe(4);
    expect(b!.stats().peakConcurrency).toBe(2);
    expect(a!.stats().requests + b!.stats().requests).toBe(12);
    // six had to wait, and each was served after a slot freed
    const { values } = await rig.proxy.metrics.queueWait.get();
    const waited = values.find((v) => v.metricName === 'breakwater_queue_wait_seconds_count' && v.labels.priority === 'normal');
    expect(waited?.value).toBe(6);
    for (const name of ['a', 'b']) {
      const e = rig.endpoint('openai', name);
      expect(e.breaker.window().failures).toBe(0);
      expect(e.gate.slots.describe().inUse).toBe(0);
    }
    expect(rig.proxy.runtime.snapshot!.upstreams.get('openai')!.queue.depth).toBe(0);
  });

  it('a stream holds its slot until it ends: meanwhile the next request goes to B, afterwards to A again', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'a', url: `${a!.url}/v1`, maxConcurrent: 1 },
            { name: 'b', url: `${b!.url}/v1`, priority: 1 },
          ],
        },
      ],
    });
    const [a] = rig.fakes;
    a!.setFault({ delayMs: 150, events: 5 });
    const openai = client(rig);
    const ask = async () => (await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse()).response.headers.get('x-breakwater-endpoint');
    const { data: stream, response } = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'stream' }], stream: true }).withResponse();
    expect(response.headers.get('x-breakwater-endpoint')).toBe('a');
    let chunks = 0;
    let during: string | null = null;
    for await (const _chunk of stream) {
      if (chunks++ === 1) {
        expect(rig.endpoint('openai', 'a').gate.slots.describe()).toEqual({ inUse: 1, limit: 1 });
        during = await ask();
      }
    }
    expect(chunks).toBeGreaterThan(2);
    expect(during).toBe('b');
    expect(rig.endpoint('openai', 'a').gate.slots.describe().inUse).toBe(0);
    a!.setFault(null);
    expect(await ask()).toBe('a');
  });
});
