import { afterEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../../../src/admin/heartbeat.ts';
import { Liveness } from '../../../src/admin/liveness.ts';
import { systemClock, type Clock } from '../../../src/clock.ts';

let heartbeat: Heartbeat | undefined;
let liveness: Liveness | undefined;
afterEach(() => {
  heartbeat?.stop();
  liveness?.stop();
  vi.useRealTimers();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Liveness', () => {
  it('is live while the loop turns, fails after a stall longer than the limit, and recovers after the window', async () => {
    // real time, a real wedged loop; a 20 ms beat keeps the test short (the default beat is 1 s)
    heartbeat = new Heartbeat(systemClock, 20);
    liveness = new Liveness(heartbeat, { maxDelayMs: 400, windowMs: 1000 });
    liveness.start();
    heartbeat.start();
    await sleep(100);
    expect(liveness.check().live).toBe(true);
    const until = performance.now() + 700;
    while (performance.now() < until) {
      // wedge the loop
    }
    // right after the stall, before any beat: the running stall counts
    const during = liveness.check();
    expect(during.live).toBe(false);
    expect(during.maxDelayMs).toBeGreaterThanOrEqual(600);
    // after the first beat ran late, it is remembered for the window
    await sleep(50);
    expect(liveness.check().live).toBe(false);
    await sleep(1300);
    expect(liveness.check()).toMatchObject({ live: true, reason: 'event loop is turning' });
  });

  it('detects a stall past the limit on the default 1 s beat, and reports the beat delays', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    // a stalled loop: time passes while no timer runs
    let stalled = 0;
    const clock: Clock = { ...systemClock, now: () => systemClock.now() + stalled };
    heartbeat = new Heartbeat(clock);
    liveness = new Liveness(heartbeat);
    liveness.start();
    heartbeat.start();
    vi.advanceTimersByTime(10_000);
    expect(liveness.check()).toMatchObject({ live: true, maxDelayMs: 0, eventLoopDelay: { p50: 0, p99: 0, max: 0 } });
    // 3 s pass with no timer run: while it lasts, the running stall counts from when the beat was due
    stalled += 3_000;
    expect(liveness.check()).toMatchObject({ live: true, maxDelayMs: 2_000 });
    vi.advanceTimersByTime(1_000);
    const after = liveness.check();
    expect(after.live).toBe(false);
    expect(after.reason).toMatch(/event loop stalled for 3000ms \(limit 2000ms\)/);
    expect(after.eventLoopDelay.max).toBe(3_000);
    // remembered for the window (5 s), then live again
    vi.advanceTimersByTime(4_000);
    expect(liveness.check().live).toBe(false);
    vi.advanceTimersByTime(2_000);
    expect(liveness.check().live).toBe(true);
  });
});
