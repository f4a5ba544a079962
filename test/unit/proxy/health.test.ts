// Active health checks on virtual time (vitest's fake timers drive the system clock): only an open
// breaker is probed, on a jittered interval, with the endpoint's own key through its own pool; a
// 2xx moves it to half-open at once; failures, timeouts and held endpoints change nothing; probes
// stop when the breaker leaves open, when a reload turns them off or removes the endpoint, and on
// shutdown.
import type { Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret } from '../../../src/config/runtime.ts';
import type { EndpointRuntime } from '../../../src/proxy/endpoint.ts';
import { HEALTH_JITTER } from '../../../src/proxy/health.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { createLogger } from '../../../src/telemetry/log.ts';
import { createMetrics, type Metrics } from '../../../src/telemetry/metrics.ts';
import { upstream } from '../../support/loop.ts';
import { seeded } from '../../support/random.ts';

const T0 = 1_700_000_000_000;
const INTERVAL = 10_000;
const TIMEOUT = 2_000;
/** long enough that only a probe can explain a half-open breaker */
const OPEN = '30m';

type Answer = number | 'hang' | { error: string };

interface Seen {
  at: number;
  method: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal;
}

/** a pool that records every request and answers with `answer` (per endpoint, from the path's first segment) */
function recordingPool(seen: Seen[], answer: (endpoint: string) => Answer) {
  return {
    /** undici's handler protocol; an abort from the handler's side aborts `signal` (what the tests read) */
    dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const wire = new AbortController();
      const signal = wire.signal;
      let done = false;
      const controller = {
        aborted: false,
        paused: false,
        reason: null as Error | null,
        abort(reason: Error) {
          if (done || controller.aborted) return;
          controller.aborted = true;
          controller.reason = reason;
          wire.abort(reason);
          handler.onResponseError?.(controller, Object.assign(reason, { code: 'UND_ERR_ABORTED' }));
        },
        pause() {
          controller.paused = true;
        },
        resume() {
          controller.paused = false;
        },
      };
      seen.push({ at: Date.now(), method: options.method, origin: String(options.origin), path: options.path, headers: options.headers as Record<string, string>, body: options.body, signal });
      handler.onRequestStart?.(controller, {});
      const a = answer(options.path.split('/')[1] ?? '');
      if (a === 'hang') return true;
      queueMicrotask(() => {
        if (controller.aborted) return;
        if (typeof a === 'object') {
          done = true;
          handler.onResponseError?.(controller, Object.assign(new Error(a.error), { code: a.error }));
          return;
        }
        handler.onResponseStart?.(controller, a, { 'content-type': 'application/json' });
        handler.onResponseData?.(controller, Buffer.from('{"object":"list","data":[]}'));
        done = true;
        handler.onResponseEnd?.(controller, {});
      });
      return true;
    },
    close: () => Promise.resolve(),
  };
}

interface HealthRig {
  runtime: ProxyRuntime;
  metrics: Metrics;
  seen: Seen[];
  logs: Record<string, unknown>[];
  endpoint(name: string): EndpointRuntime;
  apply(spec?: Record<string, unknown>): void;
  /** probes sent to one endpoint (path's first segment) */
  probes(name: string): Seen[];
  results(endpoint: string): Promise<Record<string, number>>;
}

const healthOn = { enabled: true, interval: '10s', timeout: '2s' };

