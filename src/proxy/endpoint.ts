// One provider endpoint at run time: its connection pool, its gate (breaker and holds) and its
// counters. Survives config swaps while its identity (upstream, name, url) is unchanged.
import { createRequire } from 'node:module';
import type { EnvHttpProxyAgent, Pool } from 'undici';
import type { Clock } from '../clock.ts';
import type { AuthConfig, BreakerConfig, EndpointConfig, TimeoutsConfig } from '../config/runtime.ts';
import { isLocalHttpUrl } from '../config/rules.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Breaker, BreakerState, Ticket, Transition } from './breaker.ts';
import { ACCOUNT_HOLD_MS, EndpointGate } from './gate.ts';
import { HealthProbe } from './health.ts';
import type { DispatcherFactory, Pool as PoolEntry, PoolLease, PoolStore } from './pools.ts';
import type { Outcome, OutcomeKind } from './outcome.ts';
import { LatencyEwma } from './select.ts';

export { ACCOUNT_HOLD_MS };

function proxyConfigured(): boolean {
  const env = process.env;
  return Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
}

/** through HTTP(S)_PROXY, or direct (always direct for plain-http local endpoints) */
export function egressRoute(endpoint: EndpointConfig): 'proxy' | 'direct' {
  // plain http to this pod or cluster never crosses a proxy: it would see the key in cleartext
  return proxyConfigured() && !isLocalHttpUrl(endpoint.url) ? 'proxy' : 'direct';
}

// undici's index loads all of undici (fetch, WebSocket, cache storage, mock agents, …): about
// 28 MB of an idle sidecar's RSS, where the data path needs only the Pool (about 15 MB). So the
// Pool is required by its own file (undici is CommonJS and has no "exports" map), and the proxy
// agent only when an HTTP(S)_PROXY is set.
const requireUndici = createRequire(import.meta.url);
const UndiciPool = requireUndici('undici/lib/dispatcher/pool.js') as typeof Pool;
const envHttpProxyAgent = (): typeof EnvHttpProxyAgent => requireUndici('undici/lib/dispatcher/env-http-proxy-agent.js') as typeof EnvHttpProxyAgent;

