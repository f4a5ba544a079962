// Liveness: is Breakwater's own event loop turning? A ticker measures how late each tick runs
// (timer drift = event-loop delay). /livez fails when a recent tick ran more than maxDelayMs
// late, or when the loop has not ticked for that long. A request that waited behind a blocked
// loop is answered after it unblocks, so the stall must be remembered for a short window;
// providers never enter into it. perf_hooks' monitorEventLoopDelay adds percentiles for humans.
import { monitorEventLoopDelay } from 'node:perf_hooks';

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;

export interface LivenessOptions {
  /** a tick later than this fails the probe; default 2000 ms */
  maxDelayMs?: number;
  /** how long a stall keeps failing the probe after it ends; default 5000 ms */
  windowMs?: number;
  /** ticker period; default 100 ms */
  intervalMs?: number;
}

export interface LivenessReport {
  live: boolean;
  reason: string;
  /** worst tick delay within the window (ms), the running stall included */
  maxDelayMs: number;
  thresholdMs: number;
  windowMs: number;
  /** perf_hooks percentiles since start (ms) */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

export class Liveness {
  readonly maxDelayMs: number;
  readonly windowMs: number;
  readonly intervalMs: number;
  #lastTick = performance.now();
  /** (tick time, delay) of ticks that ran late, newest last */
  #late: { at: number; delay: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #histogram: IntervalHistogram;

  constructor(options: LivenessOptions = {}) {
    this.maxDelayMs = options.maxDelayMs ?? 2000;
    this.windowMs = options.windowMs ?? 5000;
    this.intervalMs = options.intervalMs ?? 100;
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
  }

  start(): void {
    if (this.#timer) return;
    this.#histogram.enable();
    this.#lastTick = performance.now();
    const tick = (): void => {
      const now = performance.now();
      const delay = now - this.#lastTick - this.intervalMs;
      this.#lastTick = now;
      if (delay > this.maxDelayMs / 4) this.#late.push({ at: now, delay });
      while (this.#late.length > 0 && now - this.#late[0]!.at > this.windowMs) this.#late.shift();
      this.#timer = setTimeout(tick, this.intervalMs);
      this.#timer.unref();
    };
    this.#timer = setTimeout(tick, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#histogram.disable();
  }

  check(): LivenessReport {
    const now = performance.now();
    const running = this.#timer ? now - this.#lastTick - this.intervalMs : 0;
    let worst = Math.max(0, running);
    for (const late of this.#late) if (now - late.at <= this.windowMs) worst = Math.max(worst, late.delay);
    const live = worst <= this.maxDelayMs;
    const h = this.#histogram;
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    return {
      live,
      reason: live
        ? 'event loop is turning'
        : `event loop stalled for ${Math.round(worst)}ms (limit ${this.maxDelayMs}ms) within the last ${this.windowMs}ms`,
      maxDelayMs: Math.round(worst),
      thresholdMs: this.maxDelayMs,
      windowMs: this.windowMs,
      eventLoopDelay: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
    };
  }
}
