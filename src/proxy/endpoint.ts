// One provider endpoint at run time: its connection pool, its breaker, its holds and its
// counters. Survives config swaps while its identity (upstream, name, url) is unchanged.
import { EnvHttpProxyAgent, Pool, type Dispatcher } from 'undici';
import type { Clock } from '../clock.ts';
import type { AuthConfig, BreakerConfig, EndpointConfig, TimeoutsConfig } from '../config/runtime.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Breaker, type BreakerState, type Ticket, type Transition } from './breaker.ts';
import { breakerVerdict, describeOutcome, type Outcome, type OutcomeKind } from './outcome.ts';

/** Account errors (bad key, no quota) will not fix themselves in seconds: keep the endpoint out this long. */
export const ACCOUNT_HOLD_MS = 5 * 60_000;

export type Availability = { kind: 'now' | 'held' | 'open'; at: number };

export type EndpointAdmission =
  | { admitted: true; ticket: Ticket }
  | { admitted: false; retryAt: number; why: 'open' | 'half_open_full' | 'held' | 'model_held' };

function proxyConfigured(): boolean {
  const env = process.env;
  return Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
}

function sameBreakerConfig(a: BreakerConfig, b: BreakerConfig): boolean {
  return (
    a.errorThresholdPercentage === b.errorThresholdPercentage &&
    a.volumeThreshold === b.volumeThreshold &&
    a.rollingWindowMs === b.rollingWindowMs &&
    a.openDurationMs === b.openDurationMs &&
    a.halfOpenRamp.join() === b.halfOpenRamp.join() &&
    [...a.failOn].sort().join() === [...b.failOn].sort().join()
  );
}

export interface EndpointDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

