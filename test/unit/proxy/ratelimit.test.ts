// Client-side rate limits on virtual time: the sliding window never lets more than its limit
// through in any window, room comes back as the minute slides, reservations are reconciled with
// the provider's usage (and returned sensibly when an attempt fails), a reload keeps what was
// spent, and the providers' rate-limit headers are read and mirrored so Breakwater slows down
// before a 429. Then the same through the gate and the attempt loop: a busy endpoint is skipped,
// never charged, and a request no endpoint has room for is a 429 rate_limited with its wait.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Answer } from '../../../src/proxy/attempt.ts';
import { EndpointGate } from '../../../src/proxy/gate.ts';
import { parseResetDuration, parseResetTime, readReports } from '../../../src/proxy/provider-limits.ts';
import {
  DEFAULT_OUTPUT_TOKENS,
  estimateOutputTokens,
  estimatePromptTokens,
  RateLimiter,
  SLOTS,
  WINDOW_MS,
  type Cost,
} from '../../../src/proxy/ratelimit.ts';
import { manualClock } from '../../support/clock.ts';
import { loopRig, ok, seeded, settle, upstream } from '../../support/loop.ts';
import type { BreakerConfig } from '../../../src/config/runtime.ts';
import { Readiness } from '../../../src/admin/readiness.ts';
import { systemClock } from '../../../src/clock.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const T0 = 1_700_000_000_000;
const SLOT = WINDOW_MS / SLOTS;
const BREAKER: BreakerConfig = {
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  consecutiveFailures: 5,
  key: 'test',
  rollingWindowMs: 30_000,
  openDurationMs: 30_000,
  halfOpenRamp: [1, 5, 10],
  failOn: new Set(['throttled', 'server_error', 'timeout', 'connect', 'invalid_response']),
};
const cost = (estimatedTokens: number, estimatedPromptTokens = 0): Cost => ({ estimatedTokens, estimatedPromptTokens });

/** admits whatever fits at each time, as the gate does; returns the admission times */
function drive(limiter: RateLimiter, times: readonly number[], c: Cost = cost(1)): number[] {
  const admitted: number[] = [];
  for (const t of times) {
    if (limiter.availableAt(c, t) <= t) {
      limiter.take(c, t);
      admitted.push(t);
    }
  }
  return admitted;
}

/** the most admissions inside any window of `windowMs` (each window starting at an admission) */
function peakInWindow(times: readonly number[], windowMs: number): number {
  let peak = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= windowMs) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

describe('the requests window', () => {
  it('never admits more than requestsPerMinute in any 60-second window, under traffic at 2x the limit for five minutes', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 100, tokensPerMinute: undefined });
    const random = seeded(7);
    const times: number[] = [];
    // 200 a minute on average, in random bursts
    for (let t = T0; t < T0 + 5 * WINDOW_MS; t += random() * 600) times.push(Math.round(t));
    const admitted = drive(limiter, times);
    expect(peakInWindow(admitted, WINDOW_MS)).toBeLessThanOrEqual(100);
    // and it is not starving the endpoint either: close to the limit every minute
    expect(admitted.length).toBeGreaterThanOrEqual(5 * 100 - 100);
  });

  it('lets a burst of the whole limit through, then gives room back as the burst leaves the window, not all at once', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 10, tokensPerMinute: undefined });
    expect(drive(limiter, Array.from({ length: 10 }, (_, i) => T0 + i * 1000))).toHaveLength(10);
    const now = T0 + 10_000;
    // full: the first request's slot leaves the window a minute (and at most one slot) after it
    const at = limiter.availableAt(cost(1), now);
    expect(at).toBeGreaterThanOrEqual(T0 + WINDOW_MS);
    expect(at).toBeLessThanOrEqual(T0 + WINDOW_MS + SLOT);
    expect(limiter.availableAt(cost(1), at)).toBe(at);
    expect(drive(limiter, [at, at])).toEqual([at]); // one left the window, one fits
    expect(limiter.available('requests', T0 + WINDOW_MS + 5_000 + SLOT)).toBe(5); // five more have left by then
  });
});

