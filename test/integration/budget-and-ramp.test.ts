// Issue 3, tests 3 and 4: the retry budget caps amplification when breakers never open, and a
// half-open breaker ramps its trial concurrency 1 -> 5 -> 10 before it closes.
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, waitFor, type Rig, primaryAndSecondary } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('retry budget', () => {
  // issue 8 (defect 1): the first try of each endpoint is free (failover never draws from the
  // budget); only second tries of the same endpoint do, and the reserve is minPerSecond x the
  // 10 s window. So with E endpoints: attempts <= (E + ratio) x requests + minPerSecond x (seconds + 10).
  it('with breakers that never open and 503 everywhere, 300 requests over 2 endpoints cause at most (2 + ratio) x requests + minPerSecond x (seconds + 10) attempts', async () => {
    const ratio = 0.2;
    const minPerSecond = 2;
    const started = performance.now(); // the budget exists from the first config apply, inside startRig
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'a', url: `${a!.url}/v1` },
            { name: 'b', url: `${b!.url}/v1`, priority: 1 },
          ],
          breaker: { volumeThreshold: 1000000, consecutiveFailures: 0 },
          retry: { maxAttempts: 3, budget: { ratio, minPerSecond }, backoff: { initial: '1ms', max: '5ms' } },
        },
      ],
    });
    for (const f of rig.fakes) f.setFault({ fault: '503' });
    const requests = 300;
    const ratePerSecond = 100;
    const pending: Promise<{ status: number }>[] = [];
    for (let i = 0; i < requests; i++) {
      pending.push(post(`${rig.base}/openai/chat/completions`, chatBody()));
      await new Promise((r) => setTimeout(r, 1000 / ratePerSecond));
    }
    const results = await Promise.all(pending);
    const seconds = (performance.now() - started) / 1000;
    expect(results.every((r) => r.status === 503)).toBe(true);
    const attempts = rig.fakes.reduce((sum, f) => sum + f.stats().requests, 0);
    const bound = (2 + ratio) * requests + minPerSecond * (seconds + 10);
    expect(attempts).toBeLessThanOrEqual(bound);
    // and the budget did allow retries of the same endpoint (it is a cap, not a ban)
    expect(attempts).toBeGreaterThan(2 * requests);
    expect(rig.logs.some((l) => l.includes('retry budget exhausted'))).toBe(true);
  });
});

describe('half-open ramp', () => {
  it('lets 1, then at most 5, then at most 10 concurrent trials reach a recovering primary, then closes', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: primaryAndSecondary(a!, b!),
          breaker: { volumeThreshold: 3, openDuration: '1s', halfOpenRamp: [1, 5, 10] },
          retry: { budget: { ratio: 1, minPerSecond: 50 } },
        },
      ],
    });
    const [primary, secondary] = rig.fakes;
    primary!.setFault({ fault: '503' });
    for (let i = 0; i < 6; i++) expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).status).toBe(200);
    const breaker = rig.endpoint('openai', 'primary').breaker;
    expect(breaker.state.kind).toBe('open');
    // the fault clears; answers take a while so that concurrent trials overlap
    primary!.setFault({ fault: 'none', delayMs: 300 });
    await waitFor(() => breaker.state.kind === 'halfOpen', 'half-open', 5_000);

    const wave = async () => {
      primary!.resetStats();
      secondary!.resetStats();
      const results = await Promise.all(Array.from({ length: 30 }, () => post(`${rig!.base}/openai/chat/completions`, chatBody())));
      expect(results.every((r) => r.status === 200)).toBe(true);
      return { peak: primary!.stats().peakConcurrency, primary: primary!.stats().requests, secondary: secondary!.stats().requests };
    };
    const w1 = await wave();
    expect(w1.peak).toBe(1);
    expect(w1.primary).toBe(1);
    expect(w1.secondary).toBe(29);
    const w2 = await wave();
    expect(w2.peak).toBeGreaterThan(1);
    expect(w2.peak).toBeLessThanOrEqual(5);
    const w3 = await wave();
    expect(w3.peak).toBeGreaterThan(5);
    expect(w3.peak).toBeLessThanOrEqual(10);
    expect(breaker.state.kind).toBe('closed');
    const w4 = await wave();
    expect(w4.primary).toBe(30);
    expect(w4.peak).toBeGreaterThan(10);
  });
});
