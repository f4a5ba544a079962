// The readiness policy (DESIGN.md section 4). With `breakers`, the pod is unready when, for some
// `required` upstream, every endpoint has been unavailable (breaker open, or the endpoint held
// for a provider's Retry-After or an account error) for `unreadyAfterMs`; it is ready again as
// soon as one endpoint is closed or half-open. Fallback models run on the same endpoints, so an
// unavailable endpoint is unavailable to every fallback model too; a hold on one model only
// (a model-scoped 429) never makes an upstream unavailable, because its fallbacks still serve.
// With `local`, breaker state is not considered: ready once a config is loaded.
//
// The verdict is computed on demand (/readyz, the scrape) and also kept current in the
// background, for the log lines and the gauge, without polling: it is re-evaluated when a
// config is applied and when an endpoint's gate changes (breaker transition, hold set), and one
// one-shot timer waits for the next moment time alone can change it (an upstream reaching
// unreadyAfter, a hold ending). The admin heartbeat re-evaluates once a beat as a backstop.
import type { Clock } from '../clock.ts';
import type { EndpointRuntime } from '../proxy/endpoint.ts';
import type { ProxyRuntime } from '../proxy/runtime.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Heartbeat } from './heartbeat.ts';

export type ReadinessPolicy = 'breakers' | 'local';

export interface EndpointAvailability {
  name: string;
  available: boolean;
  /** why not: 'breaker open' or 'held: <reason>' */
  why: string | undefined;
  /** when it became unavailable (ms epoch) */
  since: number | undefined;
  /** when a hold makes it available again, if that is known (breakers announce their own end) */
  heldUntil: number | undefined;
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
  /** a coarse backstop; transitions and the deadline timer do the real work */
  heartbeat?: Heartbeat;
}

export class Readiness {
  readonly policy: ReadinessPolicy;
  readonly unreadyAfterMs: number;
  #options: ReadinessOptions;
  /** first time an endpoint was seen held while its breaker was not open (holds carry no start) */
  #heldSince = new WeakMap<EndpointRuntime, number>();
  /** the one-shot timer for the next time-driven change, and when it fires */
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #started = false;
  #unsubscribe: (() => void)[] = [];
  #last: boolean | undefined;
  #shuttingDown = false;

  constructor(options: ReadinessOptions) {
    this.#options = options;
    this.policy = options.policy;
    this.unreadyAfterMs = options.unreadyAfterMs;
  }

  /** follows config swaps and gate changes, so the gauge and the log follow the verdict without a probe */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { runtime, heartbeat } = this.#options;
    const evaluate = () => {
      if (this.#started) this.evaluate();
    };
    runtime.onApply(evaluate);
    this.#unsubscribe.push(runtime.onGateChange(evaluate));
    if (heartbeat) this.#unsubscribe.push(heartbeat.add(evaluate));
    this.evaluate();
  }

  stop(): void {
    this.#started = false;
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#disarm();
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
    if (this.#started) this.#arm(this.#nextChange(upstreams, now), now);
    if (verdict.ready !== this.#last) {
      if (this.#last !== undefined) {
        if (verdict.ready) log.info({ policy: this.policy, reason: verdict.reason }, 'readiness: ready');
        else log.warn({ policy: this.policy, reason: verdict.reason }, 'readiness: unready');
      }
      this.#last = verdict.ready;
    }
    return verdict;
  }

  /** the next moment the verdict can change with no event: an upstream reaching unreadyAfter, a hold ending */
  #nextChange(upstreams: UpstreamAvailability[], now: number): number {
    if (this.#shuttingDown || this.policy === 'local') return Infinity;
    let next = Infinity;
    for (const u of upstreams) {
      if (!u.required) continue;
      if (u.unavailableSince !== undefined && !u.blocking) next = Math.min(next, u.unavailableSince + this.unreadyAfterMs);
      for (const e of u.endpoints) if (e.heldUntil !== undefined && e.heldUntil > now) next = Math.min(next, e.heldUntil);
    }
    return next;
  }

  #arm(at: number, now: number): void {
    if (at === this.#timerAt) return;
    this.#disarm();
    if (at === Infinity) return;
    const { clock } = this.#options;
    this.#timerAt = at;
    // a timer that runs a little early finds nothing due yet, and arms itself again for the rest
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      if (this.#started) this.evaluate();
    }, Math.max(0, at - now));
    this.#timer.unref?.();
  }

  #disarm(): void {
    this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** reads the endpoint's gate (no side effects); model holds do not make an endpoint unavailable */
  #endpoint(e: EndpointRuntime, now: number): EndpointAvailability {
    const a = e.gate.peek(undefined, now);
    if (a.kind === 'open') {
      this.#heldSince.delete(e);
      const state = e.breaker.state;
      return { name: e.name, available: false, why: `breaker open (${a.reason})`, since: state.kind === 'open' ? state.since : now, heldUntil: undefined };
    }
    if (a.kind === 'held') {
      // held for a provider's Retry-After or an account error
      let since = this.#heldSince.get(e);
      if (since === undefined) {
        since = now;
        this.#heldSince.set(e, since);
      }
      return { name: e.name, available: false, why: `held (${a.reason})`, since, heldUntil: a.at };
    }
    this.#heldSince.delete(e);
    return { name: e.name, available: true, why: undefined, since: undefined, heldUntil: undefined };
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}