export class EndpointRuntime {
  readonly upstream: string;
  config: EndpointConfig;
  breaker: Breaker;
  dispatcher: Dispatcher;
  inflight = 0;
  /** removed by a config swap: requests still running on an older snapshot must skip it */
  retired = false;
  #connectMs: number;
  #hold: { until: number; reason: string } | undefined;
  #modelHolds = new Map<string, number>();
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
    this.dispatcher = this.#newDispatcher();
    this.breaker = this.#newBreaker(breaker);
    this.inflightGauge = deps.metrics.inflight.labels(upstream, config.name);
    this.ttfb = deps.metrics.ttfb.labels(upstream, config.name);
    this.#tokens = { input: deps.metrics.tokens.labels(upstream, config.name, 'input'), output: deps.metrics.tokens.labels(upstream, config.name, 'output') };
    this.#publishState(this.breaker.state.kind);
  }

  get name(): string {
    return this.config.name;
  }

  /** A swap kept this endpoint: take the new settings, keep the breaker's state and the pool. */
  reconfigure(config: EndpointConfig, breaker: BreakerConfig, timeouts: TimeoutsConfig): void {
    const authChanged = !(config.auth?.value.equals(this.config.auth?.value) ?? this.config.auth === undefined);
    this.config = config;
    if (authChanged && this.#hold) this.#hold = undefined; // a new key deserves a new chance
    if (!sameBreakerConfig(this.breaker.config, breaker)) {
      const state = this.breaker.state;
      this.breaker.dispose();
      this.breaker = this.#newBreaker(breaker, state);
    }
    if (timeouts.connectMs !== this.#connectMs) {
      const old = this.dispatcher;
      this.#connectMs = timeouts.connectMs;
      this.dispatcher = this.#newDispatcher();
      old.close().catch(() => undefined);
    }
  }

  admit(model: string | undefined, now: number): EndpointAdmission {
    if (this.#hold && this.#hold.until > now) return { admitted: false, retryAt: this.#hold.until, why: 'held' };
    if (model !== undefined && this.#modelHolds.size > 0) {
      const until = this.#modelHolds.get(model);
      if (until !== undefined) {
        if (until > now) return { admitted: false, retryAt: until, why: 'model_held' };
        this.#modelHolds.delete(model);
      }
    }
    const a = this.breaker.admit();
    if (a.admitted) return a;
    return { admitted: false, retryAt: a.retryAt, why: this.breaker.state.kind === 'open' ? 'open' : 'half_open_full' };
  }

  /**
   * Whether admit() would say yes for this model, without taking a half-open slot. 'held' is a
   * provider's own wait (worth sleeping for); 'open' is the breaker (fail fast instead).
   */
  availability(model: string | undefined, now: number): Availability {
    // by state, not by comparing times: a closed breaker's availableAt() is its clock's now,
    // which is later than `now` once a millisecond has passed
    const state = this.breaker.state;
    if (state.kind === 'open') return { kind: 'open', at: state.until };
    let held = 0;
    if (this.#hold && this.#hold.until > now) held = this.#hold.until;
    const modelUntil = model === undefined ? undefined : this.#modelHolds.get(model);
    if (modelUntil !== undefined && modelUntil > now) held = Math.max(held, modelUntil);
    return held > 0 ? { kind: 'held', at: held } : { kind: 'now', at: now };
  }

  /**
   * `authUsed` is the key the attempt was sent with: a 401 for a key that has since been
   * rotated says nothing about the new one, so it does not hold the endpoint.
   */
  record(
    ticket: Ticket,
    outcome: Outcome,
    model: string | undefined,
    ctx: { requestId: string; maxRetryAfterMs: number; respectRetryAfter: boolean; authUsed: AuthConfig | undefined },
  ): void {
    const now = this.#deps.clock.now();
    this.#count(outcome.kind);
    this.breaker.record(ticket, breakerVerdict(outcome, this.breaker.config.failOn));
    switch (outcome.kind) {
      case 'account':
        if (ctx.authUsed !== this.config.auth) break;
        this.#hold = { until: now + ACCOUNT_HOLD_MS, reason: describeOutcome(outcome) };
        this.#deps.log.error(
          { upstream: this.upstream, endpoint: this.name, requestId: ctx.requestId, status: outcome.status, reason: outcome.reason, holdSeconds: ACCOUNT_HOLD_MS / 1000 },
          'provider rejected the account or key: endpoint held out of rotation; check its API key and quota',
        );
        break;
      case 'throttled':
      case 'server_error': {
        // holds follow the provider's own wait; without one, the breaker's window decides
        if (!ctx.respectRetryAfter || outcome.retryAfterMs === undefined) break;
        const until = now + Math.min(outcome.retryAfterMs, ctx.maxRetryAfterMs);
        if (outcome.kind === 'throttled' && outcome.scope === 'model' && model !== undefined) {
          this.#modelHolds.set(model, until);
        } else {
          this.#hold = { until: Math.max(until, this.#hold?.until ?? 0), reason: describeOutcome(outcome) };
          this.breaker.hold(until);
        }
        break;
      }
      default:
        break;
    }
  }

  /** admin action (reset): close the breaker and drop every hold, so traffic returns at once */
  resetByOperator(): void {
    this.#hold = undefined;
    this.#modelHolds.clear();
    this.breaker.reset();
  }

  recordTokens(input: number, output: number): void {
    if (input > 0) this.#tokens.input.inc(input);
    if (output > 0) this.#tokens.output.inc(output);
  }

  /** Snapshot for /debug/state (never the key). */
  describe(now: number) {
    const state = this.breaker.state;
    return {
      name: this.name,
      url: this.config.url,
      priority: this.config.priority,
      weight: this.config.weight,
      auth: this.config.auth ? { header: this.config.auth.header, source: this.config.auth.source } : null,
      breaker: { ...state, timeInStateMs: now - state.since, window: this.breaker.window() },
      hold: this.#hold && this.#hold.until > now ? { until: this.#hold.until, reason: this.#hold.reason } : null,
      modelHolds: Object.fromEntries([...this.#modelHolds].filter(([, until]) => until > now)),
      inflight: this.inflight,
    };
  }

  /** Removed from config: let in-flight requests finish, then close the pool. */
  /**
   * Removed from config: let in-flight requests finish, then close the pool. `keepSeries`: an
   * endpoint of the same name (a new url) took over, and its breaker_state series stay.
   */
  async drain(keepSeries = false): Promise<void> {
    this.retired = true;
    try {
      await this.dispatcher.close();
    } finally {
      this.breaker.dispose();
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

  #newBreaker(config: BreakerConfig, seed?: BreakerState): Breaker {
    return new Breaker(config, this.#deps.clock, (t) => this.#onTransition(t), seed);
  }

  #onTransition(t: Transition): void {
    const { metrics, log } = this.#deps;
    metrics.breakerTransitions.labels(this.upstream, this.name, t.to).inc();
    this.#publishState(t.to);
    const fields = { upstream: this.upstream, endpoint: this.name, from: t.from, to: t.to, reason: t.reason };
    if (t.to === 'open') log.warn(fields, 'breaker opened');
    else log.info(fields, t.to === 'closed' ? 'breaker closed' : 'breaker half-open');
  }

  #publishState(current: BreakerState['kind']): void {
    for (const state of ['closed', 'open', 'halfOpen'] as const) {
      this.#deps.metrics.breakerState.labels(this.upstream, this.name, state).set(state === current ? 1 : 0);
    }
  }

  #newDispatcher(): Dispatcher {
    const connect = { timeout: this.#connectMs };
    // Egress honours HTTPS_PROXY/NO_PROXY; without a proxy, one keep-alive pool per endpoint origin.
    if (proxyConfigured()) return new EnvHttpProxyAgent({ connect, keepAliveTimeout: 30_000 });
    return new Pool(this.config.origin, { connect, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
  }
}