describe('the tokens window and its reservations', () => {
  const limits = { requestsPerMinute: undefined, tokensPerMinute: 1000 };

  it('holds a request back until its estimate fits, and reconciling with the reported usage makes exactly the unused part room again', () => {
    const limiter = new RateLimiter(limits);
    const r1 = limiter.take(cost(700, 100), T0);
    expect(limiter.availableAt(cost(301), T0)).toBeGreaterThan(T0); // 700 + 301 > 1000
    expect(limiter.availableAt(cost(300), T0)).toBe(T0);
    r1.settle({ kind: 'ok' }, 250, T0 + 10); // the provider reported 250 in all
    expect(limiter.available('tokens', T0 + 10)).toBe(750);
    expect(limiter.availableAt(cost(750), T0 + 10)).toBe(T0 + 10);
    expect(limiter.availableAt(cost(751), T0 + 10)).toBeGreaterThan(T0 + 10);
  });

  it('counts a usage above the estimate, and settles a reservation once', () => {
    const limiter = new RateLimiter(limits);
    const r = limiter.take(cost(100), T0);
    r.settle({ kind: 'ok' }, 400, T0);
    r.settle({ kind: 'ok' }, 10, T0);
    expect(limiter.available('tokens', T0)).toBe(600);
  });

  it('returns everything, the request too, for an attempt the provider never saw (connect failure)', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 5, tokensPerMinute: 1000 });
    limiter.take(cost(300, 50), T0).settle({ kind: 'connect', code: 'ECONNREFUSED' }, undefined, T0 + 5);
    expect(limiter.available('tokens', T0 + 5)).toBe(1000);
    expect(limiter.available('requests', T0 + 5)).toBe(5);
  });

  it('keeps everything for a connection that broke after it may have been sent (reset)', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 5, tokensPerMinute: 1000 });
    limiter.take(cost(300, 50), T0).settle({ kind: 'connect', code: 'ECONNRESET' }, undefined, T0 + 5);
    expect(limiter.available('tokens', T0 + 5)).toBe(700);
    expect(limiter.available('requests', T0 + 5)).toBe(4);
  });

  it('keeps the prompt counted and returns the output part for an error answer without usage (a 429 or 503 generated nothing)', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 5, tokensPerMinute: 1000 });
    const r = limiter.take(cost(300, 50), T0);
    r.observe({}, T0 + 1, T0 + 1); // headers arrived: the provider saw it
    r.settle({ kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: undefined }, undefined, T0 + 5);
    expect(limiter.available('tokens', T0 + 5)).toBe(950);
    expect(limiter.available('requests', T0 + 5)).toBe(4); // providers count refused requests too
  });

  it('keeps the whole estimate for an answer that never reported usage (a stream without include_usage, a timeout)', () => {
    const limiter = new RateLimiter(limits);
    const r = limiter.take(cost(300, 50), T0);
    r.observe({}, T0 + 1, T0 + 1);
    r.settle({ kind: 'timeout', phase: 'idle' }, undefined, T0 + 5);
    expect(limiter.available('tokens', T0 + 5)).toBe(700);
  });

  it('waits for an empty window for a request larger than the whole limit, instead of starving it', () => {
    const limiter = new RateLimiter(limits);
    limiter.take(cost(10), T0);
    const at = limiter.availableAt(cost(5000), T0 + 1);
    expect(at).toBeGreaterThan(T0 + WINDOW_MS - 1);
    expect(at).toBeLessThanOrEqual(T0 + WINDOW_MS + SLOT);
    expect(limiter.availableAt(cost(5000), at)).toBe(at);
  });

  it('a reconciliation after the slot has left the window changes nothing', () => {
    const limiter = new RateLimiter(limits);
    const r = limiter.take(cost(900), T0);
    const later = T0 + 2 * WINDOW_MS;
    limiter.take(cost(500), later);
    r.settle({ kind: 'ok' }, 10, later);
    expect(limiter.available('tokens', later)).toBe(500);
  });
});