export const defaultDispatcher: DispatcherFactory = (endpoint, { connectMs }) => {
  const connect = { timeout: connectMs };
  // Egress honours HTTPS_PROXY/NO_PROXY (but never for plain-http local endpoints); without a
  // proxy, one keep-alive pool per origin (shared through the PoolStore).
  if (egressRoute(endpoint) === 'proxy') return new (envHttpProxyAgent())({ connect, keepAliveTimeout: 30_000 });
  return new UndiciPool(endpoint.origin, { connect, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
};

export interface EndpointDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** where endpoints lease their connection pool (one per origin) */
  pools: PoolStore;
  random?: () => number;
  /** the rate limits' window (ratelimit.ts WINDOW_MS, a minute); tests only shorten it */
  rateLimitWindowMs?: number;
  /** the gate changed in a way readiness must see: a breaker transition, or an endpoint hold set or extended */
  onGateChange?: (endpoint: EndpointRuntime) => void;
}

export class EndpointRuntime {
  readonly upstream: string;
  config: EndpointConfig;
  readonly gate: EndpointGate;
  /** active health checks while the breaker is open (configured by the runtime on every apply) */
  readonly health: HealthProbe;
  #pool: PoolLease;
  inflight = 0;
  /** peak-EWMA of the time to first byte, for balance: leastLatency (select.ts); kept across swaps */
  readonly latency: LatencyEwma;
  /** removed by a config swap: requests still running on an older snapshot must skip it */
  retired = false;
  #connectMs: number;
  #breakerKey: string;
  #deps: EndpointDeps;
  #attemptCounters = new Map<OutcomeKind, { inc(): void }>();
  readonly inflightGauge: { inc(): void; dec(): void };
  readonly ttfb: { observe(v: number): void };
  readonly #tokens: { input: { inc(n: number): void }; output: { inc(n: number): void } };

  constructor(upstream: string, config: EndpointConfig, breaker: BreakerConfig, timeouts: TimeoutsConfig, deps: EndpointDeps) {
    this.upstream = upstream;
    this.config = config;
    this.#deps = deps;
    this.#connectMs = timeouts.connectMs;
    this.#pool = deps.pools.acquire(config, this.#connectMs);
    this.#breakerKey = breaker.key;
    this.latency = new LatencyEwma(deps.clock);
    this.gate = new EndpointGate(breaker, deps.clock, (t) => this.#onTransition(t), deps.random);
    this.health = new HealthProbe(this, deps);
    this.gate.slots.reconfigure(config.maxConcurrent);
    this.gate.rateLimit(config.rateLimit, deps.rateLimitWindowMs);
    this.inflightGauge = deps.metrics.inflight.labels(upstream, config.name);
    this.ttfb = deps.metrics.ttfb.labels(upstream, config.name);
    this.#tokens = { input: deps.metrics.tokens.labels(upstream, config.name, 'input'), output: deps.metrics.tokens.labels(upstream, config.name, 'output') };
    this.#publishState(this.breaker.state.kind);
  }

  get name(): string {
    return this.config.name;
  }

  get dispatcher(): PoolEntry {
    return this.#pool.dispatcher;
  }

  get breaker(): Breaker {
    return this.gate.breaker;
  }

  /** A swap kept this endpoint: take the new settings, keep the breaker's state and the pool. */
  reconfigure(config: EndpointConfig, breaker: BreakerConfig, timeouts: TimeoutsConfig): void {
    const keyChanged = !(config.auth?.value.equals(this.config.auth?.value) ?? this.config.auth === undefined);
    this.config = config;
    if (keyChanged) this.gate.keyRotated();
    this.gate.slots.reconfigure(config.maxConcurrent); // at once; attempts in flight keep counting
    this.gate.rateLimit(config.rateLimit, this.#deps.rateLimitWindowMs);
    // the key is computed at compile time from every breaker field: no hand-kept field list
    if (breaker.key !== this.#breakerKey) {
      this.#breakerKey = breaker.key;
      this.gate.reconfigure(breaker);
    }
    if (timeouts.connectMs !== this.#connectMs) {
      const old = this.#pool;
      this.#connectMs = timeouts.connectMs;
      this.#pool = this.#deps.pools.acquire(config, this.#connectMs);
      old.release().catch(() => undefined);
    }
  }

  /**
   * One attempt's outcome, once (the Attempt handle calls this). `authUsed` is the key the
   * attempt was sent with: a 401 for a key that has since been rotated says nothing about the
   * new one, so it does not hold the endpoint.
   */
  record(
    ticket: Ticket,
    outcome: Outcome,
    model: string | undefined,
    ctx: { requestId: string; maxRetryAfterMs: number; respectRetryAfter: boolean; authUsed: AuthConfig | undefined },
  ): void {
    this.#count(outcome.kind);
    // by value: a reload that keeps the key compiles a new config object for it
    const currentKey = ctx.authUsed === undefined ? this.config.auth === undefined : ctx.authUsed.value.equals(this.config.auth?.value);
    const heldUntil = this.gate.holdUntil;
    this.gate.record(ticket, outcome, model, { maxRetryAfterMs: ctx.maxRetryAfterMs, respectRetryAfter: ctx.respectRetryAfter, currentKey });
    if (this.gate.holdUntil !== heldUntil) this.#deps.onGateChange?.(this);
    if (outcome.kind === 'account' && currentKey) {
      this.#deps.log.error(
        { upstream: this.upstream, endpoint: this.name, requestId: ctx.requestId, status: outcome.status, reason: outcome.reason, holdSeconds: ACCOUNT_HOLD_MS / 1000 },
        'provider rejected the account or key: endpoint held out of rotation; check its API key and quota',
      );
    }
  }

  /** admin action (reset): close the breaker and drop every hold, so traffic returns at once */
  resetByOperator(): void {
    this.gate.reset();
  }

  recordTokens(input: number, output: number): void {
    if (input > 0) this.#tokens.input.inc(input);
    if (output > 0) this.#tokens.output.inc(output);
  }

  /** Snapshot for /debug/state (never the key). */
  describe(now: number) {
    const { breaker: state, hold, modelHolds } = this.gate.describe(now);
    return {
      name: this.name,
      url: this.config.url,
      priority: this.config.priority,
      weight: this.config.weight,
      auth: this.config.auth ? { header: this.config.auth.header, source: this.config.auth.source } : null,
      breaker: { ...state, timeInStateMs: now - state.since, window: this.breaker.window() },
      hold,
      modelHolds,
      inflight: this.inflight,
      healthCheck: this.health.describe(),
      slots: this.gate.slots.describe(),
      rateLimit: this.gate.limiter?.describe(now) ?? null,
      ttfbEwmaMs: Math.round(this.latency.value()),
    };
  }

  /**
   * Removed from config: let in-flight requests finish, then close the pool. `keepSeries`: an
   * endpoint of the same name (a new url) took over, and its breaker_state series stay.
   */
  async drain(keepSeries = false): Promise<void> {
    this.retired = true;
    this.health.close();
    try {
      await this.#pool.release();
    } finally {
      this.gate.dispose();
      if (!keepSeries) for (const state of ['closed', 'open', 'halfOpen']) this.#deps.metrics.breakerState.remove(this.upstream, this.name, state);
    }
  }

  #count(kind: OutcomeKind): void {
    let counter = this.#attemptCounters.get(kind);
    if (!counter) {
      counter = this.#deps.metrics.attempts.labels(this.upstream, this.name, kind);
      this.#attemptCounters.set(kind, counter);
    }
    counter.inc();
  }

  #onTransition(t: Transition): void {
    const { metrics, log } = this.#deps;
    metrics.breakerTransitions.labels(this.upstream, this.name, t.to).inc();
    this.#publishState(t.to);
    this.health.breakerMoved(t.to);
    const fields = { upstream: this.upstream, endpoint: this.name, from: t.from, to: t.to, reason: t.reason };
    if (t.to === 'open') log.warn(fields, 'breaker opened');
    else log.info(fields, t.to === 'closed' ? 'breaker closed' : 'breaker half-open');
    this.#deps.onGateChange?.(this);
  }

  #publishState(current: BreakerState['kind']): void {
    for (const state of ['closed', 'open', 'halfOpen'] as const) {
      this.#deps.metrics.breakerState.labels(this.upstream, this.name, state).set(state === current ? 1 : 0);
    }
  }

}
