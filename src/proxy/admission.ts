// Admission: Breakwater's own capacity, in front of the providers'. A bulkhead per endpoint
// (at most `maxConcurrent` attempts in flight; a stream holds its slot until it ends) and a
// priority queue per upstream for requests that find every endpoint that could serve them busy.
// A full endpoint is Breakwater's own state, never the provider's failure: the gate reports it
// as 'busy', the loop skips it like an open one, and nothing is charged to its breaker.
//
// The queue serves the highest priority first, FIFO within a priority. A waiter is woken when
// room may have appeared (a slot released, a limit raised: `wake()`; a rate limit's finite `at`
// passed: the queue's one timer), and gives up at `maxWait` after it first entered or at its
// deadline, whichever is sooner. A full queue sheds the lowest priority first: of the waiters and
// the newcomer, the newest of the lowest priority goes (so a newcomer of the lowest priority
// present is refused, and one of a higher priority evicts the newest lowest-priority waiter).
// An app that disconnects leaves at once. Every list here is bounded by `maxSize`.
import type { Clock } from '../clock.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export type Priority = 'high' | 'normal' | 'low';
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];
const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** Node's timers overflow past this (a longer one fires at once): longer waits re-arm */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const PRIORITY_HEADER = 'x-breakwater-priority';

/** the app's `x-breakwater-priority` (absent: normal); undefined when it names no priority */
export function parsePriority(value: string | string[] | undefined): Priority | undefined {
  if (value === undefined) return 'normal';
  const v = (Array.isArray(value) ? value.join(',') : value).trim().toLowerCase();
  return v === 'high' || v === 'normal' || v === 'low' ? v : undefined;
}

/** One endpoint's slots. `onRoom` hears every slot that frees up (and a raised limit's new room). */
export class Bulkhead {
  inUse = 0;
  #limit = Infinity;
  readonly #onRoom: (slots: number) => void;

  constructor(onRoom: (slots: number) => void) {
    this.#onRoom = onRoom;
  }

  get full(): boolean {
    return this.inUse >= this.#limit;
  }

  take(): void {
    this.inUse++;
  }

