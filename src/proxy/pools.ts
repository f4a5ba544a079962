// One connection pool per origin (and connect timeout, and egress route), shared by every
// endpoint that points there, e.g. two endpoints on one host with different base paths or keys.
// Endpoints lease a pool and give it back when they are removed or reconfigured; the last one
// to give it back closes it. The pool itself comes from the injected factory.
import type { Dispatcher } from 'undici';
import type { EndpointConfig } from '../config/runtime.ts';

export type Pool = Pick<Dispatcher, 'dispatch' | 'close'>;

/** Builds the connection pool for an origin; tests inject a scripted one. */
export type DispatcherFactory = (endpoint: EndpointConfig, options: { connectMs: number }) => Pool;

export interface PoolLease {
  readonly dispatcher: Pool;
  /** gives the pool back; closes it (waiting for its requests) when no endpoint uses it any more */
  release(): Promise<void>;
}

export class PoolStore {
  readonly #factory: DispatcherFactory;
  readonly #routeOf: (endpoint: EndpointConfig) => string;
  readonly #pools = new Map<string, { dispatcher: Pool; leases: number }>();

  /** `routeOf` names how an endpoint is reached (direct or through the egress proxy) */
  constructor(factory: DispatcherFactory, routeOf: (endpoint: EndpointConfig) => string) {
    this.#factory = factory;
    this.#routeOf = routeOf;
  }

  /** pools open now (for tests and /debug/state) */
  get size(): number {
    return this.#pools.size;
  }

  acquire(endpoint: EndpointConfig, connectMs: number): PoolLease {
    const key = `${endpoint.origin}\n${connectMs}\n${this.#routeOf(endpoint)}`;
    let entry = this.#pools.get(key);
    if (!entry) {
      entry = { dispatcher: this.#factory(endpoint, { connectMs }), leases: 0 };
      this.#pools.set(key, entry);
    }
    entry.leases++;
    const held = entry;
    let released = false;
    return {
      dispatcher: held.dispatcher,
      release: async () => {
        if (released) return;
        released = true;
        if (--held.leases > 0) return;
        if (this.#pools.get(key) === held) this.#pools.delete(key);
        await held.dispatcher.close();
      },
    };
  }
}
