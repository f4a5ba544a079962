// The attempt's one timer (phase and deadline in one) on virtual time, and the Exchange's
// backpressure: while no sink is attached or the sink says the app is full, the provider's side
// (undici's dispatch controller) is paused; an abort reaches the sink as an error.
import { gzipSync } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { Attempt } from '../../../src/proxy/forward.ts';
import { collect, Exchange, type Sink } from '../../../src/proxy/wire.ts';
import { loopRig, ok, upstream } from '../../support/loop.ts';

const T0 = 1_700_000_000_000;

describe('the attempt timer, on virtual time', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function attemptWithDeadline(inMs: number): Attempt {
    const rig = loopRig(upstream({ endpoints: 1 }), () => ok);
    const endpoint = rig.endpoint('e0');
    const admission = endpoint.gate.take(undefined, systemClock.now());
    if (!admission.admitted) throw new Error('not admitted');
    const ctx = { requestId: 'r', retry: { maxRetryAfterMs: 60_000, respectRetryAfter: true } };
    return new Attempt(endpoint, endpoint.config, admission.ticket, undefined, ctx, systemClock, systemClock.now() + inMs, new AbortController().signal);
  }

  it('cuts a phase that ends before the deadline as that phase\'s timeout', async () => {
    const a = attemptWithDeadline(5_000);
    a.arm('firstByte', 1_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(a.cause).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.cause).toEqual({ kind: 'timeout', phase: 'firstByte' });
    a.settle({ kind: 'timeout', phase: 'firstByte' });
  });

  it('cuts a phase that would outlast the deadline at the deadline, as the deadline', async () => {
    const a = attemptWithDeadline(3_000);
    a.arm('response', 10_000);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(a.cause).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.cause).toEqual({ kind: 'cancelled', reason: 'deadline' });
    a.settle({ kind: 'cancelled', reason: 'deadline' });
  });

  it('keeps an idle phase alive while events come, and still ends it at the deadline', async () => {
    const a = attemptWithDeadline(2_500);
    a.arm('idle', 1_000);
    for (let t = 0; t < 2_000; t += 500) {
      await vi.advanceTimersByTimeAsync(500);
      a.touch();
    }
    expect(a.cause).toBeUndefined(); // 2 s in, idle never passed 1 s
    await vi.advanceTimersByTimeAsync(499);
    expect(a.cause).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.cause).toEqual({ kind: 'cancelled', reason: 'deadline' });
    a.settle({ kind: 'cancelled', reason: 'deadline' });
  });

  it('a stream whose events stop is cut by its idle timer, not the deadline', async () => {
    const a = attemptWithDeadline(60_000);
    a.arm('idle', 1_000);
    await vi.advanceTimersByTimeAsync(500);
    a.touch();
    await vi.advanceTimersByTimeAsync(999);
    expect(a.cause).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.cause).toEqual({ kind: 'timeout', phase: 'idle' });
    a.settle({ kind: 'timeout', phase: 'idle' });
  });

  it('while disarmed (the app is not reading) only the deadline runs', async () => {
    const a = attemptWithDeadline(4_000);
    a.arm('idle', 100);
    a.disarm();
    await vi.advanceTimersByTimeAsync(3_999);
    expect(a.cause).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.cause).toEqual({ kind: 'cancelled', reason: 'deadline' });
    a.settle({ kind: 'cancelled', reason: 'deadline' });
  });

  it('a settled attempt leaves no timer behind', async () => {
    const a = attemptWithDeadline(1_000);
    a.arm('firstByte', 500);
    const live = vi.getTimerCount(); // the attempt's one timer, and the breaker window's own
    a.settle({ kind: 'ok' });
    expect(vi.getTimerCount()).toBe(live - 1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.cause).toBeUndefined();
  });
});

/** a dispatcher that hands the exchange a controller and lets the test play undici's part */
function playedDispatch() {
  const state = { paused: false, aborted: null as Error | null, handler: undefined as Dispatcher.DispatchHandler | undefined };
  const controller: Dispatcher.DispatchController = {
    get aborted() {
      return state.aborted !== null;
    },
    get paused() {
      return state.paused;
    },
    get reason() {
      return state.aborted;
    },
    abort(reason: Error) {
      state.aborted = reason;
      state.handler?.onResponseError?.(controller, reason);
    },
    pause() {
      state.paused = true;
    },
    resume() {
      state.paused = false;
    },
  };
  const dispatcher = {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      state.handler = handler;
      handler.onRequestStart?.(controller, {});
      return true;
    },
  };
  return { state, controller, dispatcher, handler: () => state.handler! };
}

