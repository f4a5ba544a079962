// The snapshot holder. apply() builds a new set of upstream runtimes from compiled config and
// swaps it in with one assignment; requests in flight keep the snapshot they started with.
// Endpoints whose identity is unchanged keep breaker, pool and holds; removed ones drain.
import type { Clock } from '../clock.ts';
import type { ConfigError } from '../config/compile.ts';
import type { UpstreamConfig } from '../config/runtime.ts';
import type { ConfigSink } from '../config/sink.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { cacheFor, type UpstreamCache } from './cache.ts';
import { AdmissionQueue } from './admission.ts';
import { defaultDispatcher, egressRoute, EndpointRuntime } from './endpoint.ts';
import { PoolStore, type DispatcherFactory } from './pools.ts';
import { RetryBudget } from './retry.ts';
import { UpstreamRuntime } from './upstream.ts';

export interface Snapshot {
  generation: number;
  source: string;
  appliedAt: number;
  upstreams: ReadonlyMap<string, UpstreamRuntime>;
}

export interface RuntimeDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** builds each endpoint's connection pool (tests inject a scripted one) */
  dispatcherFactory?: DispatcherFactory;
  /** jitter and weighted choice; tests inject a seeded or zero one */
  random?: () => number;
  /**
   * Test hook, never config: the rate limits' window (ratelimit.ts WINDOW_MS, one minute), so a
   * test can watch several windows slide in seconds. Production never sets it.
   */
  rateLimitWindowMs?: number;
}

export class ProxyRuntime implements ConfigSink {
  #snapshot: Snapshot | undefined;
  #endpoints = new Map<string, EndpointRuntime>();
  #budgets = new Map<string, RetryBudget>();
  #caches = new Map<string, UpstreamCache>();
  #queues = new Map<string, AdmissionQueue>();
  #deps: RuntimeDeps & { pools: PoolStore; onGateChange: (endpoint: EndpointRuntime) => void };
  #listeners: ((s: Snapshot) => void)[] = [];
  #gateListeners = new Set<(endpoint: EndpointRuntime) => void>();
  lastRejection: { at: number; source: string; message: string } | undefined;

  constructor(deps: RuntimeDeps) {
    const onGateChange = (endpoint: EndpointRuntime) => {
      for (const listener of this.#gateListeners) listener(endpoint);
    };
    this.#deps = { ...deps, pools: new PoolStore(deps.dispatcherFactory ?? defaultDispatcher, egressRoute), onGateChange };
    deps.metrics.scrape.rateLimits = () => this.#rateLimits();
  }

  /** connection pools open now (one per origin) */
  get pools(): number {
    return this.#deps.pools.size;
  }

  /** undefined until the first config has been applied */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  onApply(listener: (s: Snapshot) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Breaker transitions and endpoint holds, as they happen (readiness follows them instead of
   * polling). Returns the function that removes the listener.
   */
  onGateChange(listener: (endpoint: EndpointRuntime) => void): () => void {
    this.#gateListeners.add(listener);
    return () => void this.#gateListeners.delete(listener);
  }

  apply(configs: readonly UpstreamConfig[], source: string): void {
    const { clock, metrics, log } = this.#deps;
    const endpoints = new Map<string, EndpointRuntime>();
    const upstreams = new Map<string, UpstreamRuntime>();
    for (const config of configs) {
      const eps = config.endpoints.map((e) => {
        const existing = this.#endpoints.get(e.key);
        if (existing) {
          existing.reconfigure(e, config.breaker, config.timeouts);
          endpoints.set(e.key, existing);
          return existing;
        }
        const created = new EndpointRuntime(config.name, e, config.breaker, config.timeouts, this.#deps);
        endpoints.set(e.key, created);
        return created;
      });
      for (const e of eps) e.health.configure(config.healthCheck, config.api);
      let budget = this.#budgets.get(config.name);
      if (budget) budget.reconfigure(config.retry.budget);
      else budget = new RetryBudget(config.retry.budget, clock);
      let queue = this.#queues.get(config.name);
      if (queue) queue.reconfigure(config.queue);
      else queue = new AdmissionQueue(config.name, config.queue, clock, metrics);
      for (const e of eps) e.gate.onRoom = queue.wake;
      const cache = cacheFor(this.#caches.get(config.name), config, this.#deps);
      upstreams.set(config.name, new UpstreamRuntime(config, eps, budget, metrics, queue, cache));
    }
    for (const [name, cache] of this.#caches) if (!upstreams.get(name)?.cache) cache.dispose();
    this.#caches = new Map([...upstreams].flatMap(([name, u]) => (u.cache ? [[name, u.cache] as const] : [])));
    const removed = [...this.#endpoints].filter(([key]) => !endpoints.has(key)).map(([, e]) => e);
    this.#endpoints = endpoints;
    this.#budgets = new Map([...upstreams].map(([name, u]) => [name, u.budget]));
    this.#queues = new Map([...upstreams].map(([name, u]) => [name, u.queue]));
    const generation = (this.#snapshot?.generation ?? 0) + 1;
    this.#snapshot = { generation, source, appliedAt: clock.wallNow(), upstreams };
    this.lastRejection = undefined;
    const names = new Set([...endpoints.values()].map((e) => `${e.upstream}/${e.name}`));
    for (const e of removed) {
      log.info({ upstream: e.upstream, endpoint: e.name }, 'endpoint removed from config: draining');
      e.drain(names.has(`${e.upstream}/${e.name}`)).catch((err: unknown) => log.warn({ upstream: e.upstream, endpoint: e.name, err }, 'endpoint drain failed'));
    }
    metrics.configReloads.labels(source.split(':')[0]!, 'applied').inc();
    metrics.configLastApplied.set(clock.wallNow() / 1000);
    log.info({ source, generation, upstreams: [...upstreams.keys()] }, 'config applied');
    // waiters whose endpoints just changed (a raised limit, a removed endpoint) look again
    for (const u of upstreams.values()) u.queue.wake(Infinity);
    for (const listener of this.#listeners) listener(this.#snapshot);
  }

  reject(error: ConfigError, source: string): void {
    this.lastRejection = { at: this.#deps.clock.wallNow(), source, message: error.message };
    this.#deps.metrics.configReloads.labels(source.split(':')[0]!, 'rejected').inc();
    this.#deps.log.error({ source, document: error.document, path: error.path, reason: error.reason }, `config rejected, last good config keeps serving: ${error.message}`);
  }

  /** breakwater_ratelimit_available, at scrape time: what each limited endpoint could admit now */
  *#rateLimits(): Iterable<readonly [upstream: string, endpoint: string, bucket: 'requests' | 'tokens', available: number]> {
    const now = this.#deps.clock.now();
    for (const e of this.#endpoints.values()) {
      const limiter = e.gate.limiter;
      if (!limiter) continue;
      for (const bucket of ['requests', 'tokens'] as const) {
        const available = limiter.available(bucket, now);
        if (available !== undefined) yield [e.upstream, e.name, bucket, available] as const;
      }
    }
  }

  /** closes every pool (shutdown) */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#endpoints.values()].map((e) => e.drain()));
  }
}
