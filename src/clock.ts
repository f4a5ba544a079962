// Time and timers, injected. The default reads the globals at call time, so vitest's fake
// timers (which replace performance, Date and setTimeout) drive breakers, backoff and ramps in
// unit tests. `every` builds a ticker on any Clock's setTimeout, so periodic work runs on
// virtual time too.
export interface Clock {
  /**
   * Monotonic milliseconds on the epoch's scale (the process start's wall time plus the time
   * since): deadlines, holds, breaker timing and every duration read this, so a wall-clock jump
   * (NTP, a VM resumed) neither ends a hold early nor stretches a deadline.
   */
  now(): number;
  /** Wall-clock milliseconds: only for timestamps shown to people and HTTP dates, never for durations. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
  /** resolves after ms, or rejects with the signal's reason when it aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

export interface Ticker {
  /** no further ticks; the pending timer is cleared */
  stop(): void;
}

/**
 * Calls fn(now) every `ms` on the clock's timers (unref'd: a ticker never keeps the process
 * alive). Each tick schedules the next from when it ran, so a stalled loop delays the ticks
 * rather than bunching them up; fn sees how late it runs by comparing now with the last tick.
 */
export function every(clock: Clock, ms: number, fn: (now: number) => void): Ticker {
  if (!(ms > 0)) throw new RangeError(`ticker period must be positive, got ${ms}`);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    timer = clock.setTimeout(tick, ms);
    timer.unref?.();
  };
  const tick = (): void => {
    if (stopped) return;
    schedule();
    fn(clock.now());
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
