// Issue 10, test 7: hedged attempts through the real openai SDK against two real fakes. A stalls
// before its first byte: after `hedge.after` the hedge to B answers, A's attempt is aborted (the
// fake sees its request end) and never charged to A's breaker. A stream is hedged until its
// first content event, not its headers. Hedges draw from the retry budget: once the reserve is
// spent, requests wait for A and B sees no more of them.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startRig, waitFor, type Rig, type UpstreamDef } from '../support/rig.ts';
import type { FakeProvider } from '../../src/fake/server.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** A at priority 0, B at priority 1; `shaping`: issue 10's fields (the rig's UpstreamDef names only the older ones) */
function pair(a: FakeProvider, b: FakeProvider, shaping: Record<string, unknown>, retry?: Record<string, unknown>): UpstreamDef {
  return {
    name: 'openai',
    endpoints: [
      { name: 'a', url: `${a.url}/v1`, priority: 0 },
      { name: 'b', url: `${b.url}/v1`, priority: 1 },
    ],
    ...(retry ? { retry } : {}),
    ...shaping,
  };
}

function client(r: Rig) {
  return new OpenAI({ baseURL: `${r.base}/openai`, apiKey: 'sk-app-key-ignored', timeout: 20_000 });
}

async function hedgeMetric(r: Rig): Promise<Record<string, number>> {
  const { values } = await r.proxy.metrics.hedges.get();
  return Object.fromEntries(values.filter((v) => v.labels.upstream === 'openai').map((v) => [String(v.labels.result), v.value]));
}

describe('hedging', () => {
  it('hedges a stalled endpoint to the next one: the hedge answers, the stalled attempt is aborted and not charged', { timeout: 30_000 }, async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [pair(a!, b!, { hedge: { after: '200ms' } })] });
    const [a, b] = rig.fakes;
    a!.setFault({ fault: 'hang' });
    const openai = client(rig);
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const { data, response } = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] }).withResponse();
      expect(data.choices[0]?.message.content).toBeTruthy();
      expect(response.headers.get('x-breakwater-endpoint')).toBe('b');
      expect(response.headers.get('x-breakwater-attempts')).toBe('2'); // the original and its hedge
      expect(Date.now() - started).toBeLessThan(10_000); // hang guard: A's own timeout is 300 s
    }
    // A got every request and saw each one aborted (none is left in flight)
    expect(a!.stats().requests).toBe(3);
    await waitFor(() => a!.stats().inflight === 0, "A's stalled requests aborted");
    expect(b!.stats().requests).toBe(3);
    const endpointA = rig.endpoint('openai', 'a');
    expect(endpointA.breaker.window().failures).toBe(0);
    expect(endpointA.breaker.state.kind).toBe('closed');
    await waitFor(() => endpointA.inflight === 0, "A's attempts settled");
    expect(await hedgeMetric(rig)).toMatchObject({ started: 3, won: 3 });
    const { values } = await rig.proxy.metrics.attempts.get();
    const onA = Object.fromEntries(values.filter((v) => v.labels.endpoint === 'a' && v.value > 0).map((v) => [String(v.labels.result), v.value]));
    expect(onA).toEqual({ cancelled: 3 });
  });

  it('hedges a stream whose headers and opening events came but whose first content event did not', { timeout: 30_000 }, async () => {
    // Anthropic: message_start and content_block_start go out at once and do not commit; the first text delta is 15 s late on A
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ ...pair(a!, b!, { hedge: { after: '200ms' } }), name: 'anthropic', api: 'anthropic' }] });
    const [a, b] = rig.fakes;
    a!.setFault({ fault: 'none', delayMs: 15_000 });
    const anthropic = new Anthropic({ baseURL: `${rig.base}/anthropic`, apiKey: 'sk-ant-app', timeout: 20_000 });
    const started = Date.now();
    const { data: stream, response } = await anthropic.messages
      .create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const event of stream) if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    expect(text.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(10_000); // A's first delta would have taken 15 s
    expect(response.headers.get('x-breakwater-endpoint')).toBe('b');
    expect(b!.stats().requests).toBe(1);
    await waitFor(() => a!.stats().inflight === 0, "A's stream aborted");
    expect(rig.endpoint('anthropic', 'a').breaker.window().failures).toBe(0);
  });

  it('stops hedging when the retry budget is spent: after the reserve, requests wait for the slow endpoint', { timeout: 30_000 }, async () => {
    // ratio 0: no tokens from traffic; minPerSecond 0.1: a reserve of one token, refilling far slower than this test runs
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [pair(a!, b!, { hedge: { after: '100ms' } }, { budget: { ratio: 0, minPerSecond: 0.1 } })],
    });
    const [a, b] = rig.fakes;
    a!.setFault({ fault: 'none', delayMs: 1_500 }); // slow, not failing: no failover, only hedges reach B
    const openai = client(rig);
    const served: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { response } = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] }).withResponse();
      served.push(response.headers.get('x-breakwater-endpoint') ?? '');
    }
    expect(served).toEqual(['b', 'a', 'a', 'a', 'a']);
    expect(b!.stats().requests).toBe(1);
    expect(await hedgeMetric(rig)).toMatchObject({ started: 1, won: 1, budget_exhausted: 4 });
  });
});
