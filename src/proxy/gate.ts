// One gate per endpoint: the single answer to "may this endpoint take a request for this model
// now?". It owns the breaker, the holds (an endpoint held for a provider's Retry-After or an
// account error; an (endpoint, model) pair held for a model-scoped throttle) and the bulkhead's
// slots (admission.ts; a full endpoint is 'busy', never charged to its breaker). peek() is free of
// side effects and is what the attempt loop, readiness and /debug/state read; take() admits
// (and may take a half-open trial slot); record() learns from an attempt's outcome, once.
// An endpoint with a client-side rate limit (ratelimit.ts) without room for the request is
// `busy`: Breakwater's own capacity, never the provider's failure.
import type { Clock } from '../clock.ts';
import type { BreakerConfig, RateLimitConfig } from '../config/runtime.ts';
import { Bulkhead } from './admission.ts';
import { Breaker, type BreakerState, type Ticket, type Transition } from './breaker.ts';
import { breakerVerdict, describeOutcome, type Outcome } from './outcome.ts';
import { ANY_REQUEST, RateLimiter, type Cost, type Reservation } from './ratelimit.ts';

/** Account errors (bad key, no quota) will not fix themselves in seconds: keep the endpoint out this long. */
export const ACCOUNT_HOLD_MS = 5 * 60_000;
/** a model-scoped throttle without a wait: hold the pair this long, doubling while it repeats */
export const MODEL_HOLD_BASE_MS = 1_000;
/** a provider's wait is stretched by up to this fraction, so held requests and replicas return apart */
export const HOLD_JITTER = 0.25;

export type Availability =
  | { kind: 'now' }
  /** a provider's own wait (Retry-After) or an account error: worth telling the app when it ends */
  | { kind: 'held'; at: number; scope: 'endpoint' | 'model'; reason: string }
  /** the breaker: open, or half-open with its trial slots taken */
  | { kind: 'open'; at: number; reason: string }
  /**
   * Breakwater's own capacity is full: skipped like an open endpoint, but never charged to its
   * breaker and never unavailable for readiness. at: when room is expected (Infinity: when
   * something is released)
   */
  | { kind: 'busy'; at: number; reason: 'bulkhead' | 'rate_limit' };

const BULKHEAD_FULL: Availability = Object.freeze({ kind: 'busy', at: Infinity, reason: 'bulkhead' });

/** `reservation`: the request's share of the endpoint's rate limits, when it has any */
export type GateAdmission = { admitted: true; ticket: Ticket; reservation?: Reservation | undefined } | { admitted: false; availability: Availability };

interface Hold {
  until: number;
  reason: string;
}

interface ModelHold extends Hold {
  /** throttles in a row without a provider wait: the backoff's n */
  repeats: number;
}

export interface RecordContext {
  maxRetryAfterMs: number;
  respectRetryAfter: boolean;
  /** false when the attempt was sent with a key that has since been rotated */
  currentKey: boolean;
}

export class EndpointGate {
  breaker: Breaker;
  #clock: Clock;
  #random: () => number;
  #onTransition: (t: Transition) => void;
  #hold: Hold | undefined;
  #modelHolds = new Map<string, ModelHold>();
  /** the bulkhead (admission.ts): taken by take(), released by release() when the attempt settles */
  readonly slots = new Bulkhead((n) => this.onRoom(n));
  /** room may have appeared for n more requests: the upstream's queue wakes its waiters (set by the runtime) */
  onRoom: (n: number) => void = () => undefined;
  /** the endpoint's client-side rate limits (undefined: none) */
  limiter: RateLimiter | undefined;

  constructor(config: BreakerConfig, clock: Clock, onTransition: (t: Transition) => void, random: () => number = Math.random) {
    this.#clock = clock;
    this.#random = random;
    this.#onTransition = onTransition;
    this.breaker = new Breaker(config, clock, onTransition, undefined, random);
  }

