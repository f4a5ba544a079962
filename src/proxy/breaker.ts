// One breaker per endpoint. opossum keeps the rolling window (window.ts, asked synchronously
// whether to open); this class is the state machine and adds what opossum lacks: a half-open ramp (several steps of concurrent trials),
// opening on N failures in a row, re-openings that grow (base x n, capped) with jitter so
// replicas sharing an outage do not all probe in the same millisecond, holds that keep it
// open for a provider's Retry-After, and a state that is a discriminated union, so
// "half-open with no step" cannot be written. Reading the state has no side effect: the
// open -> half-open move happens on admit() or on its timer.
import type { Clock } from '../clock.ts';
import type { BreakerConfig } from '../config/runtime.ts';
import type { BreakerVerdict } from './outcome.ts';
import { OpossumWindow, type FailureWindow } from './window.ts';

export type BreakerState =
  | { kind: 'closed'; since: number }
  | { kind: 'open'; since: number; until: number; reason: string }
  | { kind: 'halfOpen'; since: number; step: number; admitted: number; succeeded: number };

export type BreakerStateName = BreakerState['kind'];

/** Proof of admission. Its epoch ties the outcome to the state it was admitted in. */
export interface Ticket {
  epoch: number;
  trial: boolean;
}

export type Admission = { admitted: true; ticket: Ticket } | { admitted: false; retryAt: number };

export interface Transition {
  from: BreakerStateName;
  to: BreakerStateName;
  reason: string;
}

/** Epochs are unique across breaker instances, so a ticket from a replaced breaker never matches. */
let epochs = 0;

/** a full half-open step: ask again this much later (the step's trials finish in about that time) */
const HALF_OPEN_FULL_RETRY_MS = 100;
/** re-opening after a failed half-open grows to at most this many open durations */
export const MAX_REOPEN_FACTOR = 8;
/** up to this fraction of an open duration is added at random, so replicas wake apart */
export const OPEN_JITTER = 0.1;

export class Breaker {
  readonly config: BreakerConfig;
  #clock: Clock;
  #state: BreakerState;
  #epoch = ++epochs;
  /** the rolling window (opossum's), consulted synchronously; a fresh one on every close */
  #window: FailureWindow;
  #timer: NodeJS.Timeout | undefined;
  /** the latest time a provider asked us to stay away (Retry-After), extends the next opening */
  #holdUntil = 0;
  #onTransition: (t: Transition, state: BreakerState) => void;
  #random: () => number;
  /** failures in a row while closed */
  #consecutive = 0;
  /** openings since the breaker last closed: the n of base x n */
  #openings = 0;

  constructor(
    config: BreakerConfig,
    clock: Clock,
    onTransition: (t: Transition, state: BreakerState) => void,
    seed?: BreakerState,
    random: () => number = Math.random,
  ) {
    this.config = config;
    this.#clock = clock;
    this.#random = random;
    this.#onTransition = onTransition;
    this.#window = new OpossumWindow(config);
    const now = clock.now();
    this.#state = { kind: 'closed', since: now };
    if (seed && seed.kind !== 'closed') this.#seed(seed);
  }

  /** the state as last moved; an open state whose time is up is half-open in effect (see availableAt) */
  get state(): BreakerState {
    return this.#state;
  }

  /** counts in the current window, for /debug/state */
  window(): { fires: number; failures: number; successes: number } {
    return this.#window.counts();
  }

  /**
   * Without side effects: when this breaker may admit something. `now` when it would admit now;
   * later when it is open, or half-open with every trial slot of the step taken.
   */
  availableAt(now: number): number {
    const s = this.#state;
    if (s.kind === 'open') return Math.max(now, s.until);
    if (s.kind === 'halfOpen' && s.admitted >= (this.config.halfOpenRamp[s.step] ?? 1)) return now + HALF_OPEN_FULL_RETRY_MS;
    return now;
  }