describe('reconfiguring a limit', () => {
  it('keeps what the last minute spent and applies the new limit to it at once', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 10, tokensPerMinute: undefined });
    drive(limiter, Array.from({ length: 6 }, () => T0));
    limiter.reconfigure({ requestsPerMinute: 4, tokensPerMinute: undefined });
    expect(limiter.availableAt(cost(1), T0 + 1)).toBeGreaterThan(T0 + 1);
    limiter.reconfigure({ requestsPerMinute: 20, tokensPerMinute: undefined });
    expect(limiter.available('requests', T0 + 1)).toBe(14);
    limiter.reconfigure({ requestsPerMinute: undefined, tokensPerMinute: 100 });
    expect(limiter.available('requests', T0 + 1)).toBeUndefined();
    expect(limiter.available('tokens', T0 + 1)).toBe(100); // a limit that is added starts empty
  });
});

describe('estimates', () => {
  it('estimates the prompt at four bytes a token and the output from the request\'s own cap', () => {
    expect(estimatePromptTokens(0)).toBe(0);
    expect(estimatePromptTokens(401)).toBe(101);
    expect(estimateOutputTokens({ maxTokens: 50, n: undefined }, 'generation')).toBe(50);
    expect(estimateOutputTokens({ maxTokens: 70, n: 1 }, 'generation')).toBe(70);
    expect(estimateOutputTokens({ maxTokens: 89.5, n: undefined }, 'generation')).toBe(90);
    expect(estimateOutputTokens({ maxTokens: 50, n: 3 }, 'generation')).toBe(150);
    expect(estimateOutputTokens({ maxTokens: undefined, n: undefined }, 'generation')).toBe(DEFAULT_OUTPUT_TOKENS);
    expect(estimateOutputTokens(undefined, 'generation')).toBe(DEFAULT_OUTPUT_TOKENS);
    expect(estimateOutputTokens({ maxTokens: 50, n: undefined }, 'embeddings')).toBe(0);
  });
});

