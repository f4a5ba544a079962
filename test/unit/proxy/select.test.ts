// Latency-aware choice on virtual time: the peak-EWMA of time to first byte (peak-sensitive,
// decayed by time not by count, relaxing while idle, failures counted as slow), its cost with
// in-flight attempts, power of two choices with weights, the plain weighted order, and the
// estimate surviving a config swap and being fed by the attempt loop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret } from '../../../src/config/runtime.ts';
import { LATENCY_TAU_MS, LatencyEwma, UNMEASURED_PENALTY_MS } from '../../../src/proxy/select.ts';
import { manualClock } from '../../support/clock.ts';
import { loopRig, ok, seeded, upstream } from '../../support/loop.ts';

describe('LatencyEwma (peak-EWMA of time to first byte)', () => {
  it('has no estimate before the first observation: an idle endpoint costs 0, a busy one the penalty', () => {
    const ewma = new LatencyEwma(manualClock());
    expect(ewma.value()).toBe(0);
    expect(ewma.cost(0)).toBe(0);
    expect(ewma.cost(2)).toBe(UNMEASURED_PENALTY_MS + 2);
  });

  it('takes a slower observation at once (peak-sensitive)', () => {
    const clock = manualClock();
    const ewma = new LatencyEwma(clock);
    ewma.observe(100);
    clock.advance(1);
    ewma.observe(500);
    expect(ewma.value()).toBeCloseTo(500, 6);
  });

  it('moves towards a faster observation by the time since the last one, not by the count of observations', () => {
    const clock = manualClock();
    const burst = new LatencyEwma(clock);
    burst.observe(500);
    // ten fast answers within 10 ms barely move it
    for (let i = 0; i < 10; i++) {
      clock.advance(1);
      burst.observe(100);
    }
    expect(burst.value()).toBeGreaterThan(495);

    const spaced = new LatencyEwma(clock);
    spaced.observe(500);
    clock.advance(LATENCY_TAU_MS);
    spaced.observe(100);
    // weight of the old estimate e^-1
    expect(spaced.value()).toBeCloseTo(500 * Math.exp(-1) + 100 * (1 - Math.exp(-1)), 6);
  });

  it('relaxes towards 0 while no observation comes, so an endpoint avoided as slow is tried again', () => {
    const clock = manualClock();
    const ewma = new LatencyEwma(clock);
    ewma.observe(1_000);
    clock.advance(LATENCY_TAU_MS);
    expect(ewma.value()).toBeCloseTo(1_000 / Math.E, 6);
    clock.advance(6 * LATENCY_TAU_MS);
    expect(ewma.value()).toBeLessThan(1);
    expect(ewma.value()).toBeGreaterThan(0);
  });

  it('counts a failure as at least as slow as its elapsed time, and never as faster than the estimate', () => {
    const clock = manualClock();
    const ewma = new LatencyEwma(clock);
    ewma.observe(200);
    ewma.penalize(5); // a fast 503
    expect(ewma.value()).toBeCloseTo(200, 6);
    clock.advance(100);
    ewma.penalize(5_000); // a first-byte timeout after 5 s
    expect(ewma.value()).toBeCloseTo(5_000, 6);
  });

  it('costs estimate × (in-flight + 1)', () => {
    const ewma = new LatencyEwma(manualClock());
    ewma.observe(100);
    expect(ewma.cost(0)).toBeCloseTo(100, 6);
    expect(ewma.cost(3)).toBeCloseTo(400, 6);
  });
});

const T0 = 1_700_000_000_000;