  /** a new breaker config: a new window, the same state (open stays open until its time) */
  reconfigure(config: BreakerConfig): void {
    const state = this.breaker.state;
    this.breaker.dispose();
    this.breaker = new Breaker(config, this.#clock, this.#onTransition, state, this.#random);
  }

  /** the endpoint's rateLimit, at creation and on every reload: a change keeps what was spent */
  rateLimit(config: RateLimitConfig | undefined, windowMs?: number): void {
    if (config === undefined) this.limiter = undefined;
    else if (this.limiter) this.limiter.reconfigure(config);
    else this.limiter = new RateLimiter(config, windowMs);
  }

  /** when the endpoint-wide hold ends (0 without one): readiness watches it change */
  get holdUntil(): number {
    return this.#hold?.until ?? 0;
  }

  /** a new key deserves a new chance */
  keyRotated(): void {
    this.#hold = undefined;
  }

  /** `cost`: the request's estimated share of the rate limits (any request when absent) */
  peek(model: string | undefined, now: number, cost: Cost = ANY_REQUEST): Availability {
    const state = this.breaker.state;
    if (state.kind === 'open' && state.until > now) return { kind: 'open', at: state.until, reason: state.reason };
    if (this.#hold && this.#hold.until > now) return { kind: 'held', at: this.#hold.until, scope: 'endpoint', reason: this.#hold.reason };
    if (model !== undefined) {
      const m = this.#modelHolds.get(model);
      if (m && m.until > now) return { kind: 'held', at: m.until, scope: 'model', reason: m.reason };
    }
    const at = this.breaker.availableAt(now);
    if (at > now) return { kind: 'open', at, reason: 'half-open: every trial slot of this step is taken' };
    if (this.slots.full) return BULKHEAD_FULL;
    if (this.limiter) {
      const room = this.limiter.availableAt(cost, now);
      if (room > now) return { kind: 'busy', at: room, reason: 'rate_limit' };
    }
    return { kind: 'now' };
  }

  take(model: string | undefined, now: number, cost: Cost = ANY_REQUEST): GateAdmission {
    const seen = this.peek(model, now, cost);
    if (seen.kind !== 'now') return { admitted: false, availability: seen };
    const a = this.breaker.admit();
    if (a.admitted) {
      this.slots.take();
      return this.limiter ? { admitted: true, ticket: a.ticket, reservation: this.limiter.take(cost, now) } : a;
    }
    return { admitted: false, availability: { kind: 'open', at: a.retryAt, reason: 'breaker open' } };
  }

  /** the attempt admitted by take() has ended (Attempt.settle, once): its bulkhead slot frees */
  release(): void {
    this.slots.release();
  }

  record(ticket: Ticket, outcome: Outcome, model: string | undefined, ctx: RecordContext): void {
    const now = this.#clock.now();
    const modelScoped = outcome.kind === 'throttled' && outcome.scope === 'model' && model !== undefined;
    // a model's throttle says nothing about the endpoint's other models: never the breaker's business
    this.breaker.record(ticket, modelScoped ? 'ignore' : breakerVerdict(outcome, this.breaker.config.failOn));
    if (model !== undefined && outcome.kind === 'ok') this.#modelHolds.delete(model);
    switch (outcome.kind) {
      case 'account':
        if (ctx.currentKey) this.#hold = { until: now + ACCOUNT_HOLD_MS, reason: describeOutcome(outcome) };
        break;
      case 'throttled':
      case 'server_error': {
        const wait = ctx.respectRetryAfter && outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, ctx.maxRetryAfterMs) : undefined;
        if (modelScoped) {
          const repeats = (this.#modelHolds.get(model)?.repeats ?? 0) + 1;
          const ms = wait ?? Math.min(MODEL_HOLD_BASE_MS * 2 ** (repeats - 1), ctx.maxRetryAfterMs);
          this.#modelHolds.set(model, { until: now + this.#stretch(ms), reason: describeOutcome(outcome), repeats: wait === undefined ? repeats : 0 });
        } else if (wait !== undefined) {
          // holds follow the provider's own wait; without one, the breaker's window decides
          const until = now + this.#stretch(wait);
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
  reset(): void {
    this.#hold = undefined;
    this.#modelHolds.clear();
    this.breaker.reset();
  }

  /**
   * Active health checks (health.ts) probe only an open breaker whose endpoint is not held: a hold
   * is the provider's own wait or an account error, which a models listing cannot vouch for.
   */
  wantsProbe(now: number): boolean {
    const s = this.breaker.state;
    return s.kind === 'open' && s.until > now && !(this.#hold && this.#hold.until > now);
  }

  /** a health check passed: an open breaker goes half-open now, unless the endpoint is held meanwhile */
  probePassed(reason: string, now: number): boolean {
    if (this.#hold && this.#hold.until > now) return false;
    return this.breaker.probePassed(reason);
  }

  describe(now: number): { breaker: BreakerState; hold: Hold | null; modelHolds: Record<string, number> } {
    return {
      breaker: this.breaker.state,
      hold: this.#hold && this.#hold.until > now ? { ...this.#hold } : null,
      modelHolds: Object.fromEntries([...this.#modelHolds].filter(([, h]) => h.until > now).map(([m, h]) => [m, h.until])),
    };
  }

  dispose(): void {
    this.breaker.dispose();
  }

  /** Envoy's rule for reset headers: wait between 1 and 1 + HOLD_JITTER times what was asked */
  #stretch(ms: number): number {
    return ms + Math.floor(this.#random() * ms * HOLD_JITTER);
  }
}
