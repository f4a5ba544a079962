// Time and timers, injected. The default reads the globals at call time, so vitest's fake
// timers (which replace performance, Date and setTimeout) drive breakers, backoff and ramps in
// unit tests.
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
