import { afterEach, describe, expect, it } from 'vitest';
import { Liveness } from '../../../src/admin/liveness.ts';

let liveness: Liveness | undefined;
afterEach(() => liveness?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Liveness', () => {
  it('is live while the loop turns, fails after a stall longer than the limit, and recovers after the window', async () => {
    liveness = new Liveness({ maxDelayMs: 400, windowMs: 1000, intervalMs: 20 });
    liveness.start();
    await sleep(100);
    expect(liveness.check().live).toBe(true);
    const until = performance.now() + 700;
    while (performance.now() < until) {
      // wedge the loop
    }
    // right after the stall, before any tick: the running stall counts
    const during = liveness.check();
    expect(during.live).toBe(false);
    expect(during.maxDelayMs).toBeGreaterThanOrEqual(600);
    // after the first tick ran late, it is remembered for the window
    await sleep(50);
    expect(liveness.check().live).toBe(false);
    await sleep(1300);
    expect(liveness.check()).toMatchObject({ live: true, reason: 'event loop is turning' });
  });
});
