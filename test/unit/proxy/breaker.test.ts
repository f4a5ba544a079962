// The per-endpoint breaker on virtual time: opossum's window decides when to open; Breaker adds
// the half-open ramp, provider holds, epochs for stale tickets, admin actions and transition events.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { manualClock } from '../../support/clock.ts';
import type { BreakerConfig } from '../../../src/config/runtime.ts';
import { Breaker, type BreakerState, type Ticket, type Transition } from '../../../src/proxy/breaker.ts';

const T0 = 1_700_000_000_000;
const OPEN_MS = 30_000;

function config(patch: Partial<BreakerConfig> = {}): BreakerConfig {
  return {
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    consecutiveFailures: 0, // these tests pin the window's rate; consecutive failures are tested on their own
    key: 'test',
    rollingWindowMs: 30_000,
    openDurationMs: OPEN_MS,
    halfOpenRamp: [1, 5, 10],
    failOn: new Set(['throttled', 'server_error', 'timeout', 'connect', 'invalid_response']),
    ...patch,
  };
}

let breakers: Breaker[];
let transitions: string[];

function make(patch: Partial<BreakerConfig> = {}, seed?: BreakerState): Breaker {
  const b = new Breaker(config(patch), systemClock, (t: Transition) => transitions.push(`${t.from}->${t.to}: ${t.reason}`), seed, () => 0);
  breakers.push(b);
  return b;
}

/** opossum settles each fire on the microtask queue; let it. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function ticket(b: Breaker): Ticket {
  const a = b.admit();
  if (!a.admitted) throw new Error(`expected admission, breaker is ${b.state.kind}`);
  return a.ticket;
}

async function fail(b: Breaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) b.record(ticket(b), 'failure');
  await flush();
}

async function succeed(b: Breaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) b.record(ticket(b), 'success');
  await flush();
}

/** opens a default breaker through its window; returns the time it opened */
async function trip(b: Breaker): Promise<number> {
  await fail(b, 10);
  expect(b.state.kind).toBe('open');
  return Date.now();
}

/** admits as many trials as the current step allows; returns them */
function admitAll(b: Breaker): Ticket[] {
  const out: Ticket[] = [];
  for (let a = b.admit(); a.admitted; a = b.admit()) out.push(a.ticket);
  return out;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 }); // performance (the clock's monotonic source) starts at T0 too
  breakers = [];
  transitions = [];
});
afterEach(() => {
  for (const b of breakers) b.dispose();
  vi.useRealTimers();
});

describe('closed', () => {
  it('stays closed below volumeThreshold even when every call fails', async () => {
    const b = make();
    await fail(b, 9);
    expect(b.state.kind).toBe('closed');
    expect(b.window()).toEqual({ fires: 9, failures: 9, successes: 0 });
  });

  it('opens once volumeThreshold calls are in the window and the error rate is over the threshold', async () => {
    const b = make();
    await fail(b, 9);
    await fail(b, 1);
    expect(b.state).toEqual({ kind: 'open', since: T0, until: T0 + OPEN_MS, reason: 'error rate over threshold' });
    expect(transitions).toEqual(['closed->open: error rate over threshold']);
  });

  it('does not open while the error rate is at or under the threshold', async () => {
    const b = make();
    await succeed(b, 5);
    await fail(b, 5); // 50% of 10
    expect(b.state.kind).toBe('closed');
    await fail(b, 1); // 6 of 11
    expect(b.state.kind).toBe('open');
  });

  it('honours a custom threshold and volume', async () => {
    const b = make({ errorThresholdPercentage: 20, volumeThreshold: 4 });
    await succeed(b, 3);
    await fail(b, 1); // 25% of 4
    expect(b.state.kind).toBe('open');
  });

  it('opens with errorThresholdPercentage 100 when every call fails', async () => {
    const b = make({ errorThresholdPercentage: 100, volumeThreshold: 5 });
    await fail(b, 5); // the window is asked synchronously (issue 8): open at the 5th, no more admissions
    expect(b.state.kind).toBe('open');
  });

  it('stays closed under client faults, which the provider answered (success verdicts)', async () => {
    const b = make();
    await succeed(b, 50);
    expect(b.state.kind).toBe('closed');
    await fail(b, 9); // 9 of 59
    expect(b.state.kind).toBe('closed');
  });

  it('counts nothing for an ignore verdict (cancelled, account)', async () => {
    const b = make();
    await fail(b, 9);
    for (let i = 0; i < 100; i++) b.record(ticket(b), 'ignore');
    await flush();
    expect(b.window().fires).toBe(9);
    expect(b.state.kind).toBe('closed');
    await fail(b, 1);
    expect(b.state.kind).toBe('open');
  });

  it('forgets failures older than the rolling window', async () => {
    const b = make();
    await fail(b, 9);
    await vi.advanceTimersByTimeAsync(31_000);
    await fail(b, 1);
    expect(b.state.kind).toBe('closed');
  });

  it('admits every request with a non-trial ticket', () => {
    const b = make();
    const epoch = (b.admit() as { ticket: { epoch: number } }).ticket.epoch;
    for (let i = 0; i < 1000; i++) expect(b.admit()).toEqual({ admitted: true, ticket: { epoch, trial: false } });
  });

  it('never shares an epoch with another breaker, so a replaced breaker ignores old tickets', () => {
    const a = make().admit() as { ticket: { epoch: number } };
    const b = make().admit() as { ticket: { epoch: number } };
    expect(a.ticket.epoch).not.toBe(b.ticket.epoch);
  });
});

