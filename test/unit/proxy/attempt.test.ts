// The attempt loop on virtual time against scripted endpoints (test/support/loop.ts): the
// half-open ramp in waves, failing fast through an outage, jittered wake-ups after a
// Retry-After, re-openings that grow, and every attempt recorded exactly once, whatever its
// outcome, including a body rewrite that throws.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Answer, GiveUp } from '../../../src/proxy/attempt.ts';
import { fail, loopRig, ok, type Scripted, settle, upstream } from '../../support/loop.ts';

const T0 = 1_700_000_000_000;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});


function attemptsOf(r: Answer | GiveUp): number {
  return r.kind === 'cancelled' ? 0 : r.attempts;
}

describe('half-open ramp [1, 5, 10], in waves of 30 concurrent requests', () => {
  it('lets 1, then at most 5, then at most 10 trials reach the recovering endpoint, then closes', async () => {
    let healthy = false;
    const rig = loopRig(
      upstream({ breaker: { openDuration: '1s', halfOpenRamp: [1, 5, 10], consecutiveFailures: 3 } }),
      (e) => (e === 'e0' && !healthy ? fail(503) : { after: 100, then: ok }),
    );
    const e0 = rig.dispatchers.get('e0')!;
    for (let i = 0; i < 3; i++) {
      const p = rig.run();
      await vi.advanceTimersByTimeAsync(200);
      expect(settle(await p).kind).toBe('answer');
    }
    expect(rig.endpoint('e0').breaker.state.kind).toBe('open');
    healthy = true;
    await vi.advanceTimersByTimeAsync(1_000);

    const wave = async () => {
      e0.peak = 0;
      const before = e0.calls;
      const runs = Array.from({ length: 30 }, () => rig.run());
      await vi.advanceTimersByTimeAsync(150);
      const results = (await Promise.all(runs)).map(settle);
      expect(results.every((r) => r.kind === 'answer')).toBe(true);
      return { peak: e0.peak, calls: e0.calls - before };
    };
    expect(await wave()).toEqual({ peak: 1, calls: 1 });
    const w2 = await wave();
    expect(w2.peak).toBe(5);
    const w3 = await wave();
    expect(w3.peak).toBe(10);
    expect(rig.endpoint('e0').breaker.state.kind).toBe('closed');
    expect((await wave()).calls).toBe(30);
  });
});

describe('a total outage', () => {
  it('fails fast once the breakers are open: no attempt, no wait, a Retry-After to the earliest half-open', async () => {
    const rig = loopRig(upstream({ breaker: { openDuration: '30s', consecutiveFailures: 2 } }), () => fail(503));
    for (let i = 0; i < 2; i++) {
      const p = rig.run();
      await vi.advanceTimersByTimeAsync(10_000);
      expect((await p).kind).toBe('provider_error');
    }
    expect(rig.endpoint('e0').breaker.state.kind).toBe('open');
    expect(rig.endpoint('e1').breaker.state.kind).toBe('open');
    const calls = rig.dispatchers.get('e0')!.calls + rig.dispatchers.get('e1')!.calls;
    await vi.advanceTimersByTimeAsync(5_000);
    const started = Date.now();
    const r = await rig.run(); // no timer advanced: it must not wait at all
    expect(Date.now()).toBe(started);
    expect(r).toMatchObject({ kind: 'refused', error: 'breaker_open', attempts: 0 });
    const untils = ['e0', 'e1'].map((e) => (rig.endpoint(e).breaker.state as { until: number }).until);
    expect((r as { retryAfterMs: number }).retryAfterMs).toBe(Math.min(...untils) - Date.now());
    expect(rig.dispatchers.get('e0')!.calls + rig.dispatchers.get('e1')!.calls).toBe(calls);
  });
});

describe('Retry-After wake-ups are jittered', () => {
  it.each([
    [0, 2_000],
    [0.5, 2_250],
    [0.999, 2_499],
  ])('random %d: a 2 s Retry-After holds the endpoint for %i ms (between 1 and 1.25 times the wait)', async (random, held) => {
    const rig = loopRig(upstream({ endpoints: 1, retry: { maxAttempts: 1 } }), () => fail(503, { 'retry-after': '2' }), () => random);
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(1);
    const r = await p;
    expect(r.kind).toBe('provider_error');
    const a = rig.endpoint('e0').gate.peek('gpt-4.1', Date.now());
    expect(a).toMatchObject({ kind: 'held', scope: 'endpoint' });
    expect((a as { at: number }).at - T0).toBe(held);
  });
});

