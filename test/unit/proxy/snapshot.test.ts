// Snapshots hold frozen config; per-endpoint state (gate, pool, counters) lives in a store
// keyed by identity and carries over. A request reads its endpoint's url, key, headers and
// model names from the snapshot it started on, whatever a reload does meanwhile.
import { describe, expect, it } from 'vitest';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret } from '../../../src/config/runtime.ts';
import { systemClock } from '../../../src/clock.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { upstream } from '../../support/loop.ts';

const scripted = () => ({ request: () => Promise.reject(new Error('unused')), close: async () => undefined }) as never;

describe('snapshots and endpoint state', () => {
  it('a reload keeps the endpoint\'s state but not the old snapshot\'s view of its config', () => {
    const runtime = new ProxyRuntime({ clock: systemClock, log: silentLogger, metrics: createMetrics(), dispatcherFactory: scripted });
    runtime.apply([compileUpstream(upstream({ endpoints: 1, each: { models: { m: 'deployment-1' }, auth: { env: 'KEY' } } }), () => new Secret('key-1'))], 'test');
    const before = runtime.snapshot!.upstreams.get('u')!;
    runtime.apply([compileUpstream(upstream({ endpoints: 1, each: { models: { m: 'deployment-2' }, auth: { env: 'KEY' } } }), () => new Secret('key-2'))], 'test');
    const after = runtime.snapshot!.upstreams.get('u')!;

    const [e] = before.endpoints;
    expect(after.endpoints[0]).toBe(e); // same identity: the same state (gate, pool, counters)
    expect(before.configOf(e!).models.get('m')).toBe('deployment-1');
    expect(before.configOf(e!).auth!.value.reveal()).toBe('Bearer key-1');
    expect(after.configOf(e!).models.get('m')).toBe('deployment-2');
    expect(after.configOf(e!).auth!.value.reveal()).toBe('Bearer key-2');
  });
});