describe('open', () => {
  it('refuses admission until openDuration has passed, naming that time', async () => {
    const b = make();
    const opened = await trip(b);
    expect(b.admit()).toEqual({ admitted: false, retryAt: opened + OPEN_MS });
    expect(b.availableAt(Date.now())).toBe(opened + OPEN_MS);
    await vi.advanceTimersByTimeAsync(OPEN_MS - 1);
    expect(b.admit()).toEqual({ admitted: false, retryAt: opened + OPEN_MS });
  });

  it('goes half-open after openDuration, reported by its timer without anyone asking', async () => {
    const b = make();
    const opened = await trip(b);
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    expect(transitions).toEqual(['closed->open: error rate over threshold', 'open->halfOpen: open duration elapsed']);
    expect(b.state).toEqual({ kind: 'halfOpen', since: opened + OPEN_MS, step: 0, admitted: 0, succeeded: 0 });
    expect(b.availableAt(Date.now())).toBe(Date.now());
  });

  it('a wall-clock jump (NTP, a resumed VM) neither ends an open breaker early nor keeps it open longer: its clock is monotonic', async () => {
    const b = make();
    const opened = await trip(b);
    vi.setSystemTime(opened + 10 * OPEN_MS); // the wall clock jumps forward; monotonic time does not
    expect(b.admit()).toEqual({ admitted: false, retryAt: opened + OPEN_MS });
    vi.setSystemTime(opened - 10 * OPEN_MS); // and back
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    expect(b.state.kind).toBe('halfOpen');
  });

  it('goes half-open lazily when the clock passes the open time before the timer fires', async () => {
    const clock = manualClock(T0); // its timers never fire
    const b = new Breaker(config(), clock, (t: Transition) => transitions.push(`${t.from}->${t.to}: ${t.reason}`), undefined, () => 0);
    breakers.push(b);
    await trip(b);
    expect(b.state.kind).toBe('open');
    clock.advance(OPEN_MS + 5);
    expect(b.state.kind).toBe('open'); // reading the state moves nothing
    expect(b.admit().admitted).toBe(true);
    expect(transitions.at(-1)).toBe('open->halfOpen: open duration elapsed');
    expect(b.admit().admitted).toBe(false); // one trial slot in the first step
    expect(transitions.filter((t) => t.startsWith('open->halfOpen'))).toHaveLength(1);
  });
});