function healthRig(
  options: { spec?: Record<string, unknown>; answer?: (endpoint: string) => Answer; random?: () => number } = {},
): HealthRig {
  const seen: Seen[] = [];
  const logs: Record<string, unknown>[] = [];
  const metrics = createMetrics();
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } });
  const answer = options.answer ?? (() => 200);
  const runtime = new ProxyRuntime({ clock: systemClock, log, metrics, random: options.random ?? (() => 0), dispatcherFactory: () => recordingPool(seen, answer) });
  const apply = (spec: Record<string, unknown> = options.spec ?? {}) =>
    runtime.apply([compileUpstream(upstream({ breaker: { openDuration: OPEN }, healthCheck: healthOn, ...spec }), () => new Secret('sk-health'))], 'test');
  apply();
  return {
    runtime,
    metrics,
    seen,
    logs,
    apply,
    endpoint: (name) => runtime.snapshot!.upstreams.get('u')!.endpoints.find((e) => e.name === name)!,
    probes: (name) => seen.filter((s) => s.path.split('/')[1] === name),
    async results(endpoint) {
      const { values } = await metrics.healthChecks.get();
      return Object.fromEntries(values.filter((v) => v.labels.endpoint === endpoint && v.value > 0).map((v) => [String(v.labels.result), v.value]));
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('health checks: which endpoints are probed', () => {
  it('never probes a closed endpoint', async () => {
    const rig = healthRig();
    await vi.advanceTimersByTimeAsync(INTERVAL * 20);
    expect(rig.seen).toEqual([]);
    expect(rig.endpoint('e0').describe(Date.now()).healthCheck).toMatchObject({ nextProbeAt: null, last: null });
    // every result is exported at 0 from the start, so rate() works before the first probe
    const { values } = await rig.metrics.healthChecks.get();
    expect(values.filter((v) => v.labels.endpoint === 'e0').map((v) => [v.labels.result, v.value])).toEqual([['ok', 0], ['failed', 0], ['timeout', 0], ['error', 0]]);
  });

  it('exports no health check series for an upstream with health checks off', async () => {
    const rig = healthRig({ spec: { healthCheck: { enabled: false } } });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL * 20);
    expect(rig.seen).toEqual([]);
    expect((await rig.metrics.healthChecks.get()).values).toEqual([]);
    expect(rig.endpoint('e0').describe(Date.now()).healthCheck).toBeNull();
  });

  it('probes an open endpoint with GET <url>/models through its own pool, with its own key, headers and query, and no body', async () => {
    const rig = healthRig({
      spec: { endpoints: 2, each: { auth: { env: 'KEY' }, headers: { 'api-version': '2025-01-01' }, query: { 'api-version': '2025-01-01' } } },
      answer: () => 503,
    });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL * (1 + HEALTH_JITTER));
    expect(rig.probes('e1')).toEqual([]); // closed
    const [probe, ...more] = rig.probes('e0');
    expect(more).toEqual([]);
    expect(probe).toMatchObject({ method: 'GET', origin: 'http://127.0.0.1:9', path: '/e0/models?api-version=2025-01-01', body: undefined });
    expect(probe!.headers).toMatchObject({ authorization: 'Bearer sk-health', 'api-version': '2025-01-01' });
    expect(probe!.headers['anthropic-version']).toBeUndefined();
  });

  it('sends anthropic-version to an Anthropic upstream (the endpoint\'s own header wins) and uses the configured path', async () => {
    const rig = healthRig({ spec: { api: 'anthropic', endpoints: 2, healthCheck: { ...healthOn, path: 'health/ready' } }, answer: () => 503 });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL * (1 + HEALTH_JITTER));
    expect(rig.probes('e0')[0]).toMatchObject({ path: '/e0/health/ready' });
    expect(rig.probes('e0')[0]!.headers['anthropic-version']).toBe('2023-06-01');
    rig.apply({ api: 'anthropic', endpoints: 2, healthCheck: healthOn, each: { headers: { 'anthropic-version': '2099-01-01' } } });
    await vi.advanceTimersByTimeAsync(INTERVAL * (1 + HEALTH_JITTER));
    expect(rig.probes('e0').at(-1)).toMatchObject({ path: '/e0/models' });
    expect(rig.probes('e0').at(-1)!.headers['anthropic-version']).toBe('2099-01-01');
  });

  it('does not probe an endpoint held for an account error, and starts once the hold is over', async () => {
    const rig = healthRig({ answer: () => 503 });
    const e = rig.endpoint('e0');
    const admitted = e.breaker.admit();
    if (!admitted.admitted) throw new Error('closed breaker refused');
    e.record(admitted.ticket, { kind: 'account', status: 401, reason: 'invalid_api_key' }, undefined, { requestId: 'r', maxRetryAfterMs: 60_000, respectRetryAfter: true, authUsed: e.config.auth });
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(5 * 60_000 - 1); // ACCOUNT_HOLD_MS
    expect(rig.probes('e0')).toEqual([]);
    await vi.advanceTimersByTimeAsync(INTERVAL * (1 + HEALTH_JITTER) + 1);
    expect(rig.probes('e0').length).toBeGreaterThan(0);
  });

  it('does not probe while a provider\'s Retry-After holds the endpoint', async () => {
    const rig = healthRig({ answer: () => 503 });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    const admitted = { epoch: -1, trial: false }; // a stale ticket: only the hold is learnt
    e.record(admitted, { kind: 'server_error', status: 503, retryAfterMs: 60_000 }, undefined, { requestId: 'r', maxRetryAfterMs: 60_000, respectRetryAfter: true, authUsed: e.config.auth });
    await vi.advanceTimersByTimeAsync(60_000 - 1);
    expect(rig.probes('e0')).toEqual([]);
    await vi.advanceTimersByTimeAsync(INTERVAL * (1 + HEALTH_JITTER) + 1);
    expect(rig.probes('e0').length).toBeGreaterThan(0);
  });
});

