// What a provider says about its own rate limits, in the headers of every answer, so that
// Breakwater slows down before the provider has to say 429 (used by ratelimit.ts).
//
//   OpenAI     x-ratelimit-{limit,remaining,reset}-{requests,tokens}; reset is a duration until
//              the limit is whole again ("1s", "6m0s", "20ms", "1m30.5s")
//   Anthropic  anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset};
//              reset is an RFC 3339 time
//
// Both providers refill continuously (a token bucket): "remaining R, whole again in T" means R
// now, rising to the limit L by T. A ProviderQuota mirrors exactly that, lowered by what
// Breakwater admits after it heard it, and forgets itself at T (the provider is whole again).
// Without a limit header the refill rate is unknown: the quota then holds at what is left until T.
import type { IncomingHttpHeaders } from 'node:http';

/** the provider's limits Breakwater mirrors: requests, all tokens, and Anthropic's input and output tokens */
export type ProviderBucket = 'requests' | 'tokens' | 'input' | 'output';

interface HeaderSpec {
  bucket: ProviderBucket;
  limit: string;
  remaining: string;
  reset: string;
  resetFormat: 'duration' | 'time';
}

const openai = (bucket: 'requests' | 'tokens'): HeaderSpec => ({
  bucket,
  limit: `x-ratelimit-limit-${bucket}`,
  remaining: `x-ratelimit-remaining-${bucket}`,
  reset: `x-ratelimit-reset-${bucket}`,
  resetFormat: 'duration',
});
const anthropic = (bucket: ProviderBucket, name: string): HeaderSpec => ({
  bucket,
  limit: `anthropic-ratelimit-${name}-limit`,
  remaining: `anthropic-ratelimit-${name}-remaining`,
  reset: `anthropic-ratelimit-${name}-reset`,
  resetFormat: 'time',
});

export const PROVIDER_HEADERS: readonly HeaderSpec[] = [
  openai('requests'),
  openai('tokens'),
  anthropic('requests', 'requests'),
  anthropic('tokens', 'tokens'),
  anthropic('input', 'input-tokens'),
  anthropic('output', 'output-tokens'),
];

/** one limit as the provider reported it */
export interface ProviderReport {
  bucket: ProviderBucket;
  remaining: number;
  /** ms from now until the limit is whole again */
  resetMs: number;
  limit: number | undefined;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/y;

/** A Go-style duration as OpenAI sends it ("1s", "6m0s", "20ms", "1m30.5s"), in ms; undefined when it is not one. */
export function parseResetDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  while (DURATION_PART.lastIndex < t.length) {
    const at = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(t);
    if (!m || m.index !== at) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return total;
}

/** An RFC 3339 time as Anthropic sends it, as ms from `wallNow` (never below 0); undefined when it is not one. */
export function parseResetTime(text: string, wallNow: number): number | undefined {
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - wallNow) : undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** One limit from the headers, when the provider reported it (a remaining count and a reset both readable). */
export function readReport(headers: IncomingHttpHeaders, spec: HeaderSpec, wallNow: number): ProviderReport | undefined {
  const remaining = count(header(headers, spec.remaining));
  if (remaining === undefined) return undefined;
  const reset = header(headers, spec.reset);
  if (reset === undefined) return undefined;
  const resetMs = spec.resetFormat === 'duration' ? parseResetDuration(reset) : parseResetTime(reset, wallNow);
  if (resetMs === undefined) return undefined;
  return { bucket: spec.bucket, remaining, resetMs, limit: count(header(headers, spec.limit)) };
}

/** every limit the headers report (for tests and /debug/state; the request path reads them one by one) */
export function readReports(headers: IncomingHttpHeaders, wallNow: number): ProviderReport[] {
  const out: ProviderReport[] = [];
  for (const spec of PROVIDER_HEADERS) {
    const r = readReport(headers, spec, wallNow);
    if (r) out.push(r);
  }
  return out;
}

/** float slack: a level computed from a refill rate may land a hair under a whole token */
const EPSILON = 1e-6;

/**
 * One provider limit as a bucket: `level` at `since`, refilling at `rate` per ms up to `limit`,
 * known until `until` (the provider's reset: after it the provider is whole again and the
 * quota says nothing).
 */
export class ProviderQuota {
  #level = 0;
  #since = 0;
  #rate = 0;
  #limit = Infinity;
  #until = 0;

  /**
   * The provider reported `remaining` and a reset in `resetMs`; `unseen` is what Breakwater
   * admitted after the request that carried the report, which the provider may not have counted yet.
   */
  report(remaining: number, resetMs: number, limit: number | undefined, unseen: number, now: number): void {
    if (!(resetMs > 0) || (limit !== undefined && remaining >= limit && unseen <= 0)) {
      this.#until = 0; // whole already: nothing to mirror
      return;
    }
    this.#level = remaining - unseen;
    this.#since = now;
    this.#until = now + resetMs;
    this.#limit = limit ?? Infinity;
    this.#rate = limit === undefined ? 0 : Math.max(0, limit - remaining) / resetMs;
  }

  /** what the provider would take now (Infinity when it said nothing or its reset has passed) */
  available(now: number): number {
    if (now >= this.#until) return Infinity;
    return Math.min(this.#limit, this.#level + this.#rate * (now - this.#since));
  }

  /** the earliest time `n` fits: `now` when it does (a cost above the limit waits for a whole bucket) */
  availableAt(n: number, now: number): number {
    if (now >= this.#until || n <= 0) return now;
    const need = Math.min(n, this.#limit);
    const a = this.available(now);
    if (a + EPSILON >= need) return now;
    return this.#rate > 0 ? Math.min(this.#until, now + (need - a) / this.#rate) : this.#until;
  }

  take(n: number, now: number): void {
    if (now >= this.#until) return;
    this.#level = this.available(now) - n;
    this.#since = now;
  }

  describe(now: number): { available: number; resetInMs: number; limit: number | null } | null {
    if (now >= this.#until) return null;
    return { available: Math.floor(this.available(now)), resetInMs: Math.round(this.#until - now), limit: Number.isFinite(this.#limit) ? this.#limit : null };
  }
}
