// Client-side rate limits per endpoint (`endpoints[].rateLimit: {requestsPerMinute,
// tokensPerMinute}`): an attempt goes to an endpoint only when both of its limits have room for
// it, and when the provider's own rate-limit headers (provider-limits.ts) say it has room too.
// The gate (gate.ts) asks availableAt() in peek() and reports an endpoint without room as
// `busy` (reason rate_limit): skipped like an open one, never charged to its breaker, never
// unready; take() reserves the request and its estimated tokens, and the Attempt settles the
// reservation once with the provider's reported usage.
//
// Why a sliding window, not a classic token bucket. A bucket that holds one minute's worth (L)
// and refills at L per minute lets L through at once and then L more as it refills: up to 2L
// in one 60-second window. It cannot promise "the provider never receives more than L in any
// minute", and providers count exactly that. A sliding window can: a request is admitted only
// when what was admitted in the minute before it, plus its own cost, stays within L, so every
// 60-second window, wherever it starts, holds at most L. The window is 60 slots of a second
// (a counter each, not a log of requests: memory is fixed whatever the limit, and reconciling
// a reservation adjusts the slot it was counted in). An admission counts its own slot and the
// 60 before it, a little more than a minute: rounding to slots only ever errs on the safe side
// (room comes back at most one slot, 1/60 of the window, later than exact). Room returns as
// the oldest slots leave the window, so the level refills continuously as the minute slides.
//
// Reservations. A request reserves 1 request and its estimated tokens: its output cap
// (max_tokens, max_completion_tokens or max_output_tokens, times `n`; DEFAULT_OUTPUT_TOKENS
// for a generation without one, nothing for embeddings and other paths) plus its prompt
// estimated from the body size (BYTES_PER_TOKEN). When the attempt settles:
//   - usage reported (JSON usage, the last SSE chunk, Anthropic message_start/message_delta):
//     the reservation becomes that usage (the unused part returns at once, an overrun is added);
//   - never sent (no connection: refused, DNS, TLS, connect timeout; or Breakwater could not
//     send it): all of it returns, the request too: the provider never saw it (a connection
//     reset may come after the request went out, so it is not counted as unsent);
//   - answered with an error status and no usage (429, 5xx, 4xx): the provider read the prompt
//     and generated nothing, so the prompt estimate stays counted and the output part returns;
//     the request stays counted (providers count refused requests against their limits);
//   - anything else without usage (a stream without usage, a timeout, a cut): the estimate stays.
// What was counted stays in the slot of its admission: providers count a request when it arrives.
//
// Reconfiguring a limit keeps what was spent in the last minute and applies the new limit to it
// at once; a limit that is added starts empty, one that is removed is dropped. Provider
// headers are mirrored only for endpoints with a `rateLimit` (see README, design notes).
import type { BodyFields } from './scan.ts';
import type { IncomingHttpHeaders } from 'node:http';
import type { RateLimitConfig } from '../config/runtime.ts';
import type { PathKind } from './dialects/types.ts';
import type { Outcome } from './outcome.ts';
import { PROVIDER_HEADERS, ProviderQuota, readReport, type ProviderBucket } from './provider-limits.ts';

/** the limits are per minute */
export const WINDOW_MS = 60_000;
/** slots per window */
export const SLOTS = 60;
/** prompt estimate: about four bytes of JSON body per token */
export const BYTES_PER_TOKEN = 4;
/** output reserved for a generation that sets no cap of its own (reconciled with usage afterwards) */
export const DEFAULT_OUTPUT_TOKENS = 1024;
/** a larger `n` is not believed (the provider refuses it anyway) */
const MAX_CHOICES = 128;

/** What one request costs the limits; computed once per request (server.ts). ProxyRequest carries both. */
export interface Cost {
  /** prompt estimate + output estimate */
  readonly estimatedTokens: number;
  /** the prompt's part of it */
  readonly estimatedPromptTokens: number;
}

