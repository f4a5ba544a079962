// The admin side's one background timer, on virtual time: every consumer rides on the same
// timer, stop() leaves none behind, and liveness, readiness and the dashboard sampler together
// keep exactly one timer while all is well (an idle sidecar wakes once a beat, not 130 times a
// second).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat, HEARTBEAT_MS } from '../../../src/admin/heartbeat.ts';
import { Liveness } from '../../../src/admin/liveness.ts';
import { Readiness } from '../../../src/admin/readiness.ts';
import { RecentStats } from '../../../src/admin/recent.ts';
import { every, systemClock } from '../../../src/clock.ts';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret } from '../../../src/config/runtime.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { upstream } from '../../support/loop.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('every', () => {
  it('ticks once per period from when each tick ran, and never after stop', () => {
    const seen: number[] = [];
    const ticker = every(systemClock, 500, (now) => seen.push(now));
    vi.advanceTimersByTime(1_600);
    expect(seen.map((t) => Math.round(t - seen[0]!))).toEqual([0, 500, 1000]);
    ticker.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(seen).toHaveLength(3);
  });
});

describe('Heartbeat', () => {
  it('drives every consumer from one timer, once per beat', () => {
    const heartbeat = new Heartbeat(systemClock);
    const calls = [0, 0, 0];
    for (const i of [0, 1, 2]) heartbeat.add(() => void calls[i]!++);
    heartbeat.start();
    heartbeat.start(); // idempotent: still one timer
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(3 * HEARTBEAT_MS);
    expect(calls).toEqual([3, 3, 3]);
    heartbeat.stop();
  });

  it('stops: no timer is left and no consumer is called again; a removed consumer is not called', () => {
    const heartbeat = new Heartbeat(systemClock, 100);
    let kept = 0;
    let removed = 0;
    heartbeat.add(() => void kept++);
    const remove = heartbeat.add(() => void removed++);
    heartbeat.start();
    vi.advanceTimersByTime(100);
    remove();
    vi.advanceTimersByTime(100);
    expect([kept, removed]).toEqual([2, 1]);
    heartbeat.stop();
    expect(heartbeat.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(kept).toBe(2);
  });

  it('keeps beating for the others when one consumer throws', () => {
    const errors: unknown[] = [];
    const heartbeat = new Heartbeat(systemClock, 100, (err) => errors.push(err));
    let after = 0;
    heartbeat.add(() => {
      throw new Error('broken consumer');
    });
    heartbeat.add(() => void after++);
    heartbeat.start();
    vi.advanceTimersByTime(300);
    expect(after).toBe(3);
    expect(errors).toHaveLength(3);
    heartbeat.stop();
  });

  it('carries liveness, readiness and the dashboard sampler on one timer while all is well', async () => {
    const metrics = createMetrics();
    const runtime = new ProxyRuntime({ clock: systemClock, log: silentLogger, metrics, random: () => 0 });
    runtime.apply([compileUpstream(upstream({ name: 'main', required: true }), () => new Secret('k'))], 'test');
    // the data plane's own timers (each endpoint's rolling window rotates its buckets) are not the admin side's
    const dataPlane = vi.getTimerCount();
    const heartbeat = new Heartbeat(systemClock);
    const liveness = new Liveness(heartbeat);
    const readiness = new Readiness({ runtime, clock: systemClock, log: silentLogger, metrics, policy: 'breakers', unreadyAfterMs: 10_000, heartbeat });
    const recent = new RecentStats(metrics, { sampleEveryMs: 5_000, now: () => systemClock.now() });
    liveness.start();
    readiness.start();
    await recent.start(heartbeat);
    heartbeat.start();
    expect(vi.getTimerCount()).toBe(dataPlane + 1);
    await vi.advanceTimersByTimeAsync(60 * HEARTBEAT_MS);
    expect(vi.getTimerCount()).toBe(dataPlane + 1);
    expect(liveness.check()).toMatchObject({ live: true, eventLoopDelay: { max: 0 } });
    expect(readiness.evaluate().ready).toBe(true);
    // a sample every 5 s, not every beat: the first one and then 12 in a minute
    expect(recent.samples).toBeGreaterThanOrEqual(12);
    expect(recent.samples).toBeLessThanOrEqual(14);
    heartbeat.stop();
    readiness.stop();
    liveness.stop();
    recent.stop();
    expect(vi.getTimerCount()).toBe(dataPlane);
  });
});
