// Liveness: is Breakwater's own event loop turning? It rides on the admin heartbeat (one coarse
// ticker, heartbeat.ts) and measures how late each beat runs (timer drift = event-loop delay).
// /livez fails when a recent beat ran more than maxDelayMs late, or when the loop has not beaten
// for that long. A request that waited behind a blocked loop is answered after it unblocks, so
// the stall must be remembered for a short window; providers never enter into it. A stall of
// S ms shows as a delay of at least S minus the beat period (it may have begun just after a
// beat), so the period stays well under maxDelayMs. The percentiles for humans come from the
// same beats (no 20 ms perf_hooks histogram: it woke the process 50 times a second).
import type { Heartbeat } from './heartbeat.ts';

export interface LivenessOptions {
  /** a beat later than this fails the probe; default 2000 ms */
  maxDelayMs?: number;
  /** how long a stall keeps failing the probe after it ends; default 5000 ms */
  windowMs?: number;
}

export interface LivenessReport {
  live: boolean;
  reason: string;
  /** worst beat delay within the window (ms), the running stall included */
  maxDelayMs: number;
  thresholdMs: number;
  windowMs: number;
  /** beat delays over the last DELAY_SAMPLES beats (ms) */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

/** beat delays kept for the percentiles: five minutes at the default period */
export const DELAY_SAMPLES = 300;

export class Liveness {
  readonly maxDelayMs: number;
  readonly windowMs: number;
  readonly #heartbeat: Heartbeat;
  #lastBeat = 0;
  /** (beat time, delay) of beats that ran late, newest last */
  #late: { at: number; delay: number }[] = [];
  /** a ring of the last DELAY_SAMPLES delays */
  #delays = new Float64Array(DELAY_SAMPLES);
  #count = 0;
  #remove: (() => void) | undefined;

  constructor(heartbeat: Heartbeat, options: LivenessOptions = {}) {
    this.#heartbeat = heartbeat;
    this.maxDelayMs = options.maxDelayMs ?? 2000;
    this.windowMs = options.windowMs ?? 5000;
  }

  get intervalMs(): number {
    return this.#heartbeat.periodMs;
  }

  start(): void {
    if (this.#remove) return;
    this.#lastBeat = this.#heartbeat.clock.now();
    this.#remove = this.#heartbeat.add((now) => this.#beat(now));
  }

  stop(): void {
    this.#remove?.();
    this.#remove = undefined;
  }

  check(): LivenessReport {
    const now = this.#heartbeat.clock.now();
    const watching = this.#remove !== undefined && this.#heartbeat.running;
    const running = watching ? now - this.#lastBeat - this.intervalMs : 0;
    let worst = Math.max(0, running);
    for (const late of this.#late) if (now - late.at <= this.windowMs) worst = Math.max(worst, late.delay);
    const live = worst <= this.maxDelayMs;
    return {
      live,
      reason: live
        ? 'event loop is turning'
        : `event loop stalled for ${Math.round(worst)}ms (limit ${this.maxDelayMs}ms) within the last ${this.windowMs}ms`,
      maxDelayMs: Math.round(worst),
      thresholdMs: this.maxDelayMs,
      windowMs: this.windowMs,
      eventLoopDelay: this.#percentiles(),
    };
  }

  #beat(now: number): void {
    const delay = Math.max(0, now - this.#lastBeat - this.intervalMs);
    this.#lastBeat = now;
    this.#delays[this.#count % DELAY_SAMPLES] = delay;
    this.#count++;
    if (delay > this.maxDelayMs / 4) this.#late.push({ at: now, delay });
    while (this.#late.length > 0 && now - this.#late[0]!.at > this.windowMs) this.#late.shift();
  }

  #percentiles(): LivenessReport['eventLoopDelay'] {
    const n = Math.min(this.#count, DELAY_SAMPLES);
    if (n === 0) return { p50: 0, p99: 0, max: 0 };
    const sorted = this.#delays.slice(0, n).sort();
    const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]! * 100) / 100;
    return { p50: at(0.5), p99: at(0.99), max: at(1) };
  }
}
