// Issue 3, test 3: the retry budget caps amplification when breakers never open (its bound as
// issue 8 restated it). The half-open ramp moved to virtual time (see the note at the end).
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, type Rig } from '../support/rig.ts';

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

// The half-open ramp waves (1, then at most 5, then at most 10 concurrent trials, then closed)
// moved to the virtual-time layer in issue 8: test/unit/proxy/attempt.test.ts, "half-open ramp
// [1, 5, 10], in waves of 30 concurrent requests". On real time under a loaded machine the
// first wave's trial could finish before the wave's last requests arrived, which the ramp
// rightly admits to the next step.
