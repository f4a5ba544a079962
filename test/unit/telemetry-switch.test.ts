// BREAKWATER_METRICS=off (benchmarks) turns every metric update into a no-op.
import { describe, expect, it } from 'vitest';
import { createMetrics, disableMetricUpdates } from '../../src/telemetry/metrics.ts';

describe('metrics switch', () => {
  it('counts normally, and counts nothing once updates are disabled', async () => {
    const on = createMetrics();
    on.requests.labels('u', 'ok').inc();
    expect((await on.requests.get()).values[0]?.value).toBe(1);
    const off = createMetrics();
    disableMetricUpdates(off);
    off.requests.labels('u', 'ok').inc();
    off.overhead.labels('u').observe(0.001);
    expect((await off.requests.get()).values).toEqual([]);
  });
});
