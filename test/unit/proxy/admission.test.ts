// Admission on virtual time: the priority queue on its own (order, shedding, expiry, the app
// leaving, wake-ups at a rate limit's `at`), then bulkheads and the queue inside the attempt loop
// against scripted endpoints (test/support/loop.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { AdmissionQueue, Bulkhead, parsePriority, type Priority, type QueueExit } from '../../../src/proxy/admission.ts';
import type { Answer } from '../../../src/proxy/attempt.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { fail, loopRig, ok, settle, upstream } from '../../support/loop.ts';

const T0 = 1_700_000_000_000;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A queue whose waiters may go only while `room.free > 0` (each turn takes one). */
function queueRig(config = { maxSize: 10, maxWaitMs: 5_000 }) {
  const metrics = createMetrics();
  const queue = new AdmissionQueue('u', config, systemClock, metrics);
  const room = { free: 0 };
  const exits: { name: string; exit: QueueExit; at: number }[] = [];
  const enter = (name: string, priority: Priority, options: { deadline?: number; at?: number; signal?: AbortSignal } = {}) => {
    const w = queue.waiter(priority, options.deadline ?? Infinity, () => room.free > 0);
    const p = queue.wait(w, options.at ?? Infinity, options.signal ?? new AbortController().signal).then((exit) => {
      if (exit === 'turn') room.free--;
      exits.push({ name, exit, at: Date.now() - T0 });
      return exit;
    });
    return { w, p };
  };
  /** frees n slots and wakes the queue, as a bulkhead release does */
  const release = async (n = 1) => {
    room.free += n;
    queue.wake(n);
    await vi.advanceTimersByTimeAsync(0);
  };
  const metric = async (name: 'queueDepth' | 'shed', labels: Record<string, string> = {}) => {
    const { values } = await metrics[name].get();
    return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
  };
  return { queue, room, exits, enter, release, metric, metrics };
}