const OPTIONS = { origin: 'http://127.0.0.1:9', path: '/v1/x', method: 'POST' as const };

describe('the Exchange', () => {
  it('pauses the provider until a sink is attached, then delivers what arrived meanwhile, in order', async () => {
    const p = playedDispatch();
    const ex = new Exchange();
    const started = ex.start(p.dispatcher, OPTIONS);
    p.handler().onResponseStart?.(p.controller, 200, { 'content-type': 'text/event-stream' });
    await started;
    expect(ex.status).toBe(200);
    expect(p.state.paused).toBe(true);
    p.handler().onResponseData?.(p.controller, Buffer.from('a'));
    const got: string[] = [];
    ex.attach({ data: (c) => got.push(c.toString()), end: () => got.push('END'), error: () => got.push('ERR') });
    expect(got).toEqual(['a']);
    expect(p.state.paused).toBe(false);
    p.handler().onResponseData?.(p.controller, Buffer.from('b'));
    p.handler().onResponseEnd?.(p.controller, {});
    expect(got).toEqual(['a', 'b', 'END']);
  });

  it('a sink that says the app is full pauses the provider, and resumes it when the app drains', async () => {
    const p = playedDispatch();
    const ex = new Exchange();
    const started = ex.start(p.dispatcher, OPTIONS);
    p.handler().onResponseStart?.(p.controller, 200, {});
    await started;
    ex.attach({ data: () => ex.pause(), end: () => undefined, error: () => undefined });
    expect(p.state.paused).toBe(false);
    p.handler().onResponseData?.(p.controller, Buffer.from('x'));
    expect(p.state.paused).toBe(true);
    ex.resume();
    expect(p.state.paused).toBe(false);
    ex.detach();
    expect(p.state.paused).toBe(true);
  });

  it('an abort before the headers rejects the start at once; after them it reaches the sink as an error', async () => {
    const p = playedDispatch();
    const ex = new Exchange();
    const started = ex.start(p.dispatcher, OPTIONS);
    ex.abort(new Error('deadline'));
    await expect(started).rejects.toThrow('deadline');

    const q = playedDispatch();
    const ex2 = new Exchange();
    const started2 = ex2.start(q.dispatcher, OPTIONS);
    q.handler().onResponseStart?.(q.controller, 200, {});
    await started2;
    const seen: string[] = [];
    const sink: Sink = { data: () => seen.push('data'), end: () => seen.push('end'), error: (e) => seen.push(`error: ${e.message}`) };
    ex2.attach(sink);
    ex2.abort(new Error('idle'));
    expect(seen).toEqual(['error: idle']);
  });

  it('collect() refuses a body over its limit and aborts the exchange', async () => {
    const p = playedDispatch();
    const ex = new Exchange();
    const started = ex.start(p.dispatcher, OPTIONS);
    p.handler().onResponseStart?.(p.controller, 200, {});
    await started;
    const body = collect(ex, 4);
    p.handler().onResponseData?.(p.controller, Buffer.from('12345'));
    await expect(body).rejects.toMatchObject({ code: 'BREAKWATER_RESPONSE_TOO_LARGE' });
    expect(p.state.aborted).not.toBeNull();
  });

  it('inflates a gzip stream on the way to the sink', async () => {
    const p = playedDispatch();
    const ex = new Exchange();
    const started = ex.start(p.dispatcher, OPTIONS);
    p.handler().onResponseStart?.(p.controller, 200, { 'content-encoding': 'gzip' });
    await started;
    const zipped = gzipSync(Buffer.from('data: {"x":1}\n\n'));
    const text = await new Promise<string>((resolve, reject) => {
      let out = '';
      ex.attach({ data: (c) => (out += c.toString()), end: () => resolve(out), error: reject }, 'gzip');
      p.handler().onResponseData?.(p.controller, zipped.subarray(0, 5));
      p.handler().onResponseData?.(p.controller, zipped.subarray(5));
      p.handler().onResponseEnd?.(p.controller, {});
    });
    expect(text).toBe('data: {"x":1}\n\n');
  });
});
