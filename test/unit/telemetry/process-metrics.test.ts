// The process metrics an idle sidecar can afford: prom-client's default set without the
// event-loop lag collector (its 10 ms histogram woke the process ~100 times a second), unless
// asked for with --event-loop-metrics.
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const names = async (text: Promise<string>) => new Set((await text).split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));

describe('process metrics', () => {
  it('keep CPU, resident memory and heap, and leave the event-loop lag out by default', async () => {
    const m = createMetrics();
    const got = await names(m.registry.metrics());
    for (const name of ['breakwater_process_cpu_seconds_total', 'breakwater_process_resident_memory_bytes', 'breakwater_nodejs_heap_size_used_bytes', 'breakwater_process_open_fds', 'breakwater_nodejs_gc_duration_seconds']) {
      expect(got, name).toContain(name);
    }
    expect([...got].filter((n) => n?.includes('eventloop'))).toEqual([]);
  });

  it('bring the event-loop lag back when asked', async () => {
    const m = createMetrics(undefined, { eventLoop: true });
    const got = await names(m.registry.metrics());
    expect(got).toContain('breakwater_nodejs_eventloop_lag_p99_seconds');
    expect(got).toContain('breakwater_process_resident_memory_bytes');
  });
});
