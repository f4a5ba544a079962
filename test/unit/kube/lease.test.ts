// Leader election on virtual time against an in-memory Lease API with optimistic concurrency:
// one holder at a time, fencing (holds() turns false renewDeadline after the last renewal was
// sent, before anyone may take over), takeover only after leaseDuration unchanged, release on stop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KubeApiError, type RequestOptions } from '../../../src/kube/client.ts';
import { LeaderElector } from '../../../src/kube/lease.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; renewTime?: string };
}

/** One Lease in memory, as the API server keeps it: 404, 409 on a stale resourceVersion. */
class LeaseStore {
  lease: Lease | undefined;
  #rv = 0;
  handle(method: string, path: string, options: RequestOptions): unknown {
    const body = options.body as Lease | undefined;
    switch (method) {
      case 'GET':
        if (!this.lease) throw new KubeApiError(method, path, 404, 'NotFound', 'no lease');
        return structuredClone(this.lease);
      case 'POST':
        if (this.lease) throw new KubeApiError(method, path, 409, 'AlreadyExists', 'exists');
        this.lease = { ...body!, metadata: { ...body!.metadata, resourceVersion: String(++this.#rv) } };
        return structuredClone(this.lease);
      case 'PUT':
        if (body!.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeApiError(method, path, 409, 'Conflict', 'stale');
        this.lease = { ...body!, metadata: { ...body!.metadata, resourceVersion: String(++this.#rv) } };
        return structuredClone(this.lease);
      default:
        throw new Error(`unexpected ${method}`);
    }
  }
}

/** One replica's view of the API: can be cut off (partition). */
function replica(store: LeaseStore, identity: string) {
  const view = { cutOff: false, started: 0, stopped: 0 };
  const client = {
    request: async <T>(method: string, path: string, options: RequestOptions = {}): Promise<T> => {
      await Promise.resolve();
      if (view.cutOff) throw new KubeApiError(method, path, 0, 'Unreachable', 'partitioned');
      return store.handle(method, path, options) as T;
    },
  };
  const elector = new LeaderElector({
    client,
    namespace: 'breakwater-system',
    name: 'breakwater-controller',
    identity,
    leaseDurationMs: 4_000,
    renewDeadlineMs: 3_000,
    retryPeriodMs: 1_000,
    log: silentLogger,
    onStartedLeading: () => view.started++,
    onStoppedLeading: () => view.stopped++,
  });
  return { view, elector };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('leader election', () => {
  it('one replica holds the Lease; the other waits', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await vi.advanceTimersByTimeAsync(100);
    b.elector.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(store.lease?.spec?.holderIdentity).toBe('a');
    expect(a.elector.holds()).toBe(true);
    expect(b.elector.holds()).toBe(false);
    expect([a.view.started, b.view.started]).toEqual([1, 0]);
  });

  it('a cut-off holder stops writing after renewDeadline, before the other may take over after leaseDuration', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await vi.advanceTimersByTimeAsync(100);
    b.elector.start();
    await vi.advanceTimersByTimeAsync(2_000);
    a.view.cutOff = true;
    const cutAt = performance.now();
    let fencedAt: number | undefined;
    let takenAt: number | undefined;
    for (let t = 0; t < 10_000; t += 100) {
      await vi.advanceTimersByTimeAsync(100);
      if (fencedAt === undefined && !a.elector.holds()) fencedAt = performance.now() - cutAt;
      if (takenAt === undefined && b.elector.holds()) takenAt = performance.now() - cutAt;
    }
    expect(fencedAt).toBeDefined();
    expect(takenAt).toBeDefined();
    expect(fencedAt!).toBeLessThanOrEqual(3_000);
    expect(takenAt!).toBeGreaterThan(fencedAt!);
    expect(takenAt!).toBeGreaterThanOrEqual(3_000); // b saw the lease unchanged for 4 s from a's last renewal
    expect(store.lease?.spec?.holderIdentity).toBe('b');
    expect(a.view.stopped).toBe(1);
    // a comes back: it sees b's lease and stays a follower
    a.view.cutOff = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(a.elector.holds()).toBe(false);
    expect(store.lease?.spec?.holderIdentity).toBe('b');
  });

  it('stop releases the Lease, so another replica takes over at its next try', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await vi.advanceTimersByTimeAsync(100);
    b.elector.start();
    await vi.advanceTimersByTimeAsync(2_000);
    await a.elector.stop();
    expect(store.lease?.spec?.holderIdentity).toBe('');
    await vi.advanceTimersByTimeAsync(1_100);
    expect(b.elector.holds()).toBe(true);
    await b.elector.stop();
  });
});
