// The file source's debounce on virtual time (vitest's fake timers drive systemClock).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { debounce } from '../../../src/config/sources/debounce.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('debounce', () => {
  it('a burst of triggers runs once, the quiet time after the last one', () => {
    const fn = vi.fn();
    const d = debounce(systemClock, 250, fn);
    d.trigger();
    vi.advanceTimersByTime(200);
    d.trigger();
    vi.advanceTimersByTime(200);
    d.trigger();
    vi.advanceTimersByTime(249);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('triggers after a run start a new wait', () => {
    const fn = vi.fn();
    const d = debounce(systemClock, 250, fn);
    d.trigger();
    vi.advanceTimersByTime(250);
    d.trigger();
    vi.advanceTimersByTime(250);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('cancel() drops a pending run', () => {
    const fn = vi.fn();
    const d = debounce(systemClock, 250, fn);
    d.trigger();
    d.cancel();
    vi.advanceTimersByTime(1_000);
    expect(fn).not.toHaveBeenCalled();
  });
});