/** "any request at all": for readers without a request at hand (readiness, give-up messages) */
export const ANY_REQUEST: Cost = { estimatedTokens: 1, estimatedPromptTokens: 0 };

export function estimatePromptTokens(bodyBytes: number): number {
  return Math.ceil(bodyBytes / BYTES_PER_TOKEN);
}

/** The output a request may generate, from the body's scanned fields (scan.ts): its cap times its choices. */
export function estimateOutputTokens(fields: Pick<BodyFields, 'maxTokens' | 'n'> | undefined, kind: PathKind): number {
  if (kind !== 'generation') return 0;
  const max = fields?.maxTokens;
  const cap = max !== undefined && max >= 0 ? Math.ceil(max) : DEFAULT_OUTPUT_TOKENS;
  const n = fields?.n;
  return n !== undefined && Number.isInteger(n) && n > 1 ? cap * Math.min(n, MAX_CHOICES) : cap;
}

/**
 * A sliding window over `windowMs` in SLOTS slots: what was counted in the current slot and the
 * SLOTS before it. Reads and writes first drop the slots that have left the window.
 */
export class SlidingWindow {
  limit: number;
  readonly #slotMs: number;
  readonly #counts = new Float64Array(SLOTS + 1);
  /** absolute index (time / slotMs) of the newest slot */
  #head = 0;
  #total = 0;

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.#slotMs = windowMs / SLOTS;
  }

  #advance(now: number): number {
    const k = Math.floor(now / this.#slotMs);
    if (k > this.#head) {
      const gone = Math.min(k - this.#head, SLOTS + 1);
      for (let i = 1; i <= gone; i++) {
        const idx = (this.#head + i) % (SLOTS + 1);
        this.#total -= this.#counts[idx]!;
        this.#counts[idx] = 0;
      }
      this.#head = k;
    }
    return this.#head;
  }

  /** counted in the window now */
  used(now: number): number {
    this.#advance(now);
    return this.#total;
  }

  /** counts `n` now; returns the slot it went into (for adjust) */
  add(n: number, now: number): number {
    const k = this.#advance(now);
    this.#counts[k % (SLOTS + 1)]! += n;
    this.#total += n;
    return k;
  }

  /** changes what `slot` holds by `delta` (never below 0); nothing once the slot has left the window */
  adjust(slot: number, delta: number, now: number): void {
    const head = this.#advance(now);
    if (slot < head - SLOTS || slot > head) return;
    const idx = slot % (SLOTS + 1);
    const before = this.#counts[idx]!;
    const after = Math.max(0, before + delta);
    this.#counts[idx] = after;
    this.#total += after - before;
  }

  /**
   * When `cost` fits: `now`, or the moment the oldest slots whose leaving makes room have left.
   * A cost above the limit waits for an empty window (it is counted as the whole limit).
   */
  availableAt(cost: number, now: number): number {
    const head = this.#advance(now);
    const need = this.#total + Math.min(cost, this.limit) - this.limit;
    if (need <= 0) return now;
    let freed = 0;
    for (let s = head - SLOTS; s <= head; s++) {
      freed += this.#counts[s % (SLOTS + 1)]!;
      if (freed >= need) return (s + SLOTS + 1) * this.#slotMs;
    }
    return (head + SLOTS + 1) * this.#slotMs; // only with a limit lowered below 1
  }
}

/** One admission's share of the limits, settled once. */
export class Reservation {
  readonly limiter: RateLimiter;
  /** the windows it was counted in (kept: a reload may replace the limiter's), and its slots there */
  readonly requestWindow: SlidingWindow | undefined;
  readonly requestSlot: number;
  readonly tokenWindow: SlidingWindow | undefined;
  readonly tokenSlot: number;
  /** tokens counted in the token window (the estimate, at most the limit) */
  readonly tokens: number;
  /** the prompt's part of them */
  readonly prompt: number;
  /** the limiter's running totals just after this admission: what came later, the provider's answer to this one cannot count */
  readonly seq: number;
  readonly cumTokens: number;
  readonly cumPrompt: number;
  settled = false;
  /** response headers arrived: the provider saw the request */
  reached = false;

  // positional, so an admission allocates this object only
  constructor(
    limiter: RateLimiter,
    requestWindow: SlidingWindow | undefined,
    requestSlot: number,
    tokenWindow: SlidingWindow | undefined,
    tokenSlot: number,
    tokens: number,
    prompt: number,
    seq: number,
    cumTokens: number,
    cumPrompt: number,
  ) {
    this.limiter = limiter;
    this.requestWindow = requestWindow;
    this.requestSlot = requestSlot;
    this.tokenWindow = tokenWindow;
    this.tokenSlot = tokenSlot;
    this.tokens = tokens;
    this.prompt = prompt;
    this.seq = seq;
    this.cumTokens = cumTokens;
    this.cumPrompt = cumPrompt;
  }

  /** the provider's answer arrived: mirror the limits its headers report */
  observe(headers: IncomingHttpHeaders, now: number, wallNow: number): void {
    this.reached = true;
    this.limiter.observe(this, headers, now, wallNow);
  }

  /** once, when the attempt settles; `usedTokens` when the provider reported usage */
  settle(outcome: Outcome, usedTokens: number | undefined, now: number): void {
    if (this.settled) return;
    this.settled = true;
    this.limiter.settle(this, outcome, usedTokens, now);
  }
}

/** failures that happen before a connection exists, so before any request byte is sent */
const NO_CONNECTION = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

function neverSent(outcome: Outcome): boolean {
  switch (outcome.kind) {
    case 'internal':
      return true;
    case 'timeout':
      return outcome.phase === 'connect';
    case 'connect':
      return NO_CONNECTION.has(outcome.code) || outcome.code.startsWith('ERR_SSL_') || outcome.code.startsWith('ERR_TLS_') || outcome.code.includes('CERT');
    default:
      return false;
  }
}

function answeredWithError(outcome: Outcome): boolean {
  return outcome.kind === 'throttled' || outcome.kind === 'server_error' || outcome.kind === 'account' || outcome.kind === 'client_fault';
}

export interface RateLimitState {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  /** what an admission could take now (own window and the provider's report together); null: unlimited */
  available: { requests: number | null; tokens: number | null };
  /** what the provider last reported, while it holds */
  provider: Record<ProviderBucket, ReturnType<ProviderQuota['describe']>>;
}

/** One endpoint's limits: its own windows and the provider's reported quotas. */
export class RateLimiter {
  #requests: SlidingWindow | undefined;
  #tokens: SlidingWindow | undefined;
  readonly #windowMs: number;
  readonly #provider: Record<ProviderBucket, ProviderQuota> = {
    requests: new ProviderQuota(),
    tokens: new ProviderQuota(),
    input: new ProviderQuota(),
    output: new ProviderQuota(),
  };
  /** running totals of admissions, for what a provider's report cannot have counted yet */
  #admitted = 0;
  #cumTokens = 0;
  #cumPrompt = 0;

  /** `windowMs` is a minute; only tests shorten it (RuntimeDeps.rateLimitWindowMs) */
  constructor(config: RateLimitConfig, windowMs = WINDOW_MS) {
    this.#windowMs = windowMs;
    this.reconfigure(config);
  }

  reconfigure(config: RateLimitConfig): void {
    this.#requests = this.#resize(this.#requests, config.requestsPerMinute);
    this.#tokens = this.#resize(this.#tokens, config.tokensPerMinute);
  }

  #resize(window: SlidingWindow | undefined, limit: number | undefined): SlidingWindow | undefined {
    if (limit === undefined) return undefined;
    if (!window) return new SlidingWindow(limit, this.#windowMs);
    window.limit = limit; // what was spent stays spent; the new limit applies at once
    return window;
  }

  /** the earliest time this request fits every limit (`now` when it fits now) */
  availableAt(cost: Cost, now: number): number {
    const tokens = cost.estimatedTokens;
    const prompt = cost.estimatedPromptTokens;
    const p = this.#provider;
    return Math.max(
      this.#requests ? this.#requests.availableAt(1, now) : now,
      this.#tokens ? this.#tokens.availableAt(tokens, now) : now,
      p.requests.availableAt(1, now),
      p.tokens.availableAt(tokens, now),
      p.input.availableAt(prompt, now),
      p.output.availableAt(tokens - prompt, now),
    );
  }

  /** reserves the request (the caller has checked availableAt) */
  take(cost: Cost, now: number): Reservation {
    const tokens = cost.estimatedTokens;
    const prompt = Math.min(cost.estimatedPromptTokens, tokens);
    const counted = this.#tokens ? Math.min(tokens, this.#tokens.limit) : tokens;
    const requestSlot = this.#requests ? this.#requests.add(1, now) : -1;
    const tokenSlot = this.#tokens ? this.#tokens.add(counted, now) : -1;
    const p = this.#provider;
    p.requests.take(1, now);
    p.tokens.take(tokens, now);
    p.input.take(prompt, now);
    p.output.take(tokens - prompt, now);
    this.#admitted++;
    this.#cumTokens += tokens;
    this.#cumPrompt += prompt;
    return new Reservation(this, this.#requests, requestSlot, this.#tokens, tokenSlot, counted, Math.min(prompt, counted), this.#admitted, this.#cumTokens, this.#cumPrompt);
  }

  /** reconciles a reservation with what the provider counted (see the header comment) */
  settle(r: Reservation, outcome: Outcome, usedTokens: number | undefined, now: number): void {
    const unsent = !r.reached && neverSent(outcome);
    const keep = usedTokens !== undefined ? usedTokens : unsent ? 0 : r.reached && answeredWithError(outcome) ? r.prompt : r.tokens;
    if (r.tokenWindow && keep !== r.tokens) r.tokenWindow.adjust(r.tokenSlot, keep - r.tokens, now);
    if (unsent && r.requestWindow) r.requestWindow.adjust(r.requestSlot, -1, now);
  }

  /** the provider's headers on the answer to `r` */
  observe(r: Reservation, headers: IncomingHttpHeaders, now: number, wallNow: number): void {
    for (const spec of PROVIDER_HEADERS) {
      if (headers[spec.remaining] === undefined) continue;
      const report = readReport(headers, spec, wallNow);
      if (!report) continue;
      const outputNow = this.#cumTokens - this.#cumPrompt;
      const outputThen = r.cumTokens - r.cumPrompt;
      const unseen =
        spec.bucket === 'requests'
          ? this.#admitted - r.seq
          : spec.bucket === 'tokens'
            ? this.#cumTokens - r.cumTokens
            : spec.bucket === 'input'
              ? this.#cumPrompt - r.cumPrompt
              : outputNow - outputThen;
      this.#provider[spec.bucket].report(report.remaining, report.resetMs, report.limit, unseen, now);
    }
  }

  /** what an admission could take now of `bucket`; undefined when nothing limits it */
  available(bucket: 'requests' | 'tokens', now: number): number | undefined {
    const window = bucket === 'requests' ? this.#requests : this.#tokens;
    const own = window ? window.limit - window.used(now) : Infinity;
    const provider = this.#provider[bucket].available(now);
    const a = Math.min(own, provider);
    return Number.isFinite(a) ? Math.max(0, Math.floor(a)) : undefined;
  }

  describe(now: number): RateLimitState {
    const p = this.#provider;
    return {
      requestsPerMinute: this.#requests?.limit ?? null,
      tokensPerMinute: this.#tokens?.limit ?? null,
      available: { requests: this.available('requests', now) ?? null, tokens: this.available('tokens', now) ?? null },
      provider: { requests: p.requests.describe(now), tokens: p.tokens.describe(now), input: p.input.describe(now), output: p.output.describe(now) },
    };
  }
}
