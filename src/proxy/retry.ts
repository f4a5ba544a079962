// Backoff with jitter, provider waits (Retry-After), the retry budget and the deadline.
import type { Clock } from '../clock.ts';
import type { RetryConfig } from '../config/runtime.ts';

/** Exponential backoff ceiling for the n-th wait (n >= 1), with full jitter: uniform in [0, ceiling). */
export function backoffMs(n: number, backoff: RetryConfig['backoff'], random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (n - 1));
  return backoff.jitter === 'full' ? Math.floor(random() * ceiling) : ceiling;
}

type HeaderBag = Record<string, string | string[] | undefined>;

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The provider's wait, from retry-after-ms, x-ms-retry-after-ms or retry-after (seconds or an HTTP date). */
export function retryAfterMs(headers: HeaderBag, now: number): number | undefined {
  const ms = first(headers['retry-after-ms']) ?? first(headers['x-ms-retry-after-ms']);
  if (ms !== undefined) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const after = first(headers['retry-after'])?.trim();
  if (after === undefined || after === '') return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * How long before an SDK's announced timeout Breakwater answers: its own 504 (x-should-retry:
 * false) must reach the SDK before the SDK's timer fires, or the SDK retries into the outage.
 */
export function sdkMarginMs(sdkTimeoutMs: number): number {
  return Math.min(2_000, Math.max(250, sdkTimeoutMs * 0.1));
}

/**
 * The request's deadline: the sooner of timeouts.total, x-breakwater-timeout (ms or Go
 * duration) and X-Stainless-Timeout (s) less a margin (sdkMarginMs).
 */
export function deadlineFor(start: number, totalMs: number, headers: HeaderBag): number {
  let budget = totalMs;
  const own = first(headers['x-breakwater-timeout']);
  if (own !== undefined) {
    const value = parseTimeoutHeader(own);
    if (value !== undefined) budget = Math.min(budget, value);
  }
  const sdk = Number(first(headers['x-stainless-timeout']));
  if (Number.isFinite(sdk) && sdk > 0) budget = Math.min(budget, Math.max(0, sdk * 1000 - sdkMarginMs(sdk * 1000)));
  return start + budget;
}

const TIMEOUT_PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** milliseconds ("1500"), or a Go-style duration with decimals ("1.5s", "1m30s") */
function parseTimeoutHeader(value: string): number | undefined {
  const text = value.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return Number(text);
  if (!/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(TIMEOUT_PART)) total += Number(n) * UNIT_MS[unit!]!;
  return total;
}

/**
 * Retries across all requests of an upstream are capped: every first attempt deposits `ratio`
 * tokens (which expire after 10 s), every second try of an (endpoint, model) pair a request has
 * already tried withdraws one (a failover to a target not tried yet is free: the breaker and
 * maxAttempts bound those); a reserve refilling at `minPerSecond` (capped at one window's worth,
 * 10 s x minPerSecond, and full at start) lets low-traffic upstreams and a burst at start-up
 * retry at all. So over any run of D seconds,
 * retries <= ratio * first attempts + minPerSecond * (D + 10).
 */
export class RetryBudget {
  static readonly WINDOW_MS = 10_000;
  #clock: Clock;
  #ratio: number;
  #minPerSecond: number;
  /** deposits per second-bucket, for expiry */
  #deposits: { second: number; amount: number }[] = [];
  #earned = 0;
  #reserve = 0;
  #reserveAt: number;

  constructor(budget: RetryConfig['budget'], clock: Clock) {
    this.#clock = clock;
    this.#ratio = budget.ratio;
    this.#minPerSecond = budget.minPerSecond;
    // starts full: a fresh sidecar must be able to fail over on its very first request
    this.#reserve = RetryBudget.#cap(budget.minPerSecond);
    this.#reserveAt = clock.now();
  }

  /** config swaps keep the balance but take the new rates */
  reconfigure(budget: RetryConfig['budget']): void {
    this.#ratio = budget.ratio;
    this.#minPerSecond = budget.minPerSecond;
  }

  recordFirstAttempt(): void {
    const now = this.#clock.now();
    this.#expire(now);
    const second = Math.floor(now / 1000);
    const last = this.#deposits.at(-1);
    if (last && last.second === second) last.amount += this.#ratio;
    else this.#deposits.push({ second, amount: this.#ratio });
    this.#earned += this.#ratio;
  }

  /** takes one retry token; false when the budget is spent */
  tryRetry(): boolean {
    const now = this.#clock.now();
    this.#expire(now);
    if (this.#earned >= 1 - 1e-9) { // ten deposits of 0.2 sum to 1.9999999999999998
      this.#earned -= 1;
      return true;
    }
    this.#refill(now);
    if (this.#reserve >= 1 - 1e-9) {
      this.#reserve -= 1;
      return true;
    }
    return false;
  }

  /** tokens available now (for /debug/state) */
  available(): number {
    const now = this.#clock.now();
    this.#expire(now);
    this.#refill(now);
    return Math.floor(this.#earned) + Math.floor(this.#reserve);
  }

  /** one window's worth, and at least one token so that a rate below 0.1/s still allows a retry; none at 0 */
  static #cap(minPerSecond: number): number {
    return minPerSecond > 0 ? Math.max(1, (minPerSecond * RetryBudget.WINDOW_MS) / 1000) : 0;
  }

  #refill(now: number): void {
    const cap = RetryBudget.#cap(this.#minPerSecond);
    this.#reserve = Math.min(cap, this.#reserve + ((now - this.#reserveAt) / 1000) * this.#minPerSecond);
    this.#reserveAt = now;
  }

  /** drops deposits older than the window; the balance never exceeds what the window deposited */
  #expire(now: number): void {
    const oldest = Math.floor((now - RetryBudget.WINDOW_MS) / 1000);
    let dropped = false;
    while (this.#deposits.length > 0 && this.#deposits[0]!.second <= oldest) {
      this.#deposits.shift();
      dropped = true;
    }
    if (dropped) {
      const inWindow = this.#deposits.reduce((sum, d) => sum + d.amount, 0);
      this.#earned = Math.min(this.#earned, inWindow);
    }
  }
}
