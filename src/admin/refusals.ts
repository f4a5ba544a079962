// The "refused a non-loopback peer" warning, bounded. Anyone who can reach the admin port can
// provoke it, so one line per interval at most (with a count of the ones left out), and every
// value the peer chose (path, X-Forwarded-For) cut short: a flood of refusals cannot flood the
// log, and a 10 KB path cannot make a 10 KB line.
import type { Clock } from '../clock.ts';
import type { Logger } from '../telemetry/log.ts';

export const REFUSAL_LOG_EVERY_MS = 10_000;
export const MAX_LOGGED_CHARS = 128;

export function clip(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = Array.isArray(value) ? value.join(', ') : value;
  return s.length > MAX_LOGGED_CHARS ? `${s.slice(0, MAX_LOGGED_CHARS)}…(${s.length} chars)` : s;
}

export class RefusalLog {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #everyMs: number;
  #lastAt = -Infinity;
  #suppressed = 0;

  constructor(log: Logger, clock: Clock, everyMs = REFUSAL_LOG_EVERY_MS) {
    this.#log = log;
    this.#clock = clock;
    this.#everyMs = everyMs;
  }

  refused(peer: string | undefined, path: string, forwardedFor: string | string[] | undefined): void {
    const now = this.#clock.now();
    if (now - this.#lastAt < this.#everyMs) {
      this.#suppressed++;
      return;
    }
    this.#lastAt = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#log.warn({ peer: clip(peer), path: clip(path), forwardedFor: clip(forwardedFor), suppressed }, 'admin: refused a non-loopback peer');
  }
}
