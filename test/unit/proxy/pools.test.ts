// One connection pool per origin: endpoints that point at the same host share it, a removed
// endpoint gives its lease back, and the last one to leave closes the pool.
import { describe, expect, it } from 'vitest';
import { compileUpstream } from '../../../src/config/compile.ts';
import { Secret, type EndpointConfig } from '../../../src/config/runtime.ts';
import { PoolStore, type Pool } from '../../../src/proxy/pools.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { systemClock } from '../../../src/clock.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { upstream } from '../../support/loop.ts';

function countingFactory() {
  const made: { origin: string; closed: boolean }[] = [];
  const factory = (e: EndpointConfig): Pool => {
    const record = { origin: e.origin, closed: false };
    made.push(record);
    return {
      request: () => Promise.reject(new Error('not in this test')),
      close: async () => {
        record.closed = true;
      },
    } as unknown as Pool;
  };
  return { made, factory };
}

const key = () => new Secret('k');

describe('PoolStore', () => {
  it('gives endpoints on one origin one pool, and closes it when the last lease is given back', async () => {
    const { made, factory } = countingFactory();
    const store = new PoolStore(factory, () => 'direct');
    const [a, b] = compileUpstream(upstream({ endpoints: 2 }), key).endpoints;
    const la = store.acquire(a!, 2000);
    const lb = store.acquire(b!, 2000);
    expect(la.dispatcher).toBe(lb.dispatcher);
    expect(made).toHaveLength(1);
    await la.release();
    await la.release(); // twice is once
    expect(made[0]!.closed).toBe(false);
    await lb.release();
    expect(made[0]!.closed).toBe(true);
    expect(store.size).toBe(0);
  });

  it('keeps pools apart by origin, connect timeout and egress route', () => {
    const { made, factory } = countingFactory();
    let route = 'direct';
    const store = new PoolStore(factory, () => route);
    const [a] = compileUpstream(upstream({ endpoints: 1 }), key).endpoints;
    const other = { ...a!, origin: 'http://127.0.0.2:9' };
    store.acquire(a!, 2000);
    store.acquire(other, 2000);
    store.acquire(a!, 5000);
    route = 'proxy';
    store.acquire(a!, 2000);
    expect(made).toHaveLength(4);
  });
});

describe('ProxyRuntime pools across config swaps', () => {
  it('two endpoints on one host use one pool; removing one keeps it open, removing both closes it', async () => {
    const { made, factory } = countingFactory();
    const runtime = new ProxyRuntime({ clock: systemClock, log: silentLogger, metrics: createMetrics(), dispatcherFactory: factory });
    runtime.apply([compileUpstream(upstream({ endpoints: 2 }), key)], 'test');
    expect(runtime.pools).toBe(1);
    runtime.apply([compileUpstream(upstream({ endpoints: 1 }), key)], 'test');
    await new Promise((r) => setImmediate(r));
    expect(made[0]!.closed).toBe(false);
    runtime.apply([], 'test');
    await new Promise((r) => setImmediate(r));
    expect(made[0]!.closed).toBe(true);
    expect(runtime.pools).toBe(0);
  });
});
