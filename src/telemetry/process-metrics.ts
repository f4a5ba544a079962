// Node process metrics (prefix breakwater_, so breakwater_process_resident_memory_bytes and
// breakwater_nodejs_heap_size_used_bytes: prom-client's names already begin with process_ or
// nodejs_): prom-client's default collectors, every one
// of them except, by default, the event-loop lag set. That one keeps a perf_hooks histogram
// sampling every 10 ms (`eventLoopMonitoringPrecision`), which woke an idle sidecar ~100 times a
// second; the rest (CPU, resident memory, heap, file descriptors, handles, GC, version) are read
// when /metrics is scraped, or on a GC, and cost nothing while idle. collectDefaultMetrics has no
// way to leave one collector out, so the collectors are loaded one by one from prom-client's own
// modules (the same code and names collectDefaultMetrics registers).
import { createRequire } from 'node:module';
import { collectDefaultMetrics, type Registry } from 'prom-client';

export const PROCESS_PREFIX = 'breakwater_';

export interface ProcessMetricsOptions {
  /** also the nodejs_eventloop_lag_* gauges and their 10 ms histogram (--event-loop-metrics) */
  eventLoop?: boolean;
}

type Collector = (registry: Registry, config: { prefix: string }) => void;

const require = createRequire(import.meta.url);

/** every default collector but eventLoopLag (prom-client 15: lib/defaultMetrics.js lists them) */
function cheapCollectors(): Collector[] {
  const collectors = [
    require('prom-client/lib/metrics/processCpuTotal'),
    require('prom-client/lib/metrics/processStartTime'),
    require('prom-client/lib/metrics/osMemoryHeap'),
    require('prom-client/lib/metrics/processOpenFileDescriptors'),
    require('prom-client/lib/metrics/processMaxFileDescriptors'),
    require('prom-client/lib/metrics/processResources'),
    require('prom-client/lib/metrics/processHandles'),
    require('prom-client/lib/metrics/processRequests'),
    require('prom-client/lib/metrics/heapSizeAndUsed'),
    require('prom-client/lib/metrics/heapSpacesSizeAndUsed'),
    require('prom-client/lib/metrics/version'),
    require('prom-client/lib/metrics/gc'),
  ] as unknown[];
  return collectors.filter((c): c is Collector => typeof c === 'function');
}

export function collectProcessMetrics(registry: Registry, options: ProcessMetricsOptions = {}): void {
  if (options.eventLoop) {
    collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX });
    return;
  }
  for (const collect of cheapCollectors()) collect(registry, { prefix: PROCESS_PREFIX });
}
