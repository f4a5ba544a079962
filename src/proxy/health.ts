// Active health checks (`spec.healthCheck`): while an endpoint's breaker is open, ask the provider
// now and then whether it is back, so the breaker can go half-open when it is rather than at the
// end of a long open time. One HealthProbe per endpoint, owned by its EndpointRuntime:
// - it runs only while the breaker is open and the endpoint is not held (gate.wantsProbe); a
//   closed or half-open endpoint is never probed (its own traffic tells), and a held one is left
//   alone (a Retry-After is the provider asking for quiet; an account error is not something a
//   models listing can vouch for: OpenAI lists models for a key whose quota is gone);
// - a probe is `GET <endpoint url>/<path>` (default `models`) through the endpoint's own pool,
//   with its own key, headers and query: no body, no tokens, and the key goes nowhere else;
// - probes are `interval` to `interval` x (1 + HEALTH_JITTER) apart, at random, so replicas that
//   share an outage do not probe in step; each is cut at `timeout`;
// - a 2xx moves the open breaker to half-open at once (the ramp still decides when it closes);
//   anything else changes nothing but the metric and a debug log line (no charge, no extension).
// Every timer is the injected Clock's, so the schedule is tested on virtual time.
import type { Clock } from '../clock.ts';
import type { EndpointConfig, UpstreamConfig } from '../config/runtime.ts';
import type { Dialect } from '../config/schema.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { BreakerStateName } from './breaker.ts';
import type { EndpointRuntime } from './endpoint.ts';
import { requestPath } from './forward.ts';
import { Exchange } from './wire.ts';

export type HealthCheckConfig = NonNullable<UpstreamConfig['healthCheck']>;

/** ok: 2xx; failed: any other status; timeout: no whole answer within `timeout`; error: the connection failed */
export const PROBE_RESULTS = ['ok', 'failed', 'timeout', 'error'] as const;
export type ProbeResult = (typeof PROBE_RESULTS)[number];

/** the gap between probes is uniform in [interval, interval x (1 + HEALTH_JITTER)] */
export const HEALTH_JITTER = 0.2;
/** a probe's answer is read (so the connection can be reused) and thrown away, up to this much */
export const MAX_PROBE_BODY_BYTES = 64 * 1024;
/** Anthropic refuses a request without a version; an endpoint's own `headers` may name another */
export const ANTHROPIC_VERSION = '2023-06-01';

export interface HealthDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  random?: (() => number) | undefined;
}

/** For /debug/state: null while health checks are off for the endpoint's upstream. */
export interface HealthView {
  path: string;
  intervalMs: number;
  /** while the breaker is open and the endpoint not held, when the next probe goes out */
  nextProbeAt: number | null;
  last: { at: number; result: ProbeResult; status: number | null; durationMs: number } | null;
}

/** Reads and drops a probe's answer, at most `limit` bytes (then the stream is destroyed). */
function discard(exchange: Exchange, limit: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let size = 0;
    exchange.attach({
      data(chunk) {
        size += chunk.length;
        if (size <= limit) return;
        exchange.abort(new Error('probe answer over the limit')); // enough read: close it
        resolve();
      },
      end: resolve,
      error: (error) => (size > limit ? resolve() : reject(error)),
    });
  });
}

export class HealthProbe {
  readonly #endpoint: EndpointRuntime;
  readonly #deps: HealthDeps;
  readonly #random: () => number;
  #config: HealthCheckConfig | undefined;
  #api: Dialect = 'openai';
  #counters: Record<ProbeResult, { inc(): void }> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #nextAt: number | null = null;
  /** the probe in flight, if any; stop() aborts it and its result is then dropped */
  #inflight: AbortController | undefined;
  #last: HealthView['last'] = null;
  /** the endpoint left the config (or the process is shutting down): never probe again */
  #closed = false;
  readonly #tick = (): void => this.#onTick();

  constructor(endpoint: EndpointRuntime, deps: HealthDeps) {
    this.#endpoint = endpoint;
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
  }