describe('endpoint order within a priority', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const samePriority = (extra: Record<string, unknown>, endpoints = 2, weights?: number[]) => {
    const doc = upstream({ endpoints, each: { priority: 0 }, ...extra });
    if (weights) doc.spec.endpoints.forEach((e, i) => (e.weight = weights[i]!));
    return doc;
  };

  function firstCounts(order: () => readonly { name: string }[], n: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const first = order()[0]!.name;
      counts[first] = (counts[first] ?? 0) + 1;
    }
    return counts;
  }

  it('leastLatency puts the faster endpoint first whatever the draw, and the slower one as its failover', () => {
    const rig = loopRig(samePriority({ balance: 'leastLatency' }), () => ok);
    rig.endpoint('e0').latency.observe(500);
    rig.endpoint('e1').latency.observe(100);
    const random = seeded(1);
    for (let i = 0; i < 50; i++) expect(rig.upstream.order(random).map((e) => e.name)).toEqual(['e1', 'e0']);
  });

  it('leastLatency weighs in-flight attempts: a fast endpoint with a queue of its own loses to a slower idle one', () => {
    const rig = loopRig(samePriority({ balance: 'leastLatency' }), () => ok);
    rig.endpoint('e0').latency.observe(500);
    rig.endpoint('e1').latency.observe(100);
    rig.endpoint('e1').inflight = 5; // cost 600 against 500
    expect(rig.upstream.order(seeded(2))[0]!.name).toBe('e0');
    rig.endpoint('e1').inflight = 0;
  });

  it('leastLatency never puts the slowest of three first (it loses every pair it is drawn into)', () => {
    const rig = loopRig(samePriority({ balance: 'leastLatency' }, 3), () => ok);
    rig.endpoint('e0').latency.observe(100);
    rig.endpoint('e1').latency.observe(120);
    rig.endpoint('e2').latency.observe(900);
    const random = seeded(4);
    const counts = firstCounts(() => rig.upstream.order(random), 500);
    expect(counts.e2).toBeUndefined();
    expect(counts.e0! + counts.e1!).toBe(500);
  });

  it('leastLatency still applies weights: at equal latency the heavy endpoint goes first', () => {
    const rig = loopRig(samePriority({ balance: 'leastLatency' }, 2, [1, 99]), () => ok);
    rig.endpoint('e0').latency.observe(100);
    rig.endpoint('e1').latency.observe(100);
    const counts = firstCounts(() => rig.upstream.order(seeded(5)), 200);
    expect(counts.e1).toBe(200);
  });

  it('leastLatency tries an endpoint that has no estimate yet (cost 0) before a measured one', () => {
    const rig = loopRig(samePriority({ balance: 'leastLatency' }), () => ok);
    rig.endpoint('e0').latency.observe(50);
    expect(rig.upstream.order(seeded(6))[0]!.name).toBe('e1');
  });

  it('weighted ignores latency and follows the weights (3:1 within a few percent over 4000 draws)', () => {
    const rig = loopRig(samePriority({}, 2, [300, 100]), () => ok);
    rig.endpoint('e0').latency.observe(900);
    rig.endpoint('e1').latency.observe(10);
    const random = seeded(7);
    const counts = firstCounts(() => rig.upstream.order(random), 4_000);
    expect(counts.e0! / 4_000).toBeGreaterThan(0.72);
    expect(counts.e0! / 4_000).toBeLessThan(0.78);
  });

  it('keeps priority groups in order under leastLatency: a faster endpoint of a later priority comes after', () => {
    const rig = loopRig(upstream({ endpoints: 3, balance: 'leastLatency' }), () => ok); // priorities 0, 1, 2
    rig.endpoint('e0').latency.observe(5_000);
    rig.endpoint('e2').latency.observe(1);
    expect(rig.upstream.order(seeded(8)).map((e) => e.name)).toEqual(['e0', 'e1', 'e2']);
  });

  it('keeps the estimate across a config swap that keeps the endpoint', () => {
    const doc = samePriority({ balance: 'leastLatency' });
    const rig = loopRig(doc, () => ok);
    rig.endpoint('e0').latency.observe(321);
    rig.runtime.apply([compileUpstream({ ...doc, spec: { ...doc.spec, balance: 'weighted' } }, () => new Secret('sk-test'))], 'test');
    const swapped = rig.runtime.snapshot!.upstreams.get('u')!.endpoints.find((e) => e.name === 'e0')!;
    expect(swapped.latency.value()).toBeCloseTo(321, 6);
  });

  it('is fed by the attempt loop: an answer observes its time to commit, a first-byte timeout counts as slow', async () => {
    const rig = loopRig(
      samePriority({ balance: 'leastLatency', timeouts: { firstByte: '2s', response: '2s' }, retry: { maxAttempts: 1 } }),
      (e) => (e === 'e0' ? { after: 250, then: ok } : 'hang'),
    );
    const answered = rig.run();
    await vi.advanceTimersByTimeAsync(300);
    const a = await answered;
    expect(a.kind).toBe('answer');
    if (a.kind === 'answer') a.attempt.settle(a.result.outcome);
    expect(rig.endpoint('e0').latency.value()).toBeGreaterThan(240); // 250 ms, decayed for the 50 ms since
    expect(rig.endpoint('e0').latency.value()).toBeLessThanOrEqual(300);
    // e1 has no estimate, so it goes first now, and hangs until its timeout
    const timedOut = rig.run();
    await vi.advanceTimersByTimeAsync(2_100);
    expect((await timedOut).kind).not.toBe('answer');
    expect(rig.endpoint('e1').latency.value()).toBeGreaterThan(1_950); // 2 s, decayed for the 100 ms since
  });
});
