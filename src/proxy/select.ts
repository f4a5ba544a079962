// Endpoint order for one request: by priority (low first), and within a priority either
// weighted-random (`balance: weighted`) or by latency (`balance: leastLatency`): a peak-EWMA of
// each endpoint's time to first byte times its in-flight attempts, compared between two
// endpoints drawn at random (power of two choices, as Finagle's and linkerd's balancers do).
// The estimate lives on the endpoint (EndpointRuntime.latency), so it survives config swaps.
import type { Clock } from '../clock.ts';
import type { EndpointRuntime } from './endpoint.ts';
import type { AttemptResult } from './forward.ts';

/** how fast an estimate forgets: an observation's weight halves every τ·ln 2 (≈ 7 s) */
export const LATENCY_TAU_MS = 10_000;
/**
 * The cost of an endpoint that has no estimate yet but already has attempts in flight (Finagle's
 * penalty): an idle unmeasured endpoint costs 0 and is tried once, but a burst does not pile onto
 * it before its first answer says how fast it is.
 */
export const UNMEASURED_PENALTY_MS = 1e12;

/**
 * Peak-EWMA of the time to first byte, decayed by time, not by count (Finagle's PeakEwma, tower's
 * peak_ewma): a slower observation replaces the estimate at once (peak-sensitive, so a region
 * turning slow loses traffic on its first slow answer); a faster one pulls it down with weight
 * 1 - e^(-Δ/τ), Δ the time since the previous observation; and between observations the estimate
 * read decays towards 0 with the same τ, so an endpoint that got no traffic because it looked slow
 * is tried again after a while, and its stale estimate does not keep it out forever.
 */
export class LatencyEwma {
  readonly #clock: Clock;
  readonly #tauMs: number;
  /** ms, as of #at; 0 before the first observation */
  #estimate = 0;
  #at = 0;

  constructor(clock: Clock, tauMs = LATENCY_TAU_MS) {
    this.#clock = clock;
    this.#tauMs = tauMs;
  }

  /** the estimate now, in ms (decayed since the last observation; 0 when never measured) */
  value(): number {
    if (this.#estimate === 0) return 0;
    return this.#estimate * Math.exp(-Math.max(0, this.#clock.now() - this.#at) / this.#tauMs);
  }

  /** one time to first byte, in ms */
  observe(ms: number): void {
    const now = this.#clock.now();
    const sample = Math.max(0, ms);
    if (sample > this.#estimate) this.#estimate = sample;
    else {
      const w = Math.exp(-Math.max(0, now - this.#at) / this.#tauMs);
      this.#estimate = this.#estimate * w + sample * (1 - w);
    }
    this.#at = now;
  }

  /**
   * A failed attempt after `ms`: its first byte would have come no sooner, so it counts as at
   * least that slow, and never as faster than the current estimate (a fast 503 must not make a
   * failing endpoint look attractive; the breaker deals with failures).
   */
  penalize(ms: number): void {
    this.observe(Math.max(ms, this.value()));
  }

  /** the load-aware cost P2C compares: estimate × (in-flight + 1) */
  cost(inflight: number): number {
    const v = this.value();
    if (v === 0) return inflight === 0 ? 0 : UNMEASURED_PENALTY_MS + inflight;
    return v * (inflight + 1);
  }
}

/**
 * What one attempt says about its endpoint's latency, once it reached its commit point or
 * failed: an answer observes its time (the whole JSON answer, or a stream's first content event:
 * what the app waits for); a provider failure or a cut (a timeout, the request's deadline, a lost
 * hedge) counts as at least as slow as its elapsed time; the app going away and Breakwater's own
 * failures say nothing.
 */
export function recordLatency(endpoint: EndpointRuntime, result: AttemptResult, elapsedMs: number): void {
  if (result.kind === 'answer') {
    endpoint.latency.observe(elapsedMs);
    return;
  }
  const { outcome } = result;
  if (outcome.kind === 'internal' || (outcome.kind === 'cancelled' && outcome.reason === 'client_disconnected')) return;
  endpoint.latency.penalize(elapsedMs);
}

export type Balance = 'weighted' | 'leastLatency';

/** Endpoints grouped by priority (the config lists them in priority order). */
export function groupByPriority(endpoints: readonly EndpointRuntime[]): readonly (readonly EndpointRuntime[])[] {
  const groups: EndpointRuntime[][] = [];
  for (const e of endpoints) {
    const last = groups.at(-1);
    if (last && last[0]!.config.priority === e.config.priority) last.push(e);
    else groups.push([e]);
  }
  return groups;
}

/**
 * The order one request tries endpoints in: each priority group in turn; within a group of
 * several, weighted-random (each pick proportional to `weight`), or for leastLatency repeated
 * power-of-two choices: two distinct endpoints drawn in proportion to `weight`, the one with the
 * lower cost / weight first (weights apply twice over: in the draw, and as the share of load an
 * endpoint is meant to carry, as in Envoy's and linkerd's weighted least-load). The rest follow
 * by the same rule, for failover.
 */
export function orderEndpoints(groups: readonly (readonly EndpointRuntime[])[], balance: Balance, random: () => number): EndpointRuntime[] {
  const out: EndpointRuntime[] = [];
  for (const group of groups) {
    if (group.length === 1) {
      out.push(group[0]!);
      continue;
    }
    const pool = [...group];
    if (balance === 'weighted') {
      while (pool.length > 0) out.push(pool.splice(weightedIndex(pool, random, -1), 1)[0]!);
      continue;
    }
    // each endpoint's cost is read once per request (the estimate decays with the clock)
    const costs = pool.map((e) => e.latency.cost(e.inflight) / e.config.weight);
    while (pool.length > 1) {
      const a = weightedIndex(pool, random, -1);
      const b = weightedIndex(pool, random, a);
      const pick = costs[b]! < costs[a]! ? b : a;
      out.push(pool.splice(pick, 1)[0]!);
      costs.splice(pick, 1);
    }
    out.push(pool[0]!);
  }
  return out;
}

/** an index of `pool` drawn in proportion to weight, never `skip` (pool must have another) */
function weightedIndex(pool: readonly EndpointRuntime[], random: () => number, skip: number): number {
  let total = 0;
  for (let i = 0; i < pool.length; i++) if (i !== skip) total += pool[i]!.config.weight;
  let pick = random() * total;
  let last = -1;
  for (let i = 0; i < pool.length; i++) {
    if (i === skip) continue;
    last = i;
    pick -= pool[i]!.config.weight;
    if (pick < 0) return i;
  }
  return last;
}
