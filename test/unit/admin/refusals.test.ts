// The refused-peer warning on an injected clock: one line per interval, the rest counted,
// every peer-chosen value cut short.
import { describe, expect, it } from 'vitest';
import { MAX_LOGGED_CHARS, RefusalLog } from '../../../src/admin/refusals.ts';
import { createLogger } from '../../../src/telemetry/log.ts';
import { manualClock } from '../../support/clock.ts';


describe('RefusalLog', () => {
  it('logs one line per interval and counts the refusals it left out', () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
    const clock = manualClock();
    const refusals = new RefusalLog(log, clock, 10_000);
    for (let i = 0; i < 5; i++) refusals.refused('10.0.0.9', '/debug/state', undefined);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ peer: '10.0.0.9', path: '/debug/state', suppressed: 0 });
    clock.advance(9_999);
    refusals.refused('10.0.0.9', '/dashboard', undefined);
    expect(lines).toHaveLength(1);
    clock.advance(1);
    refusals.refused('10.0.0.8', '/dashboard', undefined);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ peer: '10.0.0.8', suppressed: 5 });
  });

  it('cuts the path and X-Forwarded-For a peer chose', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    new RefusalLog(log, manualClock()).refused('10.0.0.9', `/admin/${'p'.repeat(10_000)}`, ['x'.repeat(10_000), 'y']);
    const line = JSON.parse(lines[0]!) as { path: string; forwardedFor: string };
    expect(line.path.length).toBeLessThan(MAX_LOGGED_CHARS + 32);
    expect(line.path).toContain('(10007 chars)');
    expect(line.forwardedFor.length).toBeLessThan(MAX_LOGGED_CHARS + 32);
  });
});