  /** Each applied config: the upstream's health check settings (undefined: off) and its dialect. */
  configure(config: HealthCheckConfig | undefined, api: Dialect): void {
    if (this.#closed) return;
    const changed = config?.path !== this.#config?.path || config?.intervalMs !== this.#config?.intervalMs || config?.timeoutMs !== this.#config?.timeoutMs;
    this.#config = config;
    this.#api = api;
    if (config === undefined) {
      this.#stop();
      return;
    }
    if (!this.#counters) {
      const { metrics } = this.#deps;
      const { upstream, name } = this.#endpoint;
      const bind = (result: ProbeResult) => {
        const child = metrics.healthChecks.labels(upstream, name, result);
        child.inc(0); // exported at 0 from the start, so rate() works before the first probe
        return child;
      };
      this.#counters = { ok: bind('ok'), failed: bind('failed'), timeout: bind('timeout'), error: bind('error') };
    }
    if (changed) this.#stop(); // a new cadence starts from now
    this.#start();
  }

  /** The breaker moved (EndpointRuntime's transition hook): probe while it is open, only then. */
  breakerMoved(to: BreakerStateName): void {
    if (to === 'open') this.#start();
    else this.#stop();
  }

  /** The endpoint was removed, or the runtime is closing: stop every timer and probe, for good. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  describe(): HealthView | null {
    const c = this.#config;
    if (c === undefined) return null;
    return { path: c.path, intervalMs: c.intervalMs, nextProbeAt: this.#nextAt, last: this.#last && { ...this.#last } };
  }

  #start(): void {
    if (this.#closed || this.#config === undefined || this.#timer !== undefined) return;
    if (this.#endpoint.breaker.state.kind !== 'open') return;
    this.#schedule(this.#config);
  }

  #stop(): void {
    this.#deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextAt = null;
    this.#inflight?.abort(new Error('health check stopped'));
    this.#inflight = undefined;
  }

  #schedule(config: HealthCheckConfig): void {
    const { clock } = this.#deps;
    const delay = Math.round(config.intervalMs * (1 + this.#random() * HEALTH_JITTER));
    this.#nextAt = clock.now() + delay;
    const timer = clock.setTimeout(this.#tick, delay);
    timer.unref?.();
    this.#timer = timer;
  }

  #onTick(): void {
    this.#timer = undefined;
    this.#nextAt = null;
    const config = this.#config;
    if (this.#closed || config === undefined) return;
    const gate = this.#endpoint.gate;
    if (gate.breaker.state.kind !== 'open') return; // closed or half-open: traffic decides, no probe
    // the next one is due an interval after this one started, however long this one takes
    // (a probe ends by its timeout, which is at most the interval)
    this.#schedule(config);
    if (this.#inflight !== undefined) return;
    if (!gate.wantsProbe(this.#deps.clock.now())) return; // held, or its open time is up anyway
    void this.#probe(config);
  }

  /** One probe; never throws. */
  async #probe(config: HealthCheckConfig): Promise<void> {
    const { clock, log } = this.#deps;
    const endpoint = this.#endpoint;
    const ec = endpoint.config;
    const controller = new AbortController();
    this.#inflight = controller;
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('health check timed out'));
    }, config.timeoutMs);
    timer.unref?.();
    const started = clock.now();
    let result: ProbeResult;
    let status: number | null = null;
    let code: string | undefined;
    try {
      const exchange = new Exchange();
      controller.signal.addEventListener('abort', () => exchange.abort(controller.signal.reason as Error), { once: true });
      await exchange.start(endpoint.dispatcher, {
        origin: ec.origin,
        path: requestPath(ec, `/${config.path}`, ''),
        method: 'GET',
        headers: this.#headers(ec),
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const answered = exchange.status;
      status = answered;
      await discard(exchange, MAX_PROBE_BODY_BYTES);
      result = answered >= 200 && answered < 300 ? 'ok' : 'failed';
    } catch (error) {
      result = timedOut ? 'timeout' : 'error';
      const c = (error as { code?: unknown }).code;
      code = typeof c === 'string' ? c : undefined;
    } finally {
      clock.clearTimeout(timer);
    }
    // stopped meanwhile (the breaker moved, a reload, removal, shutdown): the answer is moot
    if (this.#inflight !== controller) return;
    this.#inflight = undefined;
    const now = clock.now();
    this.#last = { at: started, result, status, durationMs: now - started };
    this.#counters?.[result].inc();
    const fields = { upstream: endpoint.upstream, endpoint: endpoint.name, path: config.path, result, status, code };
    if (result !== 'ok') {
      log.debug(fields, 'health check failed: breaker stays open');
      return;
    }
    // the transition hook logs "breaker half-open" at info with this reason, and stops the probes
    if (!endpoint.gate.probePassed(`health check passed (GET ${config.path}: ${status})`, now)) {
      log.debug(fields, 'health check passed, but the endpoint is held or no longer open: nothing changed');
    }
  }

  #headers(ec: EndpointConfig): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#api === 'anthropic') headers['anthropic-version'] = ANTHROPIC_VERSION;
    for (const [k, v] of ec.headers) headers[k] = v;
    if (ec.auth) headers[ec.auth.header] = ec.auth.value.reveal();
    return headers;
  }
}
