// One upstream at run time: its compiled config, its endpoints in priority order, its
// retry budget and its dialect. Rebuilt on every config swap; endpoints (their state: gate,
// pool, counters) and budget carry over, while each snapshot keeps its own frozen endpoint
// configs, so a request reads url, key, headers and model names from the snapshot it started on.
import type { EndpointConfig, UpstreamConfig } from '../config/runtime.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { DIALECTS, type DialectRules } from './dialects/index.ts';
import type { UpstreamCache } from './cache.ts';
import type { AdmissionQueue } from './admission.ts';
import type { EndpointRuntime } from './endpoint.ts';
import { hedgeCounters, type HedgeCounters } from './hedge.ts';
import type { RetryBudget } from './retry.ts';
import { groupByPriority, orderEndpoints } from './select.ts';

export class UpstreamRuntime {
  readonly config: UpstreamConfig;
  readonly dialect: DialectRules;
  readonly endpoints: readonly EndpointRuntime[];
  readonly budget: RetryBudget;
  /** the exact-match cache (undefined: off); kept across swaps like the budget */
  readonly cache: UpstreamCache | undefined;
  /** requests waiting for a bulkhead slot or a rate-limit token (admission.ts) */
  readonly queue: AdmissionQueue;
  /** endpoints grouped by priority; a group of one needs no shuffling */
  readonly #groups: readonly (readonly EndpointRuntime[])[];
  readonly #weighted: boolean;
  readonly counters: {
    duration: { observe(v: number): void };
    overhead: { observe(v: number): void };
    budgetExhausted: { inc(): void };
  };
  /** breakwater_hedges_total by result, bound once */
  readonly hedges: HedgeCounters;
  /** label children bound once per label value, so a request allocates no label objects */
  readonly #requests = new Map<string, { inc(): void }>();
  readonly #retries = new Map<string, { inc(): void }>();
  readonly #fallbacks = new Map<string, { inc(): void }>();
  readonly #metrics: Metrics;
  readonly #configs: ReadonlyMap<EndpointRuntime, EndpointConfig>;
  /** models some endpoint sends under another name (its `models` map): such a body is rewritten */
  readonly #renamed: ReadonlySet<string>;

  /** `endpoints[i]` is the state of `config.endpoints[i]` */
  constructor(config: UpstreamConfig, endpoints: readonly EndpointRuntime[], budget: RetryBudget, metrics: Metrics, queue: AdmissionQueue, cache?: UpstreamCache) {
    this.config = config;
    this.queue = queue;
    this.cache = cache;
    this.#configs = new Map(endpoints.map((e, i) => [e, config.endpoints[i]!]));
    this.#renamed = new Set(config.endpoints.flatMap((e) => [...e.models].filter(([from, to]) => from !== to).map(([from]) => from)));
    this.dialect = DIALECTS[config.api];
    this.endpoints = endpoints;
    this.budget = budget;
    const groups = groupByPriority(endpoints);
    this.#groups = groups;
    this.#weighted = groups.some((g) => g.length > 1);
    this.#metrics = metrics;
    this.counters = {
      duration: metrics.requestDuration.labels(config.name),
      overhead: metrics.overhead.labels(config.name),
      budgetExhausted: metrics.retryBudgetExhausted.labels(config.name),
    };
    this.hedges = hedgeCounters(metrics, config.name);
  }

  /** the endpoint's config as this snapshot compiled it (never a later reload's) */
  configOf(endpoint: EndpointRuntime): EndpointConfig {
    return this.#configs.get(endpoint) ?? endpoint.config;
  }

  /** true when some endpoint renames this model, so its body must be rewritten there */
  renamesModel(model: string): boolean {
    return this.#renamed.has(model);
  }

  countRequest(outcome: string): void {
    let child = this.#requests.get(outcome);
    if (!child) this.#requests.set(outcome, (child = this.#metrics.requests.labels(this.config.name, outcome)));
    child.inc();
  }

  countRetry(reason: string): void {
    let child = this.#retries.get(reason);
    if (!child) this.#retries.set(reason, (child = this.#metrics.retries.labels(this.config.name, reason)));
    child.inc();
  }

  /** model names here are configured ones only (a fallback chain's), never free text from the app */
  countFallback(from: string, to: string): void {
    const key = `${from}\n${to}`;
    let child = this.#fallbacks.get(key);
    if (!child) this.#fallbacks.set(key, (child = this.#metrics.fallbacks.labels(this.config.name, from, to)));
    child.inc();
  }

  /** Endpoints in the order this request tries them: by priority, then by `balance` within one (select.ts). */
  order(random: () => number = Math.random): readonly EndpointRuntime[] {
    if (!this.#weighted) return this.endpoints;
    return orderEndpoints(this.#groups, this.config.balance, random);
  }
}
