// The compiled, immutable form of the config that the data plane reads. Durations are in
// milliseconds, defaults are filled, models are mapped. Nothing here is parsed per request.
import { inspect } from 'node:util';
import type { ChargeableOutcome, Dialect } from './schema.ts';

/**
 * An API key. It never prints: not through JSON.stringify, util.inspect, template strings
 * or pino. Only the request path asks for the value, via reveal().
 */
export class Secret {
  #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  equals(other: Secret | undefined): boolean {
    return other !== undefined && other.#value === this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

export interface AuthConfig {
  /** lowercased header name */
  header: string;
  /** prefix + key, the header's whole value */
  value: Secret;
  /** where it came from, for status and logs (never the value) */
  source: string;
}

export interface EndpointConfig {
  /** identity across config swaps: upstream/name/url */
  key: string;
  name: string;
  url: string;
  origin: string;
  /** the url's path without a trailing slash, prefixed to every forwarded path */
  basePath: string;
  /** "&a=b" pairs appended to every forwarded query string ("" when none) */
  query: string;
  priority: number;
  weight: number;
  auth: AuthConfig | undefined;
  models: ReadonlyMap<string, string>;
  headers: readonly (readonly [string, string])[];
  /** bulkhead: attempts in flight at most (undefined: no limit) */
  maxConcurrent: number | undefined;
  /** client-side token buckets (undefined: none); at least one of the two is set */
  rateLimit: RateLimitConfig | undefined;
}

export interface RateLimitConfig {
  requestsPerMinute: number | undefined;
  tokensPerMinute: number | undefined;
}

export interface BreakerConfig {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  /** open after this many failures in a row (0: only the window decides) */
  consecutiveFailures: number;
  rollingWindowMs: number;
  openDurationMs: number;
  halfOpenRamp: readonly number[];
  failOn: ReadonlySet<ChargeableOutcome>;
  /**
   * Computed at compile time from every field above: a reload that changes it builds a new
   * breaker (seeded with the old state); an equal key keeps the breaker and its window.
   */
  key: string;
}

export interface RetryConfig {
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number; jitter: 'full' | 'none' };
  budget: { ratio: number; minPerSecond: number };
  respectRetryAfter: boolean;
  maxRetryAfterMs: number;
  paths: ReadonlySet<string>;
}

export interface TimeoutsConfig {
  connectMs: number;
  firstByteMs: number;
  responseMs: number;
  idleMs: number;
  totalMs: number;
}

export interface FallbackStep {
  model: string;
  maxTokens: number | undefined;
}

export interface UpstreamConfig {
  name: string;
  namespace: string | undefined;
  generation: number | undefined;
  api: Dialect;
  required: boolean;
  /** sorted by priority (low first); order within a priority is the spec's */
  endpoints: readonly EndpointConfig[];
  breaker: BreakerConfig;
  retry: RetryConfig;
  timeouts: TimeoutsConfig;
  fallbacks: ReadonlyMap<string, readonly FallbackStep[]>;
  validate: { emptyChoices: boolean; errorInBody: boolean };
  /** waiters for a bulkhead slot or a rate-limit token */
  queue: { maxSize: number; maxWaitMs: number };
  /** exact-match cache; undefined when off */
  cache: { ttlMs: number; maxEntries: number; maxBytes: number } | undefined;
  /** active probes of open endpoints; undefined when off */
  healthCheck: { path: string; intervalMs: number; timeoutMs: number } | undefined;
  balance: 'weighted' | 'leastLatency';
  /** hedged attempts; undefined when off */
  hedge: { afterMs: number; maxExtra: number } | undefined;
}

export interface RuntimeConfig {
  /** increases with every applied snapshot */
  generation: number;
  /** e.g. "file:/etc/breakwater/upstreams.yaml" or "kubernetes:shop" */
  source: string;
  appliedAt: number;
  upstreams: ReadonlyMap<string, UpstreamConfig>;
}