describe('provider rate-limit headers', () => {
  it('reads OpenAI reset durations', () => {
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('20ms')).toBe(20);
    expect(parseResetDuration('1m30.5s')).toBe(90_500);
    expect(parseResetDuration('0.25s')).toBe(250);
    expect(parseResetDuration('1h2m')).toBe(3_720_000);
    for (const bad of ['', 'soon', '10', '1x', '5s later', '-1s']) expect(parseResetDuration(bad)).toBeUndefined();
  });

  it('reads Anthropic reset times (RFC 3339) relative to the wall clock', () => {
    const wall = Date.parse('2026-01-01T00:00:00Z');
    expect(parseResetTime('2026-01-01T00:00:05Z', wall)).toBe(5000);
    expect(parseResetTime('2026-01-01T00:00:00.250+00:00', wall)).toBe(250);
    expect(parseResetTime('2025-12-31T23:59:00Z', wall)).toBe(0);
    expect(parseResetTime('tomorrow', wall)).toBeUndefined();
  });

  it('finds each reported limit in OpenAI and Anthropic headers, and ignores what it cannot read', () => {
    const wall = Date.parse('2026-01-01T00:00:00Z');
    expect(
      readReports(
        {
          'x-ratelimit-limit-requests': '60',
          'x-ratelimit-remaining-requests': '59',
          'x-ratelimit-reset-requests': '1s',
          'x-ratelimit-remaining-tokens': '149984',
          'x-ratelimit-reset-tokens': '6ms',
        },
        wall,
      ),
    ).toEqual([
      { bucket: 'requests', remaining: 59, resetMs: 1000, limit: 60 },
      { bucket: 'tokens', remaining: 149984, resetMs: 6, limit: undefined },
    ]);
    expect(
      readReports(
        {
          'anthropic-ratelimit-requests-limit': '50',
          'anthropic-ratelimit-requests-remaining': '49',
          'anthropic-ratelimit-requests-reset': '2026-01-01T00:00:01Z',
          'anthropic-ratelimit-input-tokens-limit': '30000',
          'anthropic-ratelimit-input-tokens-remaining': '29000',
          'anthropic-ratelimit-input-tokens-reset': '2026-01-01T00:00:02Z',
          'anthropic-ratelimit-output-tokens-remaining': 'lots',
          'anthropic-ratelimit-output-tokens-reset': '2026-01-01T00:00:02Z',
          'anthropic-ratelimit-tokens-remaining': '9000',
          'anthropic-ratelimit-tokens-reset': 'whenever',
        },
        wall,
      ),
    ).toEqual([
      { bucket: 'requests', remaining: 49, resetMs: 1000, limit: 50 },
      { bucket: 'input', remaining: 29000, resetMs: 2000, limit: 30000 },
    ]);
  });

  it('holds the endpoint when the provider says nothing is left, and gives room back at the provider\'s own refill rate', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1000, tokensPerMinute: undefined });
    const r = limiter.take(cost(1), T0);
    // 0 of 60 left, whole again in 1 s: one request every 1000/60 ms
    r.observe({ 'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' }, T0 + 10, T0 + 10);
    expect(limiter.availableAt(cost(1), T0 + 10)).toBeCloseTo(T0 + 10 + 1000 / 60, 6);
    expect(limiter.available('requests', T0 + 10 + 500)).toBe(30);
    expect(limiter.availableAt(cost(1), T0 + 10 + 1000)).toBe(T0 + 10 + 1000); // whole again: the report is forgotten
  });

  it('without a limit header, holds until the reset once what is left is spent', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1000, tokensPerMinute: undefined });
    const r = limiter.take(cost(1), T0);
    r.observe({ 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '2s' }, T0, T0);
    expect(drive(limiter, [T0 + 1, T0 + 2, T0 + 3])).toEqual([T0 + 1, T0 + 2]);
    expect(limiter.availableAt(cost(1), T0 + 3)).toBe(T0 + 2000);
  });

  it('subtracts what Breakwater admitted after the reported request, which the provider may not have counted yet', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1000, tokensPerMinute: undefined });
    const first = limiter.take(cost(1), T0);
    limiter.take(cost(1), T0);
    limiter.take(cost(1), T0);
    // the answer to the first says 3 left: the two sent after it may not be in that count
    first.observe({ 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-reset-requests': '10s' }, T0 + 5, T0 + 5);
    expect(limiter.available('requests', T0 + 5)).toBe(1);
  });

  it('applies the token limits to the request\'s estimate: Anthropic input tokens to the prompt, output tokens to the output cap', () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1000, tokensPerMinute: undefined });
    const wall = Date.parse('2026-01-01T00:00:00Z');
    const r = limiter.take(cost(1), T0);
    r.observe(
      {
        'anthropic-ratelimit-input-tokens-remaining': '500',
        'anthropic-ratelimit-input-tokens-reset': '2026-01-01T00:00:30Z',
        'anthropic-ratelimit-output-tokens-remaining': '100',
        'anthropic-ratelimit-output-tokens-reset': '2026-01-01T00:00:10Z',
      },
      T0,
      wall,
    );
    expect(limiter.availableAt(cost(600, 500), T0)).toBe(T0); // 500 in, 100 out: fits both
    expect(limiter.availableAt(cost(601, 500), T0)).toBe(T0 + 10_000); // 101 out: waits for the output reset
    expect(limiter.availableAt(cost(601, 501), T0)).toBe(T0 + 30_000); // 501 in: waits for the input reset
  });
});