describe('health checks: schedule', () => {
  it.each([0, 0.5, 0.999])('with random() = %s the first probe goes out at interval x (1 + 0.2 x random) after opening, and so does each next one', async (r) => {
    const rig = healthRig({ random: () => r, answer: () => 503 });
    rig.endpoint('e0').breaker.forceOpen();
    const gap = Math.round(INTERVAL * (1 + HEALTH_JITTER * r));
    expect(rig.endpoint('e0').describe(Date.now()).healthCheck?.nextProbeAt).toBe(Date.now() + gap);
    for (let n = 1; n <= 3; n++) {
      await vi.advanceTimersByTimeAsync(gap - 1);
      expect(rig.probes('e0')).toHaveLength(n - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(rig.probes('e0')).toHaveLength(n);
    }
  });

  it('with a seeded random the gaps stay within [interval, 1.2 x interval] and differ', async () => {
    const rig = healthRig({ random: seeded(7), answer: () => 503 });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL * 1.2 * 20);
    const at = rig.probes('e0').map((p) => p.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(18);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(INTERVAL);
      expect(g).toBeLessThanOrEqual(INTERVAL * (1 + HEALTH_JITTER));
    }
    expect(new Set(gaps).size).toBeGreaterThan(gaps.length / 2);
  });
});

