// The readiness policy on virtual time: a required upstream with every endpoint unavailable
// (breaker open or held) turns the pod unready after unreadyAfterMs, and one endpoint closed or
// half-open makes it ready at once. Optional upstreams and the local policy never tie it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Readiness, type ReadinessPolicy } from '../../../src/admin/readiness.ts';
import { systemClock } from '../../../src/clock.ts';
import { compileConfig } from '../../../src/config/compile.ts';
import { envOrFileAuth, parseYamlStream } from '../../../src/config/sources/file.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const YAML = `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: main }
spec:
  required: true
  endpoints:
    - { name: e1, url: "http://127.0.0.1:9/v1" }
    - { name: e2, url: "http://127.0.0.1:9/v2" }
  breaker: { openDuration: 30s }
---
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: side }
spec:
  endpoints:
    - { name: s1, url: "http://127.0.0.1:9/v3" }
`;

function setup(policy: ReadinessPolicy = 'breakers') {
  const metrics = createMetrics();
  const runtime = new ProxyRuntime({ clock: systemClock, log: silentLogger, metrics, random: () => 0 });
  const lines: { msg: string }[] = [];
  const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) } });
  const readiness = new Readiness({ runtime, clock: systemClock, log, metrics, policy, unreadyAfterMs: 10_000 });
  const config = compileConfig(parseYamlStream(YAML, 't.yaml'), envOrFileAuth, 'test', 0);
  const endpoint = (u: string, e: string) => runtime.snapshot!.upstreams.get(u)!.endpoints.find((x) => x.name === e)!;
  const said = () => lines.map((l) => l.msg).filter((m) => m.startsWith('readiness'));
  const gauge = async () => (await metrics.ready.get()).values[0]?.value;
  return { metrics, runtime, readiness, apply: () => runtime.apply([...config.upstreams.values()], 'test'), endpoint, said, gauge };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Readiness (breakers)', () => {
  it('is unready before the first config', async () => {
    const { readiness, apply, metrics } = setup();
    expect(readiness.evaluate()).toMatchObject({ ready: false, reason: 'no config loaded yet' });
    expect((await metrics.ready.get()).values[0]!.value).toBe(0);
    apply();
    expect(readiness.evaluate().ready).toBe(true);
    expect((await metrics.ready.get()).values[0]!.value).toBe(1);
  });

  it('turns unready only after every endpoint of a required upstream has been open for unreadyAfter', () => {
    const { readiness, apply, endpoint } = setup();
    apply();
    endpoint('main', 'e1').breaker.forceOpen('test');
    vi.advanceTimersByTime(5_000);
    endpoint('main', 'e2').breaker.forceOpen('test');
    // the upstream is out since e2 opened: 9.999 s later still ready
    vi.advanceTimersByTime(9_999);
    const waiting = readiness.evaluate();
    expect(waiting.ready).toBe(true);
    expect(waiting.reason).toMatch(/required upstream "main" has no available endpoint for 10\.0s; unready after 10\.0s/);
    vi.advanceTimersByTime(1);
    const v = readiness.evaluate();
    expect(v.ready).toBe(false);
    expect(v.reason).toBe('required upstream "main" has had no available endpoint for 10.0s (e1: breaker open (test), e2: breaker open (test))');
    // e1 half-opens 30 s after it opened: ready at once
    vi.advanceTimersByTime(30_000 - 15_000 - 1);
    expect(readiness.evaluate().ready).toBe(false);
    vi.advanceTimersByTime(1);
    expect(endpoint('main', 'e1').breaker.state.kind).toBe('halfOpen');
    expect(readiness.evaluate().ready).toBe(true);
  });

  it('counts an endpoint held for a provider Retry-After as unavailable', () => {
    const { readiness, apply, endpoint } = setup();
    apply();
    readiness.start(); // holds carry no start time: readiness notices them as they are set
    const e1 = endpoint('main', 'e1');
    const admitted = e1.gate.take(undefined, Date.now());
    if (!admitted.admitted) throw new Error('not admitted');
    e1.record(admitted.ticket, { kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: 60_000 }, undefined, { requestId: 'r', maxRetryAfterMs: 60_000, respectRetryAfter: true, authUsed: e1.config.auth });
    expect(e1.breaker.state.kind).toBe('closed');
    endpoint('main', 'e2').breaker.forceOpen('test');
    // noticed when set (the gate announces it), so unready exactly unreadyAfter later
    vi.advanceTimersByTime(10_000);
    const v = readiness.evaluate();
    expect(v.ready).toBe(false);
    expect(v.upstreams.find((u) => u.name === 'main')!.endpoints[0]).toMatchObject({ name: 'e1', available: false, why: 'held (throttled 429)' });
    // reset by an operator drops the hold
    e1.resetByOperator();
    expect(readiness.evaluate().ready).toBe(true);
    readiness.stop();
  });

  it('follows transitions without polling: the gauge and the log flip at unreadyAfter and back at half-open, nobody asking', async () => {
    const { readiness, apply, endpoint, said, gauge } = setup();
    const before = vi.getTimerCount();
    readiness.start();
    // no poll: starting adds no timer
    expect(vi.getTimerCount()).toBe(before);
    expect(await gauge()).toBe(0);
    apply(); // a config swap is an event
    expect(await gauge()).toBe(1);
    const timersWithConfig = vi.getTimerCount();
    endpoint('main', 'e1').breaker.forceOpen('test');
    vi.advanceTimersByTime(5_000);
    endpoint('main', 'e2').breaker.forceOpen('test');
    // the breakers' own timers (to half-open) plus one deadline: when the upstream reaches unreadyAfter
    expect(vi.getTimerCount()).toBe(timersWithConfig + 3);
    vi.advanceTimersByTime(9_999);
    expect(await gauge()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await gauge()).toBe(0);
    expect(said()).toEqual(['readiness: ready', 'readiness: unready']);
    // e1 half-opens 30 s after it opened (its transition is the event): ready at once
    vi.advanceTimersByTime(30_000 - 15_000);
    expect(endpoint('main', 'e1').breaker.state.kind).toBe('halfOpen');
    expect(await gauge()).toBe(1);
    expect(said()).toEqual(['readiness: ready', 'readiness: unready', 'readiness: ready']);
    readiness.stop();
  });

  it('follows a hold to its end with one timer, and stops following when stopped', async () => {
    const { readiness, apply, endpoint, said, gauge } = setup();
    apply();
    readiness.start();
    const e1 = endpoint('main', 'e1');
    const admitted = e1.gate.take(undefined, Date.now());
    if (!admitted.admitted) throw new Error('not admitted');
    // a 20 s Retry-After holds e1 (its breaker stays closed: no transition); e2's breaker is open for 30 s
    e1.record(admitted.ticket, { kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: 20_000 }, undefined, { requestId: 'r', maxRetryAfterMs: 60_000, respectRetryAfter: true, authUsed: e1.config.auth });
    expect(e1.breaker.state.kind).toBe('closed');
    endpoint('main', 'e2').breaker.forceOpen('test');
    vi.advanceTimersByTime(10_000);
    expect(await gauge()).toBe(0);
    // the hold ends at 20 s, with no event of its own: the deadline timer sees it, 10 s before e2 half-opens
    vi.advanceTimersByTime(9_999);
    expect(await gauge()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(await gauge()).toBe(1);
    expect(endpoint('main', 'e2').breaker.state.kind).toBe('open');
    expect(said()).toEqual(['readiness: unready', 'readiness: ready']);
    readiness.stop();
    e1.resetByOperator();
    endpoint('main', 'e2').breaker.forceOpen('test');
    endpoint('main', 'e1').breaker.forceOpen('test');
    vi.advanceTimersByTime(20_000);
    // stopped: nothing follows any more (a probe still gets the truth)
    expect(said()).toHaveLength(2);
    expect(readiness.evaluate().ready).toBe(false);
  });

  it('never lets an optional upstream make the pod unready', () => {
    const { readiness, apply, endpoint } = setup();
    apply();
    endpoint('side', 's1').breaker.forceOpen('test');
    vi.advanceTimersByTime(20_000);
    const v = readiness.evaluate();
    expect(v.ready).toBe(true);
    expect(v.upstreams.find((u) => u.name === 'side')).toMatchObject({ available: false, blocking: false, required: false });
  });

  it('reports available endpoints per upstream for the metrics', () => {
    const { readiness, apply, endpoint } = setup();
    apply();
    endpoint('main', 'e2').breaker.forceOpen('test');
    expect(readiness.availability().map((u) => [u.name, u.availableEndpoints])).toEqual([['main', 1], ['side', 1]]);
  });
});

describe('Readiness (local)', () => {
  it('ignores breakers but still waits for a config and turns unready on shutdown', () => {
    const { readiness, apply, endpoint } = setup('local');
    expect(readiness.evaluate().ready).toBe(false);
    apply();
    endpoint('main', 'e1').breaker.forceOpen('test');
    endpoint('main', 'e2').breaker.forceOpen('test');
    vi.advanceTimersByTime(60_000);
    expect(readiness.evaluate()).toMatchObject({ ready: true, policy: 'local' });
    readiness.shutdown();
    expect(readiness.evaluate()).toMatchObject({ ready: false, reason: 'shutting down: draining in-flight requests' });
  });
});
