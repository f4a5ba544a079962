// Every Breakwater metric, defined in one place (prefix breakwater_, low-cardinality labels:
// upstream, endpoint and configured model names only). The data plane updates pre-bound
// children, so a request allocates no label objects; the metrics it updates per request are
// Bound* (bound.ts: a plain field increment), the rest are prom-client's own. A few gauges describe state rather than
// events (readiness, available endpoints, the last rejected config): the admin side computes
// them when /metrics is scraped, through `scrape` (see src/admin/server.ts).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundGauge, BoundHistogram, BoundMetric } from './bound.ts';
import { collectProcessMetrics, type ProcessMetricsOptions } from './process-metrics.ts';

/** Scrape-time values, provided by the admin server once it runs (each optional). */
export interface ScrapeSources {
  /** 1 when /readyz would answer 200 now */
  ready?(): number;
  /** per upstream: endpoints whose breaker is not open and that are not held */
  availableEndpoints?(): Iterable<readonly [upstream: string, available: number]>;
  /** when the last config was rejected (seconds since the epoch), if ever */
  lastRejected?(): number | undefined;
  /** per rate-limited endpoint and bucket (requests, tokens): what it could admit now */
  rateLimits?(): Iterable<readonly [upstream: string, endpoint: string, bucket: string, available: number]>;
}

