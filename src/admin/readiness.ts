// The readiness policy (DESIGN.md section 4). With `breakers`, the pod is unready when, for some
// `required` upstream, every endpoint has been unavailable (breaker open, or the endpoint held
// for a provider's Retry-After or an account error) for `unreadyAfterMs`; it is ready again as
// soon as one endpoint is closed or half-open. Fallback models run on the same endpoints, so an
// unavailable endpoint is unavailable to every fallback model too; a hold on one model only
// (a model-scoped 429) never makes an upstream unavailable, because its fallbacks still serve.
// With `local`, breaker state is not considered: ready once a config is loaded.
import type { Clock } from '../clock.ts';
import type { EndpointRuntime } from '../proxy/endpoint.ts';
import type { ProxyRuntime } from '../proxy/runtime.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export type ReadinessPolicy = 'breakers' | 'local';

export interface EndpointAvailability {
  name: string;
  available: boolean;
  /** why not: 'breaker open' or 'held: <reason>' */
  why: string | undefined;
  /** when it became unavailable (ms epoch) */
  since: number | undefined;
}

export interface UpstreamAvailability {
  name: string;
  required: boolean;
  available: boolean;
  availableEndpoints: number;
  endpoints: EndpointAvailability[];
  /** every endpoint unavailable since (ms epoch) */
  unavailableSince: number | undefined;
  unavailableForMs: number;
  /** this upstream makes the pod unready */
  blocking: boolean;
}

export interface Verdict {
  ready: boolean;
  reason: string;
  policy: ReadinessPolicy;
  unreadyAfterMs: number;
  at: number;
  upstreams: UpstreamAvailability[];
}

export interface ReadinessOptions {
  runtime: ProxyRuntime;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  policy: ReadinessPolicy;
  unreadyAfterMs: number;
  /** how often the verdict is re-evaluated in the background (gauge, log lines); default 250 ms */
  tickMs?: number;
}

export class Readiness {
  readonly policy: ReadinessPolicy;
  readonly unreadyAfterMs: number;
  #options: ReadinessOptions;
  /** first time an endpoint was seen held while its breaker was not open (holds carry no start) */
  #heldSince = new WeakMap<EndpointRuntime, number>();
  #timer: NodeJS.Timeout | undefined;
  #last: boolean | undefined;
  #shuttingDown = false;

  constructor(options: ReadinessOptions) {
    this.#options = options;
    this.policy = options.policy;
    this.unreadyAfterMs = options.unreadyAfterMs;
  }

  /** evaluates periodically, so the gauge and the log follow the verdict without a probe */
  start(): void {
    if (this.#timer) return;
    this.evaluate();
    this.#timer = setInterval(() => this.evaluate(), this.#options.tickMs ?? 250);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** SIGTERM: stop taking traffic while in-flight requests drain */
  shutdown(): void {
    this.#shuttingDown = true;
    this.evaluate();
  }

  /** Per upstream: which endpoints can take a request now, and since when none can. */
  availability(now = this.#options.clock.now()): UpstreamAvailability[] {
    const snapshot = this.#options.runtime.snapshot;
    if (!snapshot) return [];
    const out: UpstreamAvailability[] = [];
    for (const upstream of snapshot.upstreams.values()) {
      const endpoints = upstream.endpoints.filter((e) => !e.retired).map((e) => this.#endpoint(e, now));
      const availableEndpoints = endpoints.filter((e) => e.available).length;
      const available = availableEndpoints > 0;
      // the upstream is out since its last endpoint went out
      const unavailableSince = available || endpoints.length === 0 ? undefined : Math.max(...endpoints.map((e) => e.since ?? now));
      const unavailableForMs = unavailableSince === undefined ? 0 : Math.max(0, now - unavailableSince);
      out.push({
        name: upstream.config.name,
        required: upstream.config.required,
        available,
        availableEndpoints,
        endpoints,
        unavailableSince,
        unavailableForMs,
        blocking: this.policy === 'breakers' && upstream.config.required && unavailableSince !== undefined && unavailableForMs >= this.unreadyAfterMs,
      });
    }
    return out;
  }

  evaluate(): Verdict {
    const { clock, runtime, metrics, log } = this.#options;
    const now = clock.now();
    const upstreams = this.availability(now);
    const base = { policy: this.policy, unreadyAfterMs: this.unreadyAfterMs, at: now, upstreams };
    let verdict: Verdict;
    if (this.#shuttingDown) {
      verdict = { ...base, ready: false, reason: 'shutting down: draining in-flight requests' };
    } else if (!runtime.snapshot) {
      verdict = { ...base, ready: false, reason: 'no config loaded yet' };
    } else if (this.policy === 'local') {
      verdict = { ...base, ready: true, reason: 'config loaded (readiness=local: breaker state is not considered)' };
    } else {
      const blocking = upstreams.filter((u) => u.blocking);
      if (blocking.length > 0) {
        const reason = blocking
          .map((u) => `required upstream "${u.name}" has had no available endpoint for ${formatMs(u.unavailableForMs)} (${u.endpoints.map((e) => `${e.name}: ${e.why}`).join(', ')})`)
          .join('; ');
        verdict = { ...base, ready: false, reason };
      } else {
        const waiting = upstreams.filter((u) => u.required && !u.available);
        verdict = {
          ...base,
          ready: true,
          reason:
            waiting.length === 0
              ? 'every required upstream has an available endpoint'
              : waiting.map((u) => `required upstream "${u.name}" has no available endpoint for ${formatMs(u.unavailableForMs)}; unready after ${formatMs(this.unreadyAfterMs)}`).join('; '),
        };
      }
    }
    metrics.ready.set(verdict.ready ? 1 : 0);
    if (verdict.ready !== this.#last) {
      if (this.#last !== undefined) {
        if (verdict.ready) log.info({ policy: this.policy, reason: verdict.reason }, 'readiness: ready');
        else log.warn({ policy: this.policy, reason: verdict.reason }, 'readiness: unready');
      }
      this.#last = verdict.ready;
    }
    return verdict;
  }

  /** reads the endpoint's gate (no side effects); model holds do not make an endpoint unavailable */
  #endpoint(e: EndpointRuntime, now: number): EndpointAvailability {
    const a = e.gate.peek(undefined, now);
    if (a.kind === 'open') {
      this.#heldSince.delete(e);
      const state = e.breaker.state;
      return { name: e.name, available: false, why: `breaker open (${a.reason})`, since: state.kind === 'open' ? state.since : now };
    }
    if (a.kind === 'held') {
      // held for a provider's Retry-After or an account error
      let since = this.#heldSince.get(e);
      if (since === undefined) {
        since = now;
        this.#heldSince.set(e, since);
      }
      return { name: e.name, available: false, why: `held (${a.reason})`, since };
    }
    this.#heldSince.delete(e);
    return { name: e.name, available: true, why: undefined, since: undefined };
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}