  admit(): Admission {
    this.#refresh();
    const s = this.#state;
    switch (s.kind) {
      case 'closed':
        return { admitted: true, ticket: { epoch: this.#epoch, trial: false } };
      case 'open':
        return { admitted: false, retryAt: s.until };
      case 'halfOpen': {
        const allowance = this.config.halfOpenRamp[s.step] ?? 1;
        if (s.admitted >= allowance) return { admitted: false, retryAt: this.#clock.now() + HALF_OPEN_FULL_RETRY_MS };
        s.admitted++;
        return { admitted: true, ticket: { epoch: this.#epoch, trial: true } };
      }
    }
  }

  /** each attempt's outcome, once */
  record(ticket: Ticket, verdict: BreakerVerdict): void {
    if (ticket.epoch !== this.#epoch) return; // admitted under an earlier state: that episode is over
    const s = this.#state;
    if (s.kind === 'closed') {
      if (verdict === 'ignore') return;
      this.#consecutive = verdict === 'failure' ? this.#consecutive + 1 : 0;
      const limit = this.config.consecutiveFailures;
      if (limit > 0 && this.#consecutive >= limit) {
        this.#openFor(this.config.openDurationMs, `${this.#consecutive} failures in a row`);
        return;
      }
      if (this.#window.record(verdict)) this.#openFor(this.config.openDurationMs, 'error rate over threshold');
      return;
    }
    if (s.kind !== 'halfOpen' || !ticket.trial) return;
    if (verdict === 'ignore') {
      s.admitted = Math.max(0, s.admitted - 1); // the trial told us nothing: free its slot
    } else if (verdict === 'failure') {
      // a dead endpoint is probed less and less often: base x n, capped
      this.#openFor(this.config.openDurationMs * Math.min(this.#openings + 1, MAX_REOPEN_FACTOR), 'half-open trial failed');
    } else {
      s.succeeded++;
      const allowance = this.config.halfOpenRamp[s.step] ?? 1;
      if (s.succeeded < allowance) return;
      if (s.step + 1 < this.config.halfOpenRamp.length) {
        this.#set({ kind: 'halfOpen', since: s.since, step: s.step + 1, admitted: 0, succeeded: 0 }, `ramp step ${s.step + 1} passed`, false);
      } else {
        this.#close('half-open ramp completed');
      }
    }
  }

  /**
   * A provider asked for a wait (Retry-After). If the breaker is open it stays open at least
   * that long; if it opens later within the wait, it opens for the wait.
   */
  hold(untilMs: number): void {
    this.#holdUntil = Math.max(this.#holdUntil, untilMs);
    const s = this.#state;
    if (s.kind === 'open' && untilMs > s.until) {
      this.#state = { ...s, until: untilMs };
      this.#schedule(untilMs);
    }
  }

  /**
   * An active health check passed (health.ts): an open breaker goes half-open now instead of at
   * the end of its open time, and the ramp decides as usual when it closes. A provider's own wait
   * (Retry-After) is not cut short: while it lasts this does nothing. True when it moved.
   */
  probePassed(reason: string): boolean {
    const now = this.#clock.now();
    if (this.#state.kind !== 'open' || this.#holdUntil > now) return false;
    this.#clock.clearTimeout(this.#timer);
    this.#set({ kind: 'halfOpen', since: now, step: 0, admitted: 0, succeeded: 0 }, reason, true);
    return true;
  }

  /** admin action: open now, for openDuration */
  forceOpen(reason = 'opened by an operator'): void {
    this.#openFor(this.config.openDurationMs, reason);
  }

  /** admin action: close now and forget the window */
  reset(reason = 'reset by an operator'): void {
    this.#holdUntil = 0;
    this.#close(reason);
  }

  dispose(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#window.dispose();
  }

  #seed(seed: BreakerState): void {
    if (seed.kind === 'open') {
      this.#state = { ...seed };
      this.#schedule(seed.until);
    } else if (seed.kind === 'halfOpen') {
      const step = Math.min(seed.step, this.config.halfOpenRamp.length - 1);
      this.#state = { kind: 'halfOpen', since: seed.since, step, admitted: 0, succeeded: 0 };
    }
  }

  #openFor(durationMs: number, reason: string): void {
    const now = this.#clock.now();
    this.#openings++;
    this.#consecutive = 0;
    const jitter = Math.floor(this.#random() * durationMs * OPEN_JITTER);
    const until = Math.max(now + durationMs + jitter, this.#holdUntil);
    this.#set({ kind: 'open', since: now, until, reason }, reason, true);
    this.#schedule(until);
  }

  #close(reason: string): void {
    this.#clock.clearTimeout(this.#timer);
    // a fresh window: the failures that opened the breaker must not reopen it at once
    this.#window.dispose();
    this.#window = new OpossumWindow(this.config);
    this.#openings = 0;
    this.#consecutive = 0;
    this.#set({ kind: 'closed', since: this.#clock.now() }, reason, true);
  }

  #schedule(at: number): void {
    this.#clock.clearTimeout(this.#timer);
    const timer = this.#clock.setTimeout(() => {
      // timers keep their own clock and may run a fraction of a millisecond early: not yet due, wait again
      const s = this.#state;
      if (s.kind === 'open' && s.until === at && this.#clock.now() < at) this.#schedule(at);
      else this.#refresh();
    }, Math.max(0, at - this.#clock.now()));
    timer.unref?.();
    this.#timer = timer;
  }

  /** open -> half-open happens when time passes; checked lazily and by a timer (for events) */
  #refresh(): void {
    const s = this.#state;
    if (s.kind === 'open' && this.#clock.now() >= s.until) {
      this.#set({ kind: 'halfOpen', since: this.#clock.now(), step: 0, admitted: 0, succeeded: 0 }, 'open duration elapsed', true);
    }
  }

  #set(next: BreakerState, reason: string, newEpoch: boolean): void {
    const from = this.#state.kind;
    this.#state = next;
    if (newEpoch) this.#epoch = ++epochs;
    if (from !== next.kind) this.#onTransition({ from, to: next.kind, reason }, next);
  }
}
