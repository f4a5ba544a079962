// Hedged attempts in the loop, on virtual time against scripted endpoints: a stalled attempt is
// hedged after `after`, the first to commit wins and the other is aborted and recorded as
// cancelled (never charged); a hedge that fails does not end the request; hedges draw from the
// retry budget, count as attempts and respect maxAttempts; off by default.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Answer } from '../../../src/proxy/attempt.ts';
import { fail, loopRig, ok, type Script, settle, upstream } from '../../support/loop.ts';

const T0 = 1_700_000_000_000;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});


const hedged = (extra: Record<string, unknown> = {}) =>
  upstream({ hedge: { after: '200ms' }, timeouts: { firstByte: '10s', response: '10s' }, ...extra });

describe('hedging', () => {
  it('hedges a stalled attempt after `after`: the hedge answers, the stalled attempt is aborted and not charged', async () => {
    const script: Script = (e) => (e === 'e0' ? 'hang' : { after: 50, then: ok });
    const rig = loopRig(hedged(), script);
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(199);
    expect(rig.dispatchers.get('e1')!.calls).toBe(0);
    await vi.advanceTimersByTimeAsync(60);
    const r = settle(await p);
    expect(r).toMatchObject({ kind: 'answer', attempts: 2 });
    expect((r as Answer).attempt.endpoint.name).toBe('e1');
    await vi.advanceTimersByTimeAsync(0);
    expect(rig.dispatchers.get('e0')!.inflight).toBe(0); // the stalled request was aborted
    expect(rig.endpoint('e0').inflight).toBe(0);
    expect(rig.endpoint('e0').breaker.window().failures).toBe(0);
    expect(rig.endpoint('e0').breaker.state.kind).toBe('closed');
    expect(await rig.attemptCounts()).toEqual({ ok: 1, cancelled: 1 });
  });

  it('lets the original win when it commits first: the hedge is cancelled', async () => {
    const rig = loopRig(hedged(), (e) => (e === 'e0' ? { after: 300, then: ok } : 'hang'));
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(310);
    const r = settle(await p);
    expect((r as Answer).attempt.endpoint.name).toBe('e0');
    expect(r).toMatchObject({ attempts: 2 });
    await vi.advanceTimersByTimeAsync(0);
    expect(rig.dispatchers.get('e1')).toMatchObject({ calls: 1, inflight: 0 });
    expect(rig.endpoint('e1').breaker.window().failures).toBe(0);
    expect(await rig.attemptCounts()).toEqual({ ok: 1, cancelled: 1 });
  });

  it('does not end the request when a hedge fails while the original is still running', async () => {
    const rig = loopRig(hedged(), (e) => (e === 'e0' ? { after: 400, then: ok } : fail(500)));
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(410);
    const r = settle(await p);
    expect(r).toMatchObject({ kind: 'answer', attempts: 2 });
    expect((r as Answer).attempt.endpoint.name).toBe('e0');
    // the hedge's own failure is a real one, charged to its endpoint
    expect(await rig.attemptCounts()).toEqual({ ok: 1, server_error: 1 });
  });

  it('stops hedging when the retry budget is spent', async () => {
    // ratio 0: only the reserve, which holds one token at 0.1/s
    const rig = loopRig(hedged({ retry: { budget: { ratio: 0, minPerSecond: 0.1 } } }), (e) => (e === 'e0' ? { after: 300, then: ok } : { after: 50, then: ok }));
    const first = rig.run();
    await vi.advanceTimersByTimeAsync(260);
    expect(settle(await first)).toMatchObject({ kind: 'answer', attempts: 2 });
    for (let i = 0; i < 3; i++) {
      const next = rig.run();
      await vi.advanceTimersByTimeAsync(310);
      const r = settle(await next);
      expect(r).toMatchObject({ kind: 'answer', attempts: 1 });
      expect((r as Answer).attempt.endpoint.name).toBe('e0');
    }
    expect(rig.dispatchers.get('e1')!.calls).toBe(1);
  });

  it('starts at most maxExtra hedges, each `after` apart, and never beyond maxAttempts', async () => {
    const rig = loopRig(hedged({ endpoints: 4, hedge: { after: '100ms', maxExtra: 3 }, retry: { maxAttempts: 3 } }), (e) => (e === 'e3' ? ok : 'hang'));
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(150);
    expect(rig.dispatchers.get('e1')!.calls).toBe(1);
    expect(rig.dispatchers.get('e2')!.calls).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(rig.dispatchers.get('e2')!.calls).toBe(1);
    expect(rig.dispatchers.get('e3')!.calls).toBe(0); // maxAttempts 3: the original and two hedges
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await p).kind).not.toBe('answer');
  });

  it('ends the race at once when the app goes away: every attempt is cancelled, none charged', async () => {
    const rig = loopRig(hedged(), () => 'hang');
    const app = new AbortController();
    const p = rig.run({ appSignal: app.signal });
    await vi.advanceTimersByTimeAsync(250);
    expect(rig.dispatchers.get('e1')!.calls).toBe(1);
    app.abort();
    expect(await p).toEqual({ kind: 'cancelled' });
    await vi.advanceTimersByTimeAsync(0);
    for (const name of ['e0', 'e1']) {
      expect(rig.endpoint(name).inflight).toBe(0);
      expect(rig.dispatchers.get(name)!.inflight).toBe(0);
      expect(rig.endpoint(name).breaker.window().failures).toBe(0);
    }
    expect(await rig.attemptCounts()).toEqual({ cancelled: 1 }); // keyed by result only: e0's and e1's series each read 1
  });

  it('is off by default: a stalled attempt waits for its own timeout', async () => {
    const rig = loopRig(upstream({ timeouts: { firstByte: '1s', response: '1s' }, retry: { maxAttempts: 1 } }), (e) => (e === 'e0' ? 'hang' : ok));
    const p = rig.run();
    await vi.advanceTimersByTimeAsync(1_100);
    expect(await p).toMatchObject({ kind: 'refused', error: 'upstream_timeout', attempts: 1 });
    expect(rig.dispatchers.get('e1')!.calls).toBe(0);
  });
});