describe('the priority queue', () => {
  it('gives turns to the highest priority first and in arrival order within a priority', async () => {
    const q = queueRig();
    q.enter('low-1', 'low');
    q.enter('normal-1', 'normal');
    q.enter('high-1', 'high');
    q.enter('low-2', 'low');
    q.enter('high-2', 'high');
    q.enter('normal-2', 'normal');
    expect(q.queue.describe().waiting).toEqual({ high: 2, normal: 2, low: 2 });
    for (let i = 0; i < 6; i++) await q.release();
    expect(q.exits.map((e) => e.name)).toEqual(['high-1', 'high-2', 'normal-1', 'normal-2', 'low-1', 'low-2']);
    expect(q.exits.every((e) => e.exit === 'turn')).toBe(true);
    expect(q.queue.depth).toBe(0);
    expect(await q.metric('queueDepth')).toBe(0);
  });

  it('wakes as many waiters as slots were freed at once, and no more', async () => {
    const q = queueRig();
    for (let i = 0; i < 5; i++) q.enter(`w${i}`, 'normal');
    await q.release(3);
    expect(q.exits.map((e) => e.name)).toEqual(['w0', 'w1', 'w2']);
    expect(q.queue.depth).toBe(2);
  });

  it('a waiter that finds no room after its turn goes back to its own place, ahead of later arrivals', async () => {
    const q = queueRig();
    const first = q.enter('first', 'normal');
    q.enter('second', 'normal');
    q.room.free = 1;
    q.queue.wake();
    expect(await first.p).toBe('turn');
    q.room.free = 0; // someone else took the slot before it could
    const again = q.queue.wait(first.w, Infinity, new AbortController().signal);
    q.enter('third', 'normal');
    q.room.free = 1;
    q.queue.wake();
    expect(await again).toBe('turn');
    expect(q.queue.describe().waiting.normal).toBe(2);
  });

  it('a full queue sheds the newest of the lowest priority: a higher newcomer evicts it, an equal or lower newcomer is refused', async () => {
    const q = queueRig({ maxSize: 3, maxWaitMs: 5_000 });
    q.enter('normal-1', 'normal');
    q.enter('low-1', 'low');
    q.enter('low-2', 'low');
    const refusedLow = q.enter('low-3', 'low');
    expect(await refusedLow.p).toBe('queue_full');
    const high = q.enter('high-1', 'high');
    await vi.advanceTimersByTimeAsync(0);
    expect(q.exits.find((e) => e.name === 'low-2')?.exit).toBe('queue_full');
    q.enter('high-2', 'high');
    await vi.advanceTimersByTimeAsync(0);
    expect(q.exits.find((e) => e.name === 'low-1')?.exit).toBe('queue_full');
    // no low left: the lowest present is normal; a normal newcomer is refused, a high one evicts normal-1
    expect(await q.enter('normal-2', 'normal').p).toBe('queue_full');
    q.enter('high-3', 'high');
    await vi.advanceTimersByTimeAsync(0);
    expect(q.exits.find((e) => e.name === 'normal-1')?.exit).toBe('queue_full');
    expect(q.queue.describe().waiting).toEqual({ high: 3, normal: 0, low: 0 });
    // every high waiter is still there and is served
    await q.release(3);
    expect(await high.p).toBe('turn');
    expect(q.exits.filter((e) => e.name.startsWith('high')).map((e) => e.exit)).toEqual(['turn', 'turn', 'turn']);
    expect(await q.metric('shed', { reason: 'queue_full' })).toBe(5);
  });

  it('maxSize 0 refuses at once', async () => {
    const q = queueRig({ maxSize: 0, maxWaitMs: 5_000 });
    expect(await q.enter('h', 'high').p).toBe('queue_full');
  });

  it('a waiter gives up at maxWait after it first entered, or at its deadline when that is sooner', async () => {
    const q = queueRig({ maxSize: 10, maxWaitMs: 2_000 });
    q.enter('patient', 'normal');
    q.enter('hurried', 'high', { deadline: T0 + 500 });
    await vi.advanceTimersByTimeAsync(499);
    expect(q.exits).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.exits).toEqual([{ name: 'hurried', exit: 'queue_timeout', at: 500 }]);
    await vi.advanceTimersByTimeAsync(1_499);
    expect(q.exits).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.exits[1]).toEqual({ name: 'patient', exit: 'queue_timeout', at: 2_000 });
    expect(q.queue.depth).toBe(0);
    expect(await q.metric('shed', { reason: 'queue_timeout' })).toBe(2);
  });

  it('maxWait counts from the first entry: a waiter that comes back after a turn keeps its expiry', async () => {
    const q = queueRig({ maxSize: 10, maxWaitMs: 1_000 });
    const a = q.enter('a', 'normal');
    await vi.advanceTimersByTimeAsync(800);
    await q.release();
    expect(await a.p).toBe('turn');
    const again = q.queue.wait(a.w, Infinity, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(200);
    expect(await again).toBe('queue_timeout');
    // and a waiter already past its time is refused without entering
    expect(await q.queue.wait(a.w, Infinity, new AbortController().signal)).toBe('queue_timeout');
  });

  it('an app that disconnects leaves the queue at once', async () => {
    const q = queueRig();
    const app = new AbortController();
    const gone = q.enter('gone', 'high', { signal: app.signal });
    q.enter('stays', 'low');
    expect(q.queue.depth).toBe(2);
    app.abort();
    expect(await gone.p).toBe('cancelled');
    expect(q.queue.depth).toBe(1);
    await q.release();
    expect(q.exits.map((e) => `${e.name}:${e.exit}`)).toEqual(['gone:cancelled', 'stays:turn']);
  });

  it('wakes a waiter when a rate limit\'s finite `at` passes, without any release', async () => {
    const q = queueRig();
    const limited = q.enter('limited', 'normal', { at: T0 + 300 });
    q.enter('bulkhead', 'high'); // waits for a release (at: Infinity), and has no room at 300 either
    await vi.advanceTimersByTimeAsync(299);
    expect(q.exits).toEqual([]);
    q.room.free = 1; // the bucket refilled
    await vi.advanceTimersByTimeAsync(1);
    expect(await limited.p).toBe('turn');
    expect(q.exits).toEqual([{ name: 'limited', exit: 'turn', at: 300 }]);
  });

  it('a smaller maxSize sheds the excess at once, lowest priority first', async () => {
    const q = queueRig({ maxSize: 10, maxWaitMs: 5_000 });
    q.enter('high', 'high');
    q.enter('low-1', 'low');
    q.enter('normal', 'normal');
    q.enter('low-2', 'low');
    q.queue.reconfigure({ maxSize: 2, maxWaitMs: 5_000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(q.exits.map((e) => `${e.name}:${e.exit}`)).toEqual(['low-2:queue_full', 'low-1:queue_full']);
    expect(q.queue.describe().waiting).toEqual({ high: 1, normal: 1, low: 0 });
  });
});

describe('the bulkhead', () => {
  it('is full at its limit, tells of each freed slot, and a raised limit tells of its new room at once', () => {
    const heard: number[] = [];
    const b = new Bulkhead((n) => heard.push(n));
    b.reconfigure(2);
    b.take();
    b.take();
    expect(b.full).toBe(true);
    b.reconfigure(1); // in-flight attempts keep counting
    expect(b.describe()).toEqual({ inUse: 2, limit: 1 });
    b.release();
    expect(b.full).toBe(true);
    expect(heard).toEqual([]);
    b.release();
    expect(heard).toEqual([1]);
    b.take();
    b.reconfigure(4);
    expect(heard).toEqual([1, 3]);
    b.reconfigure(undefined);
    expect(b.full).toBe(false);
    expect(b.describe().limit).toBeNull();
  });
});

describe('x-breakwater-priority', () => {
  it('defaults to normal and accepts only high, normal and low', () => {
    expect(parsePriority(undefined)).toBe('normal');
    expect(parsePriority('HIGH')).toBe('high');
    expect(parsePriority(' low ')).toBe('low');
    expect(parsePriority('urgent')).toBeUndefined();
    expect(parsePriority('')).toBeUndefined();
  });
});


describe('bulkheads and the queue in the attempt loop', () => {
  it('never sends more than maxConcurrent attempts to an endpoint; the surplus fails over, then waits, and nothing is charged', async () => {
    const rig = loopRig(upstream({ endpoints: 2, each: { maxConcurrent: 2 }, queue: { maxSize: 20, maxWait: '10s' } }), () => ({ after: 100, then: ok }));
    const runs = Array.from({ length: 10 }, () => rig.run().then(settle));
    await vi.advanceTimersByTimeAsync(1_000);
    const results = await Promise.all(runs);
    expect(results.every((r) => r.kind === 'answer')).toBe(true);
    expect(rig.dispatchers.get('e0')!.peak).toBe(2);
    expect(rig.dispatchers.get('e1')!.peak).toBe(2);
    expect(rig.dispatchers.get('e0')!.calls + rig.dispatchers.get('e1')!.calls).toBe(10);
    for (const e of ['e0', 'e1']) {
      expect(rig.endpoint(e).gate.slots.inUse).toBe(0);
      expect(rig.endpoint(e).breaker.window()).toMatchObject({ fires: rig.dispatchers.get(e)!.calls, failures: 0 });
      expect(rig.endpoint(e).breaker.state.kind).toBe('closed');
    }
    expect(rig.upstream.queue.depth).toBe(0);
  });

  it('serves waiters by priority as slots free up; a failed attempt frees its slot, and its retry queues like a newcomer', async () => {
    const rig = loopRig(upstream({ endpoints: 1, each: { maxConcurrent: 1 }, queue: { maxSize: 20, maxWait: '10s' } }), (_e, call) =>
      call === 0 ? { after: 100, then: fail(500) } : { after: 100, then: ok },
    );
    const order: string[] = [];
    const go = (name: string, priority: Priority) => rig.run({ priority }).then((r) => (order.push(name), settle(r)));
    const first = go('first', 'low');
    await vi.advanceTimersByTimeAsync(10);
    const rest = [go('low', 'low'), go('normal', 'normal'), go('high', 'high')];
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.upstream.queue.describe().waiting).toEqual({ high: 1, normal: 1, low: 1 });
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all([first, ...rest]);
    // first's failed attempt freed its slot for high; its retry then queued behind the earlier waiters
    expect(order).toEqual(['high', 'normal', 'low', 'first']);
    expect(rig.dispatchers.get('e0')!.peak).toBe(1);
  });

  it('sheds with queue_full and times out with queue_timeout, each with a Retry-After', async () => {
    const rig = loopRig(upstream({ endpoints: 1, each: { maxConcurrent: 1 }, queue: { maxSize: 1, maxWait: '500ms' } }), () => ({ after: 2_000, then: ok }));
    const holder = rig.run().then(settle);
    await vi.advanceTimersByTimeAsync(10);
    const waiting = rig.run({ priority: 'low' });
    await vi.advanceTimersByTimeAsync(10);
    const shed = await rig.run({ priority: 'low' });
    expect(shed).toMatchObject({ kind: 'refused', error: 'queue_full', attempts: 0, outcome: 'shed' });
    expect((shed as { retryAfterMs: number }).retryAfterMs).toBeGreaterThanOrEqual(1_000);
    await vi.advanceTimersByTimeAsync(500);
    expect(await waiting).toMatchObject({ kind: 'refused', error: 'queue_timeout', attempts: 0, outcome: 'shed' });
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await holder).kind).toBe('answer');
    expect(rig.dispatchers.get('e0')!.calls).toBe(1);
  });

  it('a waiter whose app disconnects returns cancelled at once and sends nothing', async () => {
    const rig = loopRig(upstream({ endpoints: 1, each: { maxConcurrent: 1 } }), () => ({ after: 1_000, then: ok }));
    const holder = rig.run().then(settle);
    await vi.advanceTimersByTimeAsync(10);
    const app = new AbortController();
    const waiter = rig.run({ appSignal: app.signal });
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.upstream.queue.depth).toBe(1);
    app.abort();
    expect(await waiter).toEqual({ kind: 'cancelled' });
    expect(rig.upstream.queue.depth).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    await holder;
    expect(rig.dispatchers.get('e0')!.calls).toBe(1);
  });

  it('a raised maxConcurrent applies at once and wakes waiters; a lowered one lets in-flight attempts finish', async () => {
    const doc = upstream({ endpoints: 1, each: { maxConcurrent: 1 }, queue: { maxSize: 20, maxWait: '10s' } });
    const rig = loopRig(doc, () => ({ after: 1_000, then: ok }));
    const runs = Array.from({ length: 4 }, () => rig.run().then(settle));
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.dispatchers.get('e0')!.inflight).toBe(1);
    const { compileUpstream } = await import('../../../src/config/compile.ts');
    const { Secret } = await import('../../../src/config/runtime.ts');
    const raised = upstream({ endpoints: 1, each: { maxConcurrent: 3 }, queue: { maxSize: 20, maxWait: '10s' } });
    rig.runtime.apply([compileUpstream(raised, () => new Secret('sk-test'))], 'test');
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.dispatchers.get('e0')!.inflight).toBe(3);
    expect(rig.upstream.queue.depth).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect((await Promise.all(runs)).every((r) => r.kind === 'answer')).toBe(true);
    expect(rig.dispatchers.get('e0')!.peak).toBe(3);
  });

  it('a turn the woken request cannot use (its retry budget is spent) passes to the next waiter at once', async () => {
    const doc = upstream({ endpoints: 1, each: { maxConcurrent: 1 }, retry: { budget: { ratio: 0, minPerSecond: 0 } }, queue: { maxSize: 20, maxWait: '10s' } });
    const rig = loopRig(doc, (_e, call) => (call === 0 ? { after: 100, then: fail(500) } : { after: 1_000, then: ok }));
    const finished: string[] = [];
    const go = (name: string) => rig.run().then((r) => (finished.push(`${name}:${r.kind}@${Date.now() - T0}`), settle(r)));
    const retrier = go('retrier'); // fails on e0 at 100, then waits to retry the same endpoint
    await vi.advanceTimersByTimeAsync(10);
    const holder = go('holder'); // waits, then holds e0 from 100 to 1100
    await vi.advanceTimersByTimeAsync(190);
    const third = go('third'); // waits behind the retrier
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.upstream.queue.depth).toBe(2);
    await vi.advanceTimersByTimeAsync(12_000); // past maxWait: a lost turn shows as the third's queue_timeout
    await Promise.all([retrier, holder, third]);
    // at 1100 the retrier's turn finds its budget spent: it gives up and the third goes at once
    expect(finished).toEqual(['holder:answer@1100', 'retrier:provider_error@1100', 'third:answer@2100']);
  });

  it('a waiter is also woken when another endpoint\'s wait ends (a provider\'s Retry-After), not only by a release', async () => {
    const rig = loopRig(upstream({ endpoints: 2, each: { maxConcurrent: 1 }, queue: { maxSize: 20, maxWait: '10s' } }), (e, call) => {
      if (e === 'e0') return { after: 5_000, then: ok };
      return call === 0 ? fail(429, { 'retry-after': '1' }, '{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}') : ok;
    });
    const holder = rig.run().then(settle);
    await vi.advanceTimersByTimeAsync(10);
    let done: string | undefined;
    const waiter = rig.run().then((r) => {
      done = `${r.kind}@${Date.now() - T0}`;
      return settle(r);
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.upstream.queue.depth).toBe(1); // e0 full, e1 held for the provider's second
    await vi.advanceTimersByTimeAsync(1_000);
    expect(done).toBe('answer@1010');
    expect(((await waiter) as Answer).attempt.endpoint.name).toBe('e1');
    await vi.advanceTimersByTimeAsync(5_000);
    await holder;
  });

  it('a reload that removes the endpoint a request waits for answers it at once instead of at maxWait', async () => {
    const rig = loopRig(upstream({ endpoints: 1, each: { maxConcurrent: 1 }, queue: { maxSize: 20, maxWait: '10s' } }), () => ({ after: 5_000, then: ok }));
    const holder = rig.run().then(settle);
    await vi.advanceTimersByTimeAsync(10);
    const waiter = rig.run();
    await vi.advanceTimersByTimeAsync(10);
    expect(rig.upstream.queue.depth).toBe(1);
    const { compileUpstream } = await import('../../../src/config/compile.ts');
    const { Secret } = await import('../../../src/config/runtime.ts');
    const moved = upstream({ endpoints: 1, each: { url: 'http://127.0.0.1:9/e0-moved', maxConcurrent: 1 }, queue: { maxSize: 20, maxWait: '10s' } });
    rig.runtime.apply([compileUpstream(moved, () => new Secret('sk-test'))], 'test');
    await vi.advanceTimersByTimeAsync(0);
    expect(await waiter).toMatchObject({ kind: 'refused', error: 'breaker_open', attempts: 0 });
    expect(rig.upstream.queue.depth).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    await holder;
  });
});
