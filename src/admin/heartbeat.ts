// The one background timer of the admin side. Liveness (is the loop turning), the dashboard's
// sampler and readiness's backstop all ride on it, so an idle sidecar wakes about once a second
// instead of ~130 times (a sidecar's idle cost is paid in every pod). It runs on the injected
// Clock, so tests drive it on virtual time; consumers add and remove themselves, and stop()
// clears its one timer.
import { every, type Clock, type Ticker } from '../clock.ts';

/** the default period: coarse enough to be free, fine enough for probes that run every few seconds */
export const HEARTBEAT_MS = 1_000;

export type Beat = (now: number) => void;

export class Heartbeat {
  readonly clock: Clock;
  readonly periodMs: number;
  readonly #beats = new Set<Beat>();
  readonly #onError: (err: unknown) => void;
  #ticker: Ticker | undefined;

  constructor(clock: Clock, periodMs = HEARTBEAT_MS, onError: (err: unknown) => void = () => undefined) {
    this.clock = clock;
    this.periodMs = periodMs;
    this.#onError = onError;
  }

  get running(): boolean {
    return this.#ticker !== undefined;
  }

  /** calls beat(now) on every tick while started; returns the function that removes it */
  add(beat: Beat): () => void {
    this.#beats.add(beat);
    return () => void this.#beats.delete(beat);
  }

  start(): void {
    this.#ticker ??= every(this.clock, this.periodMs, (now) => {
      // one consumer's failure must not starve the others (liveness above all)
      for (const beat of this.#beats) {
        try {
          beat(now);
        } catch (err) {
          this.#onError(err);
        }
      }
    });
  }

  stop(): void {
    this.#ticker?.stop();
    this.#ticker = undefined;
  }
}