  release(): void {
    this.inUse--;
    if (this.inUse < this.#limit && this.#limit !== Infinity) this.#onRoom(1);
  }

  /** a new `maxConcurrent` applies at once; attempts in flight keep counting against it */
  reconfigure(limit: number | undefined): void {
    const before = Math.max(0, this.#limit - this.inUse);
    this.#limit = limit ?? Infinity;
    const room = Math.max(0, this.#limit - this.inUse);
    if (room > before) this.#onRoom(room === Infinity ? Infinity : room - before);
  }

  describe(): { inUse: number; limit: number | null } {
    return { inUse: this.inUse, limit: this.#limit === Infinity ? null : this.#limit };
  }
}

/** How a wait in the queue ended: a turn (go and try again), or a refusal. */
export type QueueExit = 'turn' | 'queue_full' | 'queue_timeout' | 'cancelled';

/**
 * One request's place in the queue, made the first time it has to wait and kept across waits:
 * it re-enters at its original place, and `maxWait` counts from its first entry.
 */
export class Waiter {
  readonly priority: Priority;
  readonly rank: number;
  readonly seq: number;
  readonly enteredAt: number;
  readonly expiresAt: number;
  /** is any endpoint that could serve this request no longer busy (free now, or open/held)? */
  readonly ready: (now: number) => boolean;
  /** when room is expected for it (Infinity: when something is released) */
  at = Infinity;
  /** it was given a turn and has not used it yet: a request that leaves with one passes it on */
  hasTurn = false;
  readonly #queue: AdmissionQueue;
  readonly #clock: Clock;
  #resolve: ((exit: QueueExit) => void) | undefined;
  #signal: AbortSignal | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onAbort = () => this.#queue.leave(this, 'cancelled');
  #onExpire = () => {
    const left = this.expiresAt - this.#clock.now();
    if (left > 0) this.#timer = this.#clock.setTimeout(this.#onExpire, Math.min(left, MAX_TIMER_MS));
    else this.#queue.leave(this, 'queue_timeout');
  };

  constructor(queue: AdmissionQueue, clock: Clock, priority: Priority, seq: number, enteredAt: number, expiresAt: number, ready: (now: number) => boolean) {
    this.#queue = queue;
    this.#clock = clock;
    this.priority = priority;
    this.rank = RANK[priority];
    this.seq = seq;
    this.enteredAt = enteredAt;
    this.expiresAt = expiresAt;
    this.ready = ready;
  }

  get waiting(): boolean {
    return this.#resolve !== undefined;
  }

  /** starts one wait: the expiry timer and the app's abort */
  park(resolve: (exit: QueueExit) => void, signal: AbortSignal): void {
    this.#resolve = resolve;
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = this.#clock.setTimeout(this.#onExpire, Math.min(Math.max(0, this.expiresAt - this.#clock.now()), MAX_TIMER_MS));
  }

  /** ends the wait (once): clears what park() set and hands the exit to the request */
  finish(exit: QueueExit): void {
    const resolve = this.#resolve;
    if (!resolve) return;
    this.#resolve = undefined;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
    resolve(exit);
  }
}

export interface QueueConfig {
  maxSize: number;
  maxWaitMs: number;
}

/** One upstream's waiters; kept across config swaps (by upstream name), like the retry budget. */
export class AdmissionQueue {
  readonly #clock: Clock;
  /** waiting requests by priority rank, each list in arrival order */
  readonly #lists: [Waiter[], Waiter[], Waiter[]] = [[], [], []];
  #size = 0;
  #seq = 0;
  #config: QueueConfig;
  /** the one timer for rate limits' finite `at`s, and when it fires */
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;
  readonly #depth: { set(v: number): void };
  readonly #waited: readonly { observe(v: number): void }[];
  readonly #shed: { queue_full: { inc(): void }; queue_timeout: { inc(): void } };
  #onTimer = () => this.#timerFired();
  /** bound once: gates call it when room may have appeared */
  readonly wake = (slots = 1): void => this.#wake(slots);

  constructor(upstream: string, config: QueueConfig, clock: Clock, metrics: Metrics) {
    this.#clock = clock;
    this.#config = config;
    this.#depth = metrics.queueDepth.labels(upstream);
    this.#depth.set(0);
    this.#waited = PRIORITIES.map((p) => metrics.queueWait.labels(upstream, p));
    this.#shed = { queue_full: metrics.shed.labels(upstream, 'queue_full'), queue_timeout: metrics.shed.labels(upstream, 'queue_timeout') };
  }

  get depth(): number {
    return this.#size;
  }

  get config(): QueueConfig {
    return this.#config;
  }

  /** a smaller maxSize sheds the excess at once (lowest priority, newest first); maxWait applies to new waiters */
  reconfigure(config: QueueConfig): void {
    this.#config = config;
    while (this.#size > config.maxSize) {
      const victim = this.#worst();
      if (!victim) break;
      this.leave(victim, 'queue_full');
    }
  }

  /** a place for a request that has to wait; `ready` tells whether room has appeared for it */
  waiter(priority: Priority, deadline: number, ready: (now: number) => boolean): Waiter {
    const now = this.#clock.now();
    return new Waiter(this, this.#clock, priority, ++this.#seq, now, Math.min(deadline, now + this.#config.maxWaitMs), ready);
  }

  /** Waits for room (at the waiter's place), until its expiry, a shed or the app's disconnect. */
  wait(w: Waiter, at: number, signal: AbortSignal): Promise<QueueExit> {
    const now = this.#clock.now();
    if (signal.aborted) return Promise.resolve('cancelled');
    if (now >= w.expiresAt) return Promise.resolve(this.#refuse(w, 'queue_timeout', now));
    if (this.#size >= this.#config.maxSize) {
      const victim = this.#worst();
      if (!victim || victim.rank < w.rank || (victim.rank === w.rank && victim.seq < w.seq)) return Promise.resolve(this.#refuse(w, 'queue_full', now));
      this.leave(victim, 'queue_full');
    }
    w.at = at;
    w.hasTurn = false;
    const list = this.#lists[w.rank]!;
    let i = list.length;
    while (i > 0 && list[i - 1]!.seq > w.seq) i--; // a returning waiter goes back to its place
    list.splice(i, 0, w);
    this.#size++;
    this.#depth.set(this.#size);
    if (at < this.#wakeAt && at < w.expiresAt) this.#armTimer(at, now);
    return new Promise<QueueExit>((resolve) => w.park(resolve, signal));
  }

  /** takes a waiter out of the queue and ends its wait with `exit` (no-op when it is not waiting) */
  leave(w: Waiter, exit: QueueExit): void {
    if (!w.waiting) return;
    const list = this.#lists[w.rank]!;
    const i = list.indexOf(w);
    if (i >= 0) {
      list.splice(i, 1);
      this.#size--;
      this.#depth.set(this.#size);
    }
    const now = this.#clock.now();
    this.#waited[w.rank]!.observe((now - w.enteredAt) / 1000);
    if (exit === 'queue_full' || exit === 'queue_timeout') this.#shed[exit].inc();
    if (exit === 'turn') w.hasTurn = true;
    w.finish(exit);
  }

  /** per priority, for /debug/state */
  describe(): { depth: number; maxSize: number; maxWaitMs: number; waiting: Record<Priority, number> } {
    const [high, normal, low] = this.#lists;
    return { depth: this.#size, maxSize: this.#config.maxSize, maxWaitMs: this.#config.maxWaitMs, waiting: { high: high.length, normal: normal.length, low: low.length } };
  }

  /** Room appeared for `slots` more requests: the first waiters (by priority, then age) it may serve get a turn. */
  #wake(slots: number): void {
    if (this.#size === 0) return;
    const now = this.#clock.now();
    for (const list of this.#lists) {
      for (let i = 0; i < list.length && slots > 0; ) {
        const w = list[i]!;
        if (w.ready(now)) {
          this.leave(w, 'turn');
          slots--;
        } else i++;
      }
    }
  }

  /** a rate limit's `at` passed: every waiter whose room was expected by now and that may go gets a turn */
  #timerFired(): void {
    this.#wakeTimer = undefined;
    this.#wakeAt = Infinity;
    const now = this.#clock.now();
    let next = Infinity;
    for (const list of this.#lists) {
      for (let i = 0; i < list.length; ) {
        const w = list[i]!;
        if (w.at <= now && w.ready(now)) {
          this.leave(w, 'turn');
          continue;
        }
        if (w.at > now && w.at < w.expiresAt) next = Math.min(next, w.at);
        i++;
      }
    }
    if (next !== Infinity) this.#armTimer(next, now);
  }

  #armTimer(at: number, now: number): void {
    this.#clock.clearTimeout(this.#wakeTimer);
    this.#wakeAt = at;
    this.#wakeTimer = this.#clock.setTimeout(this.#onTimer, Math.min(Math.max(1, at - now), MAX_TIMER_MS));
  }

  /** the waiter a full queue sheds first: the newest of the lowest priority */
  #worst(): Waiter | undefined {
    for (let r = this.#lists.length - 1; r >= 0; r--) {
      const list = this.#lists[r]!;
      if (list.length > 0) return list[list.length - 1];
    }
    return undefined;
  }

  #refuse(w: Waiter, exit: 'queue_full' | 'queue_timeout', now: number): QueueExit {
    this.#waited[w.rank]!.observe((now - w.enteredAt) / 1000);
    this.#shed[exit].inc();
    return exit;
  }
}
