// Issue 3, tests 1 and 2: a throttling primary is routed around, and a total outage is not
// amplified (SDK retries included), through the real openai SDK at its default retry settings.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startRig, TEST_KEY, type Rig, primaryAndSecondary } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function client(r: Rig, timeout = 10_000) {
  return new OpenAI({ baseURL: `${r.base}/openai`, apiKey: 'sk-app-key-ignored', timeout });
}

describe('failover', () => {
  it('routes around a primary that throttles every request; the primary sees only volumeThreshold plus a few attempts', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'primary', url: `${a!.url}/v1`, priority: 0 },
            { name: 'secondary', url: `${b!.url}/v1`, priority: 1 },
          ],
          breaker: { volumeThreshold: 5, openDuration: '60s', rollingWindow: '60s' },
          // the budget's reserve must afford the failovers made before the breaker has volume to open
          retry: { budget: { ratio: 0.2, minPerSecond: 5 } },
        },
      ],
    });
    const [primary, secondary] = rig.fakes;
    primary!.setFault({ fault: '429' });
    const openai = client(rig);
    const results = [];
    for (let i = 0; i < 60; i++) {
      const { data, response } = await openai.chat.completions
        .create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${i}` }] })
        .withResponse();
      results.push({ content: data.choices[0]?.message.content, endpoint: response.headers.get('x-breakwater-endpoint') });
    }
    expect(results.every((r) => typeof r.content === 'string' && r.content.length > 0)).toBe(true);
    expect(results.at(-1)!.endpoint).toBe('secondary');
    // issue 8 (defect 17): a 429 rate_limit_exceeded is model-scoped: it holds (primary, gpt-4.1)
    // with a growing backoff and never feeds the primary's breaker, which other models still use
    expect(rig.endpoint('openai', 'primary').breaker.state.kind).toBe('closed');
    // volumeThreshold (5) plus a handful: every later request skips the held pair
    expect(primary!.stats().requests).toBeLessThanOrEqual(5 + 3);
    expect(secondary!.stats().requests).toBe(60);
    // the provider got the endpoint's key, never the app's
    const auth = secondary!.stats().recent.map((r) => r.headers.authorization);
    expect(new Set(auth)).toEqual(new Set([`Bearer ${TEST_KEY}`]));
    expect(rig.logs.some((l) => l.includes('"breaker opened"'))).toBe(false);
  });

  it('under a total outage (503, then hang) every SDK call fails cleanly within its deadline and providers see at most 1.3 attempts per app request', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: primaryAndSecondary(a!, b!),
          breaker: { volumeThreshold: 5, openDuration: '1s' },
          // issue 8 (defect 20): a non-streaming generation waits for its headers up to timeouts.response
          timeouts: { firstByte: '500ms', response: '500ms', total: '3s' },
        },
      ],
    });
    const fakes = rig.fakes;
    for (const f of fakes) f.setFault({ fault: '503' });
    const sdkTimeout = 5_000;
    const openai = client(rig, sdkTimeout);
    let appRequests = 0;
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        appRequests++;
        const started = Date.now();
        const error = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(OpenAI.APIError);
        expect((error as InstanceType<typeof OpenAI.APIError>).status).toBeGreaterThanOrEqual(500);
        expect(Date.now() - started).toBeLessThan(sdkTimeout + 1_000);
      }
    };
    await run(40);
    for (const f of fakes) f.setFault({ fault: 'hang' });
    // let the breakers reach half-open so hanging trials happen too
    await new Promise((r) => setTimeout(r, 1_100));
    await run(40);
    const attempts = fakes.reduce((sum, f) => sum + f.stats().requests, 0);
    expect(appRequests).toBe(80);
    expect(attempts / appRequests).toBeLessThanOrEqual(1.3);
    expect(attempts).toBeGreaterThan(0);
  });
});