describe('re-opening after a failed half-open', () => {
  it('grows base x n, capped at 8 x, with jitter from the injected random', async () => {
    let jitter = 0;
    const rig = loopRig(upstream({ endpoints: 1, breaker: { openDuration: '10s', consecutiveFailures: 1 } }), () => fail(503), () => jitter);
    const openFor = async (): Promise<number> => {
      const p = rig.run();
      await vi.advanceTimersByTimeAsync(1);
      await p;
      const s = rig.endpoint('e0').breaker.state;
      if (s.kind !== 'open') throw new Error(`expected open, got ${s.kind}`);
      const ms = s.until - s.since;
      await vi.advanceTimersByTimeAsync(ms); // half-open: the next request is a trial
      return ms;
    };
    const durations = [];
    for (let i = 0; i < 10; i++) durations.push(await openFor());
    expect(durations).toEqual([10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 80_000, 80_000]);
    jitter = 0.5; // up to 10 % of the duration is added
    expect(await openFor()).toBe(80_000 + 4_000);
  });
});

describe('every attempt is recorded exactly once', () => {
  const outcomes: [string, Scripted, string][] = [
    ['ok', ok, 'ok'],
    ['a client fault', fail(400, {}, '{"error":{"message":"bad","type":"invalid_request_error","code":null}}'), 'client_fault'],
    ['a server error', fail(503), 'server_error'],
    ['a connect error', { error: 'ECONNREFUSED' }, 'connect'],
    ['a timeout', 'hang', 'timeout'],
    ['an internal error', { error: 'EMFILE' }, 'internal'],
  ];
  it.each(outcomes)('%s: in-flight back to 0, one attempt counted per try', async (_label, step, result) => {
    const rig = loopRig(upstream({ endpoints: 1, retry: { maxAttempts: 1 }, timeouts: { firstByte: '1s', response: '1s' } }), () => step);
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(2_000);
    const r = settle(await p);
    if (r.kind === 'answer') r.attempt.settle({ kind: 'ok' }); // a second settle is a no-op
    expect(rig.endpoint('e0').inflight).toBe(0);
    expect(rig.dispatchers.get('e0')!.calls).toBe(1);
    expect(attemptsOf(r)).toBe(1);
    expect(await rig.attemptCounts()).toEqual({ [result]: 1 });
  });

  it('the app going away mid-attempt is recorded as nothing and frees the attempt', async () => {
    const rig = loopRig(upstream({ endpoints: 1 }), () => 'hang');
    const app = new AbortController();
    const p = rig.run({ appSignal: app.signal });
    await vi.advanceTimersByTimeAsync(100);
    app.abort();
    expect(await p).toEqual({ kind: 'cancelled' });
    expect(rig.endpoint('e0').inflight).toBe(0);
    expect(rig.endpoint('e0').breaker.window().fires).toBe(0);
  });

  it('a body rewrite that throws settles its attempt as internal: in-flight back to 0 and the half-open trial slot freed', async () => {
    let healthy = false;
    const rig = loopRig(
      upstream({ endpoints: 1, each: { models: { 'gpt-4.1': 'gpt-4.1-deployment' } }, breaker: { openDuration: '1s', consecutiveFailures: 1, halfOpenRamp: [1] } }),
      () => (healthy ? ok : fail(503)),
    );
    const first = rig.run();
    await vi.advanceTimersByTimeAsync(1);
    await first;
    await vi.advanceTimersByTimeAsync(1_000); // half-open, one trial slot
    const poisoned: Record<string, unknown> = { model: 'gpt-4.1' };
    Object.defineProperty(poisoned, 'messages', { enumerable: true, get: () => { throw new Error('rewrite blew up'); } });
    const r = await rig.run({ json: poisoned });
    expect(r).toMatchObject({ kind: 'refused', error: 'internal', attempts: 1 });
    expect(rig.endpoint('e0').inflight).toBe(0);
    // the slot the throwing attempt took is free again: the next request is admitted as the trial
    healthy = true;
    const next = settle(await rig.run());
    expect(next.kind).toBe('answer');
    expect(rig.endpoint('e0').breaker.state.kind).toBe('closed');
  });
});