describe('half-open ramp [1, 5, 10]', () => {
  async function halfOpen(b: Breaker): Promise<void> {
    await trip(b);
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    expect(b.state.kind).toBe('halfOpen');
  }

  it('admits exactly 1, then 5 concurrent, then 10, then closes', async () => {
    const b = make();
    await halfOpen(b);

    const step0 = admitAll(b);
    expect(step0).toHaveLength(1);
    expect(step0[0]!.trial).toBe(true);
    b.record(step0[0]!, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 1, admitted: 0, succeeded: 0 });

    const step1 = admitAll(b);
    expect(step1).toHaveLength(5);
    for (const t of step1.slice(0, 4)) b.record(t, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 1, succeeded: 4 });
    expect(b.admit().admitted).toBe(false); // the step's allowance is spent until its trials pass
    b.record(step1[4]!, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 2 });

    const step2 = admitAll(b);
    expect(step2).toHaveLength(10);
    for (const t of step2) b.record(t, 'success');
    expect(b.state.kind).toBe('closed');
    expect(transitions).toEqual([
      'closed->open: error rate over threshold',
      'open->halfOpen: open duration elapsed',
      'halfOpen->closed: half-open ramp completed',
    ]);
  });

  it('beyond the step\'s allowance, admit() says no and when to ask again', async () => {
    const b = make();
    await halfOpen(b);
    expect(b.admit().admitted).toBe(true);
    expect(b.admit()).toEqual({ admitted: false, retryAt: Date.now() + 100 });
  });

  // issue 8: a re-opening after a failed half-open grows (base x n): the second opening is 2 x openDuration
  it('a failed trial reopens for twice openDuration, and the ramp starts over', async () => {
    const b = make();
    await halfOpen(b);
    b.record(admitAll(b)[0]!, 'success');
    const step1 = admitAll(b);
    b.record(step1[0]!, 'success');
    b.record(step1[1]!, 'failure');
    const reopened = Date.now();
    expect(b.state).toEqual({ kind: 'open', since: reopened, until: reopened + 2 * OPEN_MS, reason: 'half-open trial failed' });
    expect(transitions.at(-1)).toBe('halfOpen->open: half-open trial failed');

    for (const t of step1.slice(2)) b.record(t, 'success'); // the rest of that episode's trials
    expect(b.state.kind).toBe('open');

    await vi.advanceTimersByTimeAsync(2 * OPEN_MS);
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 0 });
    expect(admitAll(b)).toHaveLength(1);
  });

  it('an ignore verdict frees the trial\'s slot without advancing the ramp', async () => {
    const b = make();
    await halfOpen(b);
    const [first] = admitAll(b);
    b.record(first!, 'ignore');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 0, admitted: 0, succeeded: 0 });
    const [second] = admitAll(b);
    expect(second).toBeDefined();
    b.record(second!, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 1 });
  });

  it('a closed-state ticket that finishes during half-open neither counts as a trial nor takes a slot', async () => {
    const b = make();
    const early = ticket(b);
    await halfOpen(b);
    b.record(early, 'success');
    b.record(early, 'failure');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 0, admitted: 0, succeeded: 0 });
  });

  it('after closing, the window starts fresh: the failures that opened it do not reopen it', async () => {
    const b = make({ halfOpenRamp: [1] });
    await halfOpen(b);
    b.record(admitAll(b)[0]!, 'success');
    expect(b.state.kind).toBe('closed');
    await fail(b, 9);
    expect(b.state.kind).toBe('closed');
    expect(b.window()).toEqual({ fires: 9, failures: 9, successes: 0 });
  });
});

describe('stale tickets', () => {
  it('ignores a ticket from an earlier epoch', async () => {
    const b = make();
    const before = ticket(b);
    await trip(b);
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    const [trial] = admitAll(b);
    expect(trial!.epoch).toBeGreaterThan(before.epoch);
    b.record(before, 'failure');
    b.record(before, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 0, admitted: 1, succeeded: 0 });
    b.record(trial!, 'success');
    expect(b.state).toMatchObject({ kind: 'halfOpen', step: 1 });
  });

  it('ignores a closed-state failure that arrives after the breaker opened and closed again', async () => {
    const b = make({ halfOpenRamp: [1] });
    const inflight = Array.from({ length: 10 }, () => ticket(b));
    for (const t of inflight.slice(0, 9)) b.record(t, 'failure');
    await fail(b, 1);
    expect(b.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    b.record(admitAll(b)[0]!, 'success');
    expect(b.state.kind).toBe('closed');
    b.record(inflight[9]!, 'failure');
    await flush();
    expect(b.window().fires).toBe(0);
  });
});