describe('health checks: results', () => {
  it('a 2xx moves the open breaker to half-open at once, logs it at info, and probing stops', async () => {
    const rig = healthRig({ answer: () => 200 });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(e.breaker.state.kind).toBe('halfOpen');
    expect(await rig.results('e0')).toEqual({ ok: 1 });
    const line = rig.logs.find((l) => l.msg === 'breaker half-open');
    expect(line).toMatchObject({ level: 'info', upstream: 'u', endpoint: 'e0', from: 'open', to: 'halfOpen', reason: 'health check passed (GET models: 200)' });
    expect(e.describe(Date.now()).healthCheck).toMatchObject({ nextProbeAt: null, last: { result: 'ok', status: 200, at: T0 + INTERVAL } });
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(rig.probes('e0')).toHaveLength(1);
    // the ramp decides from here: its first step is one trial
    expect(e.gate.take(undefined, Date.now()).admitted).toBe(true);
    expect(e.gate.take(undefined, Date.now()).admitted).toBe(false);
  });

  it('a failed probe changes nothing: same open-until, probing goes on, counted as failed', async () => {
    const rig = healthRig({ answer: () => 503 });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    const before = e.breaker.state;
    await vi.advanceTimersByTimeAsync(INTERVAL * 3);
    expect(e.breaker.state).toBe(before);
    expect(await rig.results('e0')).toEqual({ failed: 3 });
    expect(e.describe(Date.now()).healthCheck?.last).toMatchObject({ result: 'failed', status: 503 });
    expect(rig.logs.filter((l) => l.msg === 'health check failed: breaker stays open')).toHaveLength(3);
  });

  it('a probe that has not answered within timeout is aborted and counted as timeout; the next still goes out', async () => {
    const rig = healthRig({ answer: () => 'hang' });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const [probe] = rig.probes('e0');
    await vi.advanceTimersByTimeAsync(TIMEOUT - 1);
    expect(probe!.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(probe!.signal.aborted).toBe(true);
    expect(await rig.results('e0')).toEqual({ timeout: 1 });
    expect(e.breaker.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(INTERVAL - TIMEOUT);
    expect(rig.probes('e0')).toHaveLength(2);
  });

  it('a connection error is counted as error and changes nothing', async () => {
    const rig = healthRig({ answer: () => ({ error: 'ECONNREFUSED' }) });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL * 2);
    expect(await rig.results('e0')).toEqual({ error: 2 });
    expect(rig.endpoint('e0').breaker.state.kind).toBe('open');
  });
});

describe('health checks: stopping', () => {
  it('stops when the breaker leaves open (operator reset), dropping the probe in flight', async () => {
    const rig = healthRig({ answer: () => 'hang' });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const [probe] = rig.probes('e0');
    e.resetByOperator();
    expect(probe!.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(rig.probes('e0')).toHaveLength(1);
    expect(await rig.results('e0')).toEqual({});
    expect(e.describe(Date.now()).healthCheck).toMatchObject({ nextProbeAt: null });
  });

  it('starts again when the breaker opens again after a failed half-open trial', async () => {
    const rig = healthRig({ answer: () => 200 });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(e.breaker.state.kind).toBe('halfOpen');
    const trial = e.gate.take(undefined, Date.now());
    if (!trial.admitted) throw new Error('no trial slot');
    e.record(trial.ticket, { kind: 'server_error', status: 500, retryAfterMs: undefined }, undefined, { requestId: 'r', maxRetryAfterMs: 60_000, respectRetryAfter: true, authUsed: e.config.auth });
    expect(e.breaker.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(rig.probes('e0')).toHaveLength(2);
    expect(e.breaker.state.kind).toBe('halfOpen');
  });

  it('a reload that turns health checks off stops them (the probe in flight too); turning them on again resumes', async () => {
    const rig = healthRig({ answer: () => 'hang' });
    const e = rig.endpoint('e0');
    e.breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const [probe] = rig.probes('e0');
    rig.apply({ healthCheck: { enabled: false } });
    expect(probe!.signal.aborted).toBe(true);
    expect(e.describe(Date.now()).healthCheck).toBeNull();
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(rig.probes('e0')).toHaveLength(1);
    expect(e.breaker.state.kind).toBe('open'); // untouched by the reload
    rig.apply();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(rig.probes('e0')).toHaveLength(2);
  });

  it('a reload with a new interval reschedules at the new cadence', async () => {
    const rig = healthRig({ answer: () => 503 });
    rig.endpoint('e0').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL / 2);
    rig.apply({ healthCheck: { ...healthOn, interval: '60s' } });
    await vi.advanceTimersByTimeAsync(60_000 - 1);
    expect(rig.probes('e0')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(rig.probes('e0')).toHaveLength(1);
  });

  it('an endpoint removed by a reload is never probed again', async () => {
    const rig = healthRig({ answer: () => 'hang' });
    rig.endpoint('e1').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const [probe] = rig.probes('e1');
    rig.apply({ endpoints: 1 });
    expect(probe!.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(rig.probes('e1')).toHaveLength(1);
  });

  it('shutdown (ProxyRuntime.close) stops every timer and probe', async () => {
    const rig = healthRig({ answer: () => 'hang' });
    rig.endpoint('e0').breaker.forceOpen();
    rig.endpoint('e1').breaker.forceOpen();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const inflight = rig.seen.slice();
    expect(inflight).toHaveLength(2);
    await rig.runtime.close();
    expect(inflight.every((p) => p.signal.aborted)).toBe(true);
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(rig.seen).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('Breaker.probePassed: the one entry point for "a health check says healthy"', () => {
  it('moves only an open breaker, not one a provider\'s Retry-After still holds, to the first ramp step', async () => {
    const rig = healthRig({ spec: { healthCheck: { enabled: false } } });
    const b = rig.endpoint('e0').breaker;
    expect(b.probePassed('test')).toBe(false); // closed
    b.forceOpen();
    b.hold(Date.now() + 60_000);
    expect(b.probePassed('test')).toBe(false); // the provider asked for quiet until then
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.probePassed('test')).toBe(true);
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 0, admitted: 0, succeeded: 0, since: Date.now() });
    expect(b.probePassed('test')).toBe(false); // half-open already
  });
});