export function createMetrics(registry = new Registry(), process: ProcessMetricsOptions = {}) {
  collectProcessMetrics(registry, process);
  const scrape: ScrapeSources = {};
  const m = {
    scrape,
    registry,
    requests: new BoundCounter({ name: 'breakwater_requests_total', help: 'App requests by final outcome', labelNames: ['upstream', 'outcome'] as const, registers: [registry] }),
    requestDuration: new BoundHistogram({
      name: 'breakwater_request_duration_seconds',
      help: 'App request duration, every attempt and wait included',
      labelNames: ['upstream'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    attempts: new BoundCounter({ name: 'breakwater_upstream_attempts_total', help: 'Attempts sent to provider endpoints, by outcome kind', labelNames: ['upstream', 'endpoint', 'result'] as const, registers: [registry] }),
    ttfb: new BoundHistogram({
      name: 'breakwater_upstream_ttfb_seconds',
      help: 'Time from sending an attempt to its response headers',
      labelNames: ['upstream', 'endpoint'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    breakerState: new Gauge({ name: 'breakwater_breaker_state', help: '1 for the breaker\'s current state', labelNames: ['upstream', 'endpoint', 'state'] as const, registers: [registry] }),
    breakerTransitions: new Counter({ name: 'breakwater_breaker_transitions_total', help: 'Breaker state changes', labelNames: ['upstream', 'endpoint', 'to'] as const, registers: [registry] }),
    retries: new BoundCounter({ name: 'breakwater_retries_total', help: 'Attempts after the first, by the previous attempt\'s outcome', labelNames: ['upstream', 'reason'] as const, registers: [registry] }),
    retryBudgetExhausted: new BoundCounter({ name: 'breakwater_retry_budget_exhausted_total', help: 'Retries refused because the retry budget was spent', labelNames: ['upstream'] as const, registers: [registry] }),
    fallbacks: new BoundCounter({ name: 'breakwater_fallbacks_total', help: 'Requests moved to a fallback model', labelNames: ['upstream', 'from_model', 'to_model'] as const, registers: [registry] }),
    hedges: new BoundCounter({ name: 'breakwater_hedges_total', help: 'Hedged attempts: started, won (answered first), lost (cancelled), failed; budget_exhausted: a hedge not started for lack of retry budget', labelNames: ['upstream', 'result'] as const, registers: [registry] }),
    inflight: new BoundGauge({ name: 'breakwater_inflight_requests', help: 'Attempts in flight per endpoint', labelNames: ['upstream', 'endpoint'] as const, registers: [registry] }),
    tokens: new BoundCounter({ name: 'breakwater_tokens_total', help: 'Tokens reported by providers', labelNames: ['upstream', 'endpoint', 'kind'] as const, registers: [registry] }),
    // not per request: a probe every interval per open endpoint, so prom-client's own Counter
    healthChecks: new Counter({ name: 'breakwater_health_checks_total', help: 'Active health checks of open endpoints, by result', labelNames: ['upstream', 'endpoint', 'result'] as const, registers: [registry] }),
    cacheHits: new BoundCounter({ name: 'breakwater_cache_hits_total', help: 'Requests answered from the exact-match cache', labelNames: ['upstream'] as const, registers: [registry] }),
    cacheLookups: new BoundCounter({ name: 'breakwater_cache_lookups_total', help: 'Cacheable requests by lookup result (hit, miss, bypass: the app\'s Cache-Control forbade reading)', labelNames: ['upstream', 'result'] as const, registers: [registry] }),
    cacheBytes: new BoundGauge({ name: 'breakwater_cache_bytes', help: 'Bytes held by the exact-match cache (keys, bodies and per-entry overhead), at most spec.cache.maxBytes', labelNames: ['upstream'] as const, registers: [registry] }),
    queueDepth: new BoundGauge({ name: 'breakwater_queue_depth', help: 'Requests waiting in the upstream\'s queue for a bulkhead slot or a rate-limit token', labelNames: ['upstream'] as const, registers: [registry] }),
    queueWait: new BoundHistogram({
      name: 'breakwater_queue_wait_seconds',
      help: 'Time from entering the upstream\'s queue to leaving it (a turn, a shed, a timeout or the app leaving)',
      labelNames: ['upstream', 'priority'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    shed: new BoundCounter({ name: 'breakwater_shed_total', help: 'Requests Breakwater refused for its own capacity, by reason (queue_full, queue_timeout)', labelNames: ['upstream', 'reason'] as const, registers: [registry] }),
    configReloads: new Counter({ name: 'breakwater_config_reloads_total', help: 'Config loads by source and result', labelNames: ['source', 'result'] as const, registers: [registry] }),
    configLastApplied: new Gauge({ name: 'breakwater_config_last_applied_timestamp_seconds', help: 'When a config was last applied', registers: [registry] }),
    configWatchHealthy: new Gauge({ name: 'breakwater_config_watch_healthy', help: '1 while the config watch is connected and fresh', labelNames: ['source'] as const, registers: [registry] }),
    overhead: new BoundHistogram({
      name: 'breakwater_overhead_seconds',
      help: 'Time spent inside Breakwater per request, provider time excluded',
      labelNames: ['upstream'] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers: [registry],
    }),
    configLastRejected: new Gauge({
      name: 'breakwater_config_last_rejected_timestamp_seconds',
      help: 'When a config was last rejected (absent until one is); newer than config_last_applied means the last good config is serving and the newest one was refused',
      registers: [registry],
      collect() {
        const at = scrape.lastRejected?.();
        if (at !== undefined) this.set(at);
      },
    }),
    upstreamAvailableEndpoints: new Gauge({
      name: 'breakwater_upstream_available_endpoints',
      help: 'Endpoints of an upstream that can take a request now (breaker closed or half-open, not held)',
      labelNames: ['upstream'] as const,
      registers: [registry],
      collect() {
        const source = scrape.availableEndpoints;
        if (!source) return;
        this.reset();
        for (const [upstream, available] of source()) this.labels(upstream).set(available);
      },
    }),
    rateLimitAvailable: new Gauge({
      name: 'breakwater_ratelimit_available',
      help: 'What a rate-limited endpoint could admit now (requests or tokens): its own limit (rateLimit) less the last minute, or the provider\'s reported quota when lower',
      labelNames: ['upstream', 'endpoint', 'bucket'] as const,
      registers: [registry],
      collect() {
        const source = scrape.rateLimits;
        if (!source) return;
        this.reset();
        for (const [upstream, endpoint, bucket, available] of source()) this.labels(upstream, endpoint, bucket).set(available);
      },
    }),
    ready: new Gauge({
      name: 'breakwater_ready',
      help: '1 when /readyz answers 200',
      registers: [registry],
      collect() {
        const ready = scrape.ready?.();
        if (ready !== undefined) this.set(ready);
      },
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * For benchmarks only (`BREAKWATER_METRICS=off`): every update becomes a no-op, so that
 * `make bench` can measure what metrics cost per request. /metrics then reports nothing useful.
 */
export function disableMetricUpdates(metrics: Metrics): void {
  const noop = () => undefined;
  const child = { inc: noop, dec: noop, set: noop, observe: noop };
  for (const metric of Object.values(metrics)) {
    if (metric instanceof Counter || metric instanceof Gauge || metric instanceof Histogram || metric instanceof BoundMetric) {
      Object.assign(metric, { labels: () => child, inc: noop, dec: noop, set: noop, observe: noop });
    }
  }
}

export const INJECTION_RESULTS = ['injected', 'skipped', 'already_injected', 'error'] as const;

/** The controller's own metrics (`breakwater controller`, on its --admin /metrics). */
export function createControllerMetrics(registry = new Registry(), process: ProcessMetricsOptions = {}) {
  collectProcessMetrics(registry, process);
  const m = {
    registry,
    injections: new Counter({ name: 'breakwater_injections_total', help: 'Admission requests seen by the sidecar injector, by result', labelNames: ['result'] as const, registers: [registry] }),
    leader: new Gauge({ name: 'breakwater_controller_leader', help: '1 while this replica holds the Lease and writes status', registers: [registry] }),
    certificateExpiry: new Gauge({ name: 'breakwater_webhook_certificate_expiry_timestamp_seconds', help: 'When the webhook serving certificate this replica serves expires', registers: [registry] }),
    statusWrites: new Counter({ name: 'breakwater_status_writes_total', help: 'LLMUpstream status patches, by result', labelNames: ['result'] as const, registers: [registry] }),
  };
  for (const result of INJECTION_RESULTS) m.injections.labels(result).inc(0);
  m.leader.set(0);
  return m;
}

export type ControllerMetrics = ReturnType<typeof createControllerMetrics>;
