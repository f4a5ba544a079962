// The work queue on virtual time: one sync per key at a time, a key added during its sync runs
// again afterwards, a throwing sync is retried with growing backoff, a requeue value runs the
// key again after its delay, and stop() cancels what is pending.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue, type SyncResult } from '../../../src/kube/queue.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('work queue', () => {
  it('never runs a key twice at once; an add during its sync runs it once more afterwards', async () => {
    const runs: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new WorkQueue(async (key) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runs.push(key);
      await new Promise((r) => setTimeout(r, 100));
      inFlight--;
    }, silentLogger);
    q.add('a');
    q.add('a');
    await vi.advanceTimersByTimeAsync(50);
    q.add('a');
    q.add('a');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs).toEqual(['a', 'a']);
    expect(maxInFlight).toBe(1);
    q.stop();
  });

  it('retries a throwing sync with exponential backoff, and forgets the failures after a success', async () => {
    const at: number[] = [];
    let failuresLeft = 3;
    const start = Date.now();
    const q = new WorkQueue(async () => {
      at.push(Date.now() - start);
      if (failuresLeft-- > 0) throw new Error('API server away');
    }, silentLogger);
    q.add('k');
    await vi.advanceTimersByTimeAsync(10_000);
    // backoffMs(n, 500) with random 0.5: 3/4 of 500, 1000, 2000
    expect(at).toEqual([0, 375, 375 + 750, 375 + 750 + 1_500]);
    q.stop();
  });

  it('runs a key again after the delay its sync asks for', async () => {
    const at: number[] = [];
    const start = Date.now();
    const results: SyncResult[] = [{ requeueAfterMs: 1_000 }, undefined];
    const q = new WorkQueue(async () => {
      at.push(Date.now() - start);
      return results.shift();
    }, silentLogger);
    q.add('k');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(at).toEqual([0, 1_000]);
    q.stop();
  });

  it('runs nothing after stop, retries included', async () => {
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      throw new Error('fails');
    }, silentLogger);
    q.add('k');
    await vi.advanceTimersByTimeAsync(1);
    q.stop();
    q.add('k');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toBe(1);
  });
});
