// The controller's runnables: every-replica ones start in order and stop in reverse; leader-only
// ones run exactly while the Lease is held, and stop before the others on shutdown.
import { describe, expect, it } from 'vitest';
import { Manager, type Runnable } from '../../../src/controller/manager.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';

function recorder() {
  const events: string[] = [];
  const runnable = (name: string, opts: { failStart?: boolean } = {}): Runnable => ({
    name,
    start: async () => {
      await Promise.resolve();
      if (opts.failStart) throw new Error(`${name} cannot start`);
      events.push(`start ${name}`);
    },
    stop: async () => {
      await Promise.resolve();
      events.push(`stop ${name}`);
    },
  });
  return { events, runnable };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('controller manager', () => {
  it('starts every-replica runnables in order and stops them in reverse', async () => {
    const { events, runnable } = recorder();
    const m = new Manager(silentLogger).add(runnable('probes'), { needsLeader: false }).add(runnable('webhook'), { needsLeader: false });
    await m.start();
    await m.stop();
    expect(events).toEqual(['start probes', 'start webhook', 'stop webhook', 'stop probes']);
  });

  it('runs leader-only runnables only while leading', async () => {
    const { events, runnable } = recorder();
    const m = new Manager(silentLogger).add(runnable('cache'), { needsLeader: false }).add(runnable('status'), { needsLeader: true });
    await m.start();
    expect(events).toEqual(['start cache']);
    m.startedLeading();
    await settle();
    expect(m.leading).toBe(true);
    m.stoppedLeading();
    await settle();
    m.startedLeading();
    await settle();
    expect(events).toEqual(['start cache', 'start status', 'stop status', 'start status']);
  });

  it('restarts leader-only runnables when the Lease is won again after a gap (writes were fenced off)', async () => {
    const { events, runnable } = recorder();
    const m = new Manager(silentLogger).add(runnable('status'), { needsLeader: true });
    await m.start();
    m.startedLeading();
    m.startedLeading();
    await settle();
    expect(events).toEqual(['start status', 'stop status', 'start status']);
    expect(m.leading).toBe(true);
  });

  it('on stop, stops leader-only runnables before the others', async () => {
    const { events, runnable } = recorder();
    const m = new Manager(silentLogger).add(runnable('cache'), { needsLeader: false }).add(runnable('lease'), { needsLeader: false }).add(runnable('status'), { needsLeader: true });
    await m.start();
    m.startedLeading();
    await settle();
    await m.stop();
    expect(events).toEqual(['start cache', 'start lease', 'start status', 'stop status', 'stop lease', 'stop cache']);
    m.startedLeading(); // after stop: nothing starts again
    await settle();
    expect(events.at(-1)).toBe('stop cache');
  });

  it('a runnable that cannot start stops the ones already started and fails the start', async () => {
    const { events, runnable } = recorder();
    const m = new Manager(silentLogger).add(runnable('probes'), { needsLeader: false }).add(runnable('webhook', { failStart: true }), { needsLeader: false });
    await expect(m.start()).rejects.toThrow(/webhook cannot start/);
    expect(events).toEqual(['start probes', 'stop probes']);
  });
});