describe('through the gate', () => {
  const clock = manualClock(T0);
  const gates: EndpointGate[] = [];
  afterEach(() => {
    for (const g of gates.splice(0)) g.dispose();
  });
  function gate(rateLimit: { requestsPerMinute?: number; tokensPerMinute?: number } | undefined): EndpointGate {
    const g = new EndpointGate(BREAKER, clock, () => undefined, () => 0);
    g.rateLimit(rateLimit && { requestsPerMinute: rateLimit.requestsPerMinute, tokensPerMinute: rateLimit.tokensPerMinute });
    gates.push(g);
    return g;
  }

  it('reports a full endpoint as busy (rate_limit) with the time room returns, and never charges the breaker', () => {
    const g = gate({ requestsPerMinute: 1 });
    const now = clock.now();
    const a = g.take('m', now, cost(1));
    expect(a.admitted && a.reservation !== undefined).toBe(true);
    const busy = g.peek('m', now);
    expect(busy).toMatchObject({ kind: 'busy', reason: 'rate_limit' });
    expect((busy as { at: number }).at).toBeGreaterThanOrEqual(now + WINDOW_MS);
    expect(g.take('m', now)).toMatchObject({ admitted: false, availability: { kind: 'busy' } });
    expect(g.breaker.state.kind).toBe('closed');
    expect(g.breaker.window().fires).toBe(0);
  });

  it('an open breaker and a provider hold are reported before busy', () => {
    const g = gate({ requestsPerMinute: 1 });
    const now = clock.now();
    g.take('m', now, cost(1));
    g.record(
      { epoch: 0, trial: false },
      { kind: 'server_error', status: 503, retryAfterMs: 5000 },
      'm',
      { maxRetryAfterMs: 60_000, respectRetryAfter: true, currentKey: true },
    );
    expect(g.peek('m', now).kind).toBe('held');
    g.breaker.forceOpen();
    expect(g.peek('m', now).kind).toBe('open');
  });

  it('an endpoint without a rateLimit has no limiter and is never busy', () => {
    const g = gate(undefined);
    expect(g.limiter).toBeUndefined();
    for (let i = 0; i < 100; i++) expect(g.take('m', clock.now(), cost(1e9)).admitted).toBe(true);
  });
});

describe('through the attempt loop', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });


  it('skips an endpoint without room (failover, no attempt spent on it) and answers 429 rate_limited with the wait when none has room', async () => {
    const rig = loopRig(upstream({ endpoints: 2, each: { rateLimit: { requestsPerMinute: 2 } } }), () => ok);
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = settle(await rig.run());
      expect(r.kind).toBe('answer');
      served.push((r as Answer).attempt.endpoint.name);
      expect((r as Answer).attempts).toBe(1);
    }
    expect(served).toEqual(['e0', 'e0', 'e1', 'e1']);
    const refused = await rig.run();
    expect(refused).toMatchObject({ kind: 'refused', error: 'rate_limited', attempts: 0, outcome: 'unavailable' });
    const wait = (refused as { retryAfterMs: number }).retryAfterMs;
    expect(wait).toBeGreaterThan(WINDOW_MS - 1);
    expect(wait).toBeLessThanOrEqual(WINDOW_MS + SLOT);
    expect(rig.endpoint('e0').breaker.state.kind).toBe('closed');
    // Breakwater's own capacity never makes the pod unready
    const readiness = new Readiness({ runtime: rig.runtime, clock: systemClock, log: silentLogger, metrics: createMetrics(), policy: 'breakers', unreadyAfterMs: 0 });
    expect(readiness.availability()[0]).toMatchObject({ available: true, availableEndpoints: 2, blocking: false });
    expect([rig.dispatchers.get('e0')!.calls, rig.dispatchers.get('e1')!.calls]).toEqual([2, 2]);
    // the minute slides: room again
    await vi.advanceTimersByTimeAsync(wait);
    expect(settle(await rig.run()).kind).toBe('answer');
  });

  it('reconciles with the usage in the answer: a JSON usage frees the rest of the reservation when the attempt settles', async () => {
    const usage = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }], usage: { prompt_tokens: 30, completion_tokens: 20 } });
    const rig = loopRig(upstream({ endpoints: 1, each: { rateLimit: { tokensPerMinute: 1000 } } }), () => ({ status: 200, body: usage, headers: { 'content-type': 'application/json' } }));
    const r = (await rig.run({ estimatedTokens: 900 })) as Answer;
    expect(r.kind).toBe('answer');
    const limiter = rig.endpoint('e0').gate.limiter!;
    expect(limiter.available('tokens', Date.now())).toBe(100);
    expect((await rig.run({ estimatedTokens: 101 })).kind).toBe('refused');
    // what commit does: the usage it relayed, then settle
    r.attempt.used(30, 20);
    r.attempt.settle(r.result.outcome);
    expect(limiter.available('tokens', Date.now())).toBe(950);
    expect(settle(await rig.run({ estimatedTokens: 950 })).kind).toBe('answer');
  });
});