describe('holds (a provider\'s Retry-After)', () => {
  it('a hold longer than openDuration keeps an open breaker open until then', async () => {
    const b = make();
    const opened = await trip(b);
    b.hold(opened + 90_000);
    expect(b.state).toMatchObject({ kind: 'open', until: opened + 90_000 });
    expect(b.admit()).toEqual({ admitted: false, retryAt: opened + 90_000 });
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    expect(b.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(90_000 - OPEN_MS - 1);
    expect(b.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state.kind).toBe('halfOpen');
    expect(transitions.filter((t) => t.startsWith('open->halfOpen'))).toHaveLength(1);
  });

  it('a hold shorter than the open time does not shorten it', async () => {
    const b = make();
    const opened = await trip(b);
    b.hold(opened + 1000);
    expect(b.state).toMatchObject({ kind: 'open', until: opened + OPEN_MS });
  });

  it('a hold received while closed extends the next opening within the wait', async () => {
    const b = make();
    b.hold(T0 + 120_000);
    expect(b.state.kind).toBe('closed');
    expect(b.admit().admitted).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    const opened = await trip(b);
    expect(b.state).toMatchObject({ kind: 'open', until: T0 + 120_000 });
    expect(opened + OPEN_MS).toBeLessThan(T0 + 120_000);
  });

  it('a failed trial reopens for at least the outstanding hold', async () => {
    const b = make();
    await trip(b);
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    b.hold(Date.now() + 100_000);
    b.record(admitAll(b)[0]!, 'failure');
    expect(b.state).toMatchObject({ kind: 'open', until: T0 + OPEN_MS + 100_000 });
  });
});

describe('admin actions', () => {
  it('forceOpen opens for openDuration and is reported', () => {
    const b = make();
    b.forceOpen();
    expect(b.state).toEqual({ kind: 'open', since: T0, until: T0 + OPEN_MS, reason: 'opened by an operator' });
    expect(transitions).toEqual(['closed->open: opened by an operator']);
    b.forceOpen('again');
    expect(transitions).toHaveLength(1); // open -> open is not a transition
  });

  it('reset closes at once, forgets the window and the holds', async () => {
    const b = make();
    await trip(b);
    b.hold(Date.now() + 600_000);
    b.reset();
    expect(b.state).toEqual({ kind: 'closed', since: T0 });
    expect(transitions.at(-1)).toBe('open->closed: reset by an operator');
    await fail(b, 9);
    expect(b.state.kind).toBe('closed');
    await fail(b, 1);
    expect(b.state).toMatchObject({ kind: 'open', until: T0 + OPEN_MS }); // the hold is gone
  });

  it('reset of a closed breaker reports nothing', () => {
    const b = make();
    b.reset();
    expect(transitions).toEqual([]);
  });
});

describe('transitions', () => {
  it('are reported once each, however often the state is read', async () => {
    const b = make({ halfOpenRamp: [1] });
    await trip(b);
    for (let i = 0; i < 5; i++) b.state;
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    for (let i = 0; i < 5; i++) b.availableAt(Date.now());
    b.record(admitAll(b)[0]!, 'success');
    await vi.advanceTimersByTimeAsync(5 * OPEN_MS);
    expect(transitions).toEqual([
      'closed->open: error rate over threshold',
      'open->halfOpen: open duration elapsed',
      'halfOpen->closed: half-open ramp completed',
    ]);
  });

  it('hand the listener the new state', async () => {
    const seen: BreakerState[] = [];
    const b = new Breaker(config(), systemClock, (_t, s) => seen.push(s), undefined, () => 0);
    breakers.push(b);
    b.forceOpen();
    expect(seen).toEqual([{ kind: 'open', since: T0, until: T0 + OPEN_MS, reason: 'opened by an operator' }]);
  });
});

describe('seeding (a config swap that changes breaker settings)', () => {
  it('keeps an open state\'s open-until time, and reports nothing at construction', async () => {
    const seed: BreakerState = { kind: 'open', since: T0 - 5000, until: T0 + 20_000, reason: 'error rate over threshold' };
    const b = make({ openDurationMs: 5000 }, seed);
    expect(b.state).toEqual(seed);
    expect(b.admit()).toEqual({ admitted: false, retryAt: T0 + 20_000 });
    expect(transitions).toEqual([]);
    await vi.advanceTimersByTimeAsync(19_999);
    expect(b.state.kind).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state.kind).toBe('halfOpen');
    expect(transitions).toEqual(['open->halfOpen: open duration elapsed']);
  });

  it('keeps a half-open state at its step, clamped to the new ramp, with no trials outstanding', () => {
    const b = make({ halfOpenRamp: [1, 3] }, { kind: 'halfOpen', since: T0, step: 2, admitted: 7, succeeded: 4 });
    expect(b.state).toEqual({ kind: 'halfOpen', since: T0, step: 1, admitted: 0, succeeded: 0 });
    expect(admitAll(b)).toHaveLength(3);
  });

  it('starts closed from a closed seed', () => {
    const b = make({}, { kind: 'closed', since: T0 - 1 });
    expect(b.state.kind).toBe('closed');
    expect(b.admit().admitted).toBe(true);
  });
});

describe('the failure window is asked synchronously (issue 8)', () => {
  it('opens on the very failure that crosses the threshold, before any microtask runs', () => {
    const b = make({ volumeThreshold: 4, errorThresholdPercentage: 50 });
    for (let i = 0; i < 2; i++) b.record(ticket(b), 'success');
    for (let i = 0; i < 2; i++) b.record(ticket(b), 'failure'); // 2 of 4: not over 50 %
    expect(b.state.kind).toBe('closed');
    b.record(ticket(b), 'failure'); // 3 of 5
    expect(b.state.kind).toBe('open'); // no flush(): the decision is not an event any more
  });
});
