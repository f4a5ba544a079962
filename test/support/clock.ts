// A clock that moves only when a test says so, and whose timers never fire: for logic that
// reads the time lazily (a breaker whose open time has passed before its timer ran, a rate
// limit on log lines). Everything timer-driven uses vitest's fake timers with systemClock.
import type { Clock } from '../../src/clock.ts';

export function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    wallNow: () => now,
    advance: (ms) => void (now += ms),
    setTimeout: () => ({ refresh() { return this; }, unref() { return this; } }) as unknown as NodeJS.Timeout,
    clearTimeout: () => undefined,
    sleep: () => Promise.resolve(),
  };
}
