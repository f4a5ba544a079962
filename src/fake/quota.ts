// A provider-side rate limit for the fake, as the real providers keep theirs: a bucket of
// `requests` (and/or `tokens`) that refills continuously over `windowMs`, reported on every
// answer in the dialect's headers (OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens}
// with Go-style durations; Anthropic anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}
// with RFC 3339 times) and enforced with a 429 when a request does not fit. A request is charged
// when it arrives: 1 request and its prompt (body bytes / 4) plus its output cap (max_tokens…,
// or its event count). Remaining is rounded down and the reset is the time until the rounded
// level is whole again, rounded up: what a client infers from them never exceeds the truth.
import type { DialectName } from './content.ts';
import type { FaultSpec } from './faults.ts';

export interface QuotaSpec {
  /** requests per window */
  requests?: number;
  /** tokens per window */
  tokens?: number;
  /** the window (ms): an empty bucket is whole again after this long */
  windowMs: number;
}

/** the answer to a request over the quota: a 429 in the dialect's rate-limit shape */
export const OVER_QUOTA: FaultSpec = { kind: 'error', name: 'over-quota', status: 429, flavor: 'rate_limit' };

class Bucket {
  readonly limit: number;
  readonly #rate: number;
  #level: number;
  #at: number;

  constructor(limit: number, windowMs: number, now: number) {
    this.limit = limit;
    this.#rate = limit / windowMs;
    this.#level = limit;
    this.#at = now;
  }

  level(now: number): number {
    this.#level = Math.min(this.limit, this.#level + (now - this.#at) * this.#rate);
    this.#at = now;
    return this.#level;
  }

  take(n: number): void {
    this.#level -= n;
  }

  /** ms until `n` fits */
  waitFor(n: number, now: number): number {
    return Math.max(0, Math.ceil((Math.min(n, this.limit) - this.level(now)) / this.#rate));
  }

  /** remaining (rounded down) and the ms until that is whole again (rounded up) */
  report(now: number): { remaining: number; resetMs: number } {
    const remaining = Math.max(0, Math.floor(this.level(now)));
    return { remaining, resetMs: Math.ceil((this.limit - remaining) / this.#rate) };
  }
}

/** Go-style, as OpenAI writes it: 20ms, 1.5s, 6m0s */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = (ms - minutes * 60_000) / 1000;
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

export class Quota {
  #requests: Bucket | undefined;
  #tokens: Bucket | undefined;

  get active(): boolean {
    return this.#requests !== undefined || this.#tokens !== undefined;
  }

  /** a new quota, whole; null removes it */
  set(spec: QuotaSpec | null, now = Date.now()): void {
    this.#requests = spec?.requests !== undefined ? new Bucket(spec.requests, spec.windowMs, now) : undefined;
    this.#tokens = spec?.tokens !== undefined ? new Bucket(spec.tokens, spec.windowMs, now) : undefined;
  }

  /**
   * Charges one request of `tokens` if it fits. Returns the headers to send (after the charge)
   * and, when it does not fit, the wait before it would.
   */
  charge(tokens: number, dialect: DialectName, now = Date.now()): { headers: Record<string, string>; overMs: number | undefined } {
    const r = this.#requests;
    const t = this.#tokens;
    const wait = Math.max(r ? r.waitFor(1, now) : 0, t ? t.waitFor(tokens, now) : 0);
    if (wait === 0) {
      r?.take(1);
      t?.take(tokens);
    }
    const headers: Record<string, string> = {};
    for (const [name, bucket] of [['requests', r], ['tokens', t]] as const) {
      if (!bucket) continue;
      const { remaining, resetMs } = bucket.report(now);
      if (dialect === 'openai') {
        headers[`x-ratelimit-limit-${name}`] = String(bucket.limit);
        headers[`x-ratelimit-remaining-${name}`] = String(remaining);
        headers[`x-ratelimit-reset-${name}`] = goDuration(resetMs);
      } else {
        headers[`anthropic-ratelimit-${name}-limit`] = String(bucket.limit);
        headers[`anthropic-ratelimit-${name}-remaining`] = String(remaining);
        headers[`anthropic-ratelimit-${name}-reset`] = new Date(now + resetMs).toISOString();
      }
    }
    return { headers, overMs: wait === 0 ? undefined : wait };
  }
}

/** Validates an untrusted quota spec (control API); throws an Error saying what is wrong. */
export function validateQuota(input: unknown): QuotaSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error('a quota must be a JSON object');
  const q = input as Record<string, unknown>;
  for (const k of Object.keys(q)) if (k !== 'requests' && k !== 'tokens' && k !== 'windowMs') throw new Error(`unknown quota field "${k}"`);
  for (const k of ['requests', 'tokens', 'windowMs'] as const) {
    const v = q[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new Error(`"${k}" must be a positive number`);
  }
  if (q.windowMs === undefined) throw new Error('"windowMs" is required');
  if (q.requests === undefined && q.tokens === undefined) throw new Error('a quota needs "requests" or "tokens"');
  return q as unknown as QuotaSpec;
}
