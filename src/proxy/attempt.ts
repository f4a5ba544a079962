// The attempt loop: pick an endpoint, fire, classify, and then fail over, fall back, retry or
// give up. It returns a value (Answer | GiveUp) and never touches the app's response: commit.ts
// writes an answer, rescue.ts renders a give-up.
//
// A pass tries the requested model on every endpoint whose gate is open for it, then each
// fallback model; skipping an unavailable endpoint costs no attempt. The first try of a
// (endpoint, model) pair this request has not tried is free; only a second try of the same pair
// draws from the upstream's retry budget (the budget bounds amplification on a failing provider;
// the breaker and maxAttempts bound failovers). Between passes Breakwater sleeps (backoff with
// jitter, or until a provider's short wait ends), never past the deadline and never longer than
// retry.backoff.max: a longer wait goes back to the app at once with its Retry-After. When every
// endpoint that could serve is busy (Breakwater's own bulkhead or rate limit), the request waits
// in the upstream's priority queue (admission.ts) and tries again when it gets a turn.
import type { Clock } from '../clock.ts';
import type { Logger } from '../telemetry/log.ts';
import type { CachePlan } from './cache.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Priority, Waiter } from './admission.ts';
import type { OwnErrorKind } from './dialects/types.ts';
import type { EndpointRuntime } from './endpoint.ts';
import { targetsFor, type Target } from './fallback.ts';
import { Attempt, type AttemptRequest, type AttemptResult } from './forward.ts';
import { attemptWithHedges } from './hedge.ts';
import type { Availability } from './gate.ts';
import { describeOutcome, retryDecision, type Outcome } from './outcome.ts';
import { ANY_REQUEST, type Cost } from './ratelimit.ts';
import { backoffMs } from './retry.ts';
import type { BodyFields } from './scan.ts';
import type { UpstreamRuntime } from './upstream.ts';

/** with another target left, an attempt may wait at most this share of the time left (the rest is the failover's) */
export const FAILOVER_SHARE = 0.7;

export interface ProxyRequest extends AttemptRequest {
  requestId: string;
  upstream: UpstreamRuntime;
  /** the parsed JSON body (buffered paths only), to rewrite model and max tokens */
  json: Record<string, unknown> | undefined;
  /** the top-level fields scan.ts read, when the buffered body is a JSON object (the cache reads temperature) */
  fields?: BodyFields | undefined;
  model: string | undefined;
  /** fallbacks allowed: a generation path, a chain for the model, no x-breakwater-fallback: off */
  fallbackAllowed: boolean;
  /** buffered and replayable: retries and failover allowed */
  retryable: boolean;
  startedAt: number;
  /** a cacheable request that missed (or bypassed) the cache: commit.ts stores its answer */
  cache?: CachePlan | undefined;
  /** x-breakwater-priority: the queue serves high first */
  priority: Priority;
  /** the request's cost for the endpoints' rate limits: prompt estimate + output cap (ratelimit.ts) */
  estimatedTokens: number;
  /** the prompt's part of estimatedTokens */
  estimatedPromptTokens: number;
}

export interface LoopDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  random?: () => number;
}

/** The loop found an answer: commit.ts writes it and settles the attempt. */
export interface Answer {
  kind: 'answer';
  attempt: Attempt;
  result: Extract<AttemptResult, { kind: 'answer' }>;
  attempts: number;
  fallbackModel: string | undefined;
  providerMs: number;
}

/** The loop gave up: rescue.ts renders it in the dialect's shape, with x-should-retry: false. */
export type GiveUp =
  /** the last provider error response, passed on */
  | { kind: 'provider_error'; response: { status: number; headers: AttemptResultResponse['headers']; bytes: Buffer }; endpoint: string; attempts: number; retryAfterMs: number | undefined; providerMs: number }
  /** Breakwater's own refusal */
  | { kind: 'refused'; error: OwnErrorKind; message: string; attempts: number; retryAfterMs: number | undefined; providerMs: number; outcome: 'upstream_error' | 'unavailable' | 'deadline' | 'shed' }
  /** the app went away: nothing to write */
  | { kind: 'cancelled' };

type AttemptResultResponse = NonNullable<Extract<AttemptResult, { kind: 'failed' }>['response']>;

interface Failure {
  endpoint: EndpointRuntime;
  outcome: Outcome;
  response: Extract<AttemptResult, { kind: 'failed' }>['response'];
}

export async function runAttempts(req: ProxyRequest, deps: LoopDeps): Promise<Answer | GiveUp> {
  const { clock, log } = deps;
  const random = deps.random ?? Math.random;
  const { upstream } = req;
  const { retry } = upstream.config;
  const targets = targetsFor(req);
  const maxAttempts = req.retryable ? retry.maxAttempts : 1;
  /** "endpoint key \n model" pairs this request has tried */
  const tried = new Set<string>();
  let attempts = 0;
  let hedges = 0;
  let waits = 0;
  let last: Failure | undefined;
  let budgetSpent = false;
  let longWait: number | undefined;
  let providerMs = 0;
  const announced = new Set<Target>();
  /** its place in the upstream's queue, once it has had to wait */
  let waiter: Waiter | undefined;

  passes: for (;;) {
    for (const target of targets) {
      for (const endpoint of upstream.order(random)) {
        if (endpoint.retired) continue;
        const now = clock.now();
        if (attempts >= maxAttempts || now >= req.deadline) break passes;
        if (endpoint.gate.peek(target.model, now, req).kind !== 'now') continue;
        const pair = `${endpoint.config.key}\n${target.model ?? ''}`;
        // the budget is checked before a half-open trial slot is taken
        if (attempts > 0 && tried.has(pair) && !upstream.budget.tryRetry()) {
          budgetSpent = true;
          upstream.counters.budgetExhausted.inc();
          log.warn(
            { upstream: upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, attempts, reason: last ? describeOutcome(last.outcome) : 'unknown' },
            'retry budget exhausted: no further attempts for this request',
          );
          break passes;
        }
        const admission = endpoint.gate.take(target.model, now, req);
        if (!admission.admitted) continue;
        if (waiter) waiter.hasTurn = false;
        if (attempts > 0) upstream.countRetry(last?.outcome.kind ?? 'unknown');
        else upstream.budget.recordFirstAttempt();
        tried.add(pair);
        if (target.fallback && !announced.has(target)) {
          announced.add(target);
          upstream.countFallback(req.model ?? '', target.model ?? '');
          log.warn({ upstream: upstream.config.name, requestId: req.requestId, from: req.model, to: target.model }, 'falling back to a smaller model');
        }
        attempts++;
        let attempt = new Attempt(endpoint, upstream.configOf(endpoint), admission.ticket, target.model, { requestId: req.requestId, retry }, clock, req.deadline, req.appSignal);
        attempt.reservation = admission.reservation;
        const sent = performance.now();
        let result: AttemptResult;
        try {
          const cap = attempts < maxAttempts && otherTargetLeft(upstream, targets, tried, now) ? Math.max(0, (req.deadline - now) * FAILOVER_SHARE) : Infinity;
          const extraLeft = Math.min((upstream.config.hedge?.maxExtra ?? 0) - hedges, maxAttempts - attempts);
          const raced = await attemptWithHedges(attempt, req, target, { clock, log, random, cap, extraLeft, tried });
          ({ attempt, result } = raced); // a hedge may have answered: its attempt decides
          attempts += raced.extra;
          hedges += raced.extra;
        } catch (err) {
          // a bug or a rewrite that threw: this attempt is Breakwater's failure, recorded once
          log.error({ err, upstream: upstream.config.name, endpoint: endpoint.name, requestId: req.requestId }, 'attempt failed inside breakwater');
          result = { kind: 'failed', outcome: { kind: 'internal', code: 'exception' }, response: undefined };
        } finally {
          providerMs += performance.now() - sent;
        }
        if (result.kind === 'answer') {
          return { kind: 'answer', attempt, result, attempts, fallbackModel: target.fallback ? target.model : undefined, providerMs };
        }
        attempt.settle(result.outcome);
        const decision = retryDecision(result.outcome);
        if (decision === 'cancelled') return { kind: 'cancelled' };
        last = { endpoint: attempt.endpoint, outcome: result.outcome, response: result.response };
        const more = req.retryable && decision === 'failover' && attempts < maxAttempts;
        log.info(
          { upstream: upstream.config.name, endpoint: attempt.endpoint.name, requestId: req.requestId, model: target.model, attempt: attempts, outcome: describeOutcome(result.outcome) },
          more ? 'attempt failed: failing over' : 'attempt failed: no attempts left',
        );
        if (!more) break passes;
      }
    }
    // A whole pass without an answer: wait (only now, when nothing else is left) and go again:
    // after a backoff if some endpoint would take the request now, or until a provider's short
    // wait ends. Endpoints behind an open breaker are not waited for: fail fast.
    if (attempts >= maxAttempts) break;
    const now = clock.now();
    const next = nextAvailable(upstream, targets, now, req);
    // a rate limit whose room comes later than the queue may wait: the app hears it at once (429 rate_limited, Retry-After)
    const roomTooLate = next.kind === 'busy' && next.reason === 'rate_limit' && next.at - now > Math.min(upstream.queue.config.maxWaitMs, req.deadline - now);
    if (next.kind === 'busy' && !roomTooLate && now < req.deadline) {
      // Breakwater's own capacity is full everywhere this request could go: wait for a turn
      waiter ??= upstream.queue.waiter(req.priority, req.deadline, (t) => nextAvailable(upstream, targets, t, req).kind !== 'busy');
      // woken when a slot frees, or when any endpoint's wait ends (a rate limit's room, a hold, a half-open)
      const wakeAt = soonestChange(upstream, targets, now, req);
      const queued = performance.now();
      const exit = await upstream.queue.wait(waiter, wakeAt, req.appSignal);
      providerMs += performance.now() - queued;
      if (exit === 'turn') continue;
      if (exit === 'cancelled') return { kind: 'cancelled' };
      return queueRefusal(req, exit, waiter, wakeAt, { attempts, providerMs }, clock.now());
    }
    if (attempts === 0 || roomTooLate) break;
    if (next.kind === 'open') break;
    const backoff = backoffMs(++waits, retry.backoff, random);
    const wait = next.kind === 'now' ? backoff : Math.max(next.at - now, backoff);
    if (now + wait >= req.deadline) break;
    if (wait > retry.backoff.maxMs) {
      longWait = wait; // not slept inside a request: the app hears it at once
      break;
    }
    const slept = performance.now();
    try {
      await clock.sleep(wait, req.appSignal);
    } catch {
      return { kind: 'cancelled' };
    } finally {
      providerMs += performance.now() - slept;
    }
  }

  // a turn this request got from the queue and did not use (its deadline, its budget) goes to the next waiter
  if (waiter?.hasTurn) upstream.queue.wake();
  return giveUp(req, { attempts, last, budgetSpent, longWait, providerMs }, clock.now());
}

/** Is there an (endpoint, target) this request has not tried that could serve it now or soon? */
function otherTargetLeft(upstream: UpstreamRuntime, targets: readonly Target[], tried: ReadonlySet<string>, now: number): boolean {
  for (const target of targets) {
    for (const endpoint of upstream.endpoints) {
      if (endpoint.retired || tried.has(`${endpoint.config.key}\n${target.model ?? ''}`)) continue;
      if (endpoint.gate.peek(target.model, now).kind !== 'open') return true;
    }
  }
  return false;
}

const RANK: Record<Availability['kind'], number> = { now: 0, busy: 1, held: 2, open: 3 };

/** The best availability over every (endpoint, target): now beats busy beats held beats open; earliest first. */
export function nextAvailable(upstream: UpstreamRuntime, targets: readonly Target[], now: number, cost: Cost = ANY_REQUEST): Availability {
  let best: Exclude<Availability, { kind: 'now' }> = { kind: 'open', at: Infinity, reason: 'no endpoint' };
  for (const endpoint of upstream.endpoints) {
    if (endpoint.retired) continue;
    for (const target of targets) {
      const a = endpoint.gate.peek(target.model, now, cost);
      if (a.kind === 'now') return a;
      if (RANK[a.kind] < RANK[best.kind] || (a.kind === best.kind && a.at < best.at)) best = a;
    }
  }
  return best;
}

/** The soonest time an (endpoint, target) that cannot serve now may change its mind (Infinity: only a release will tell). */
function soonestChange(upstream: UpstreamRuntime, targets: readonly Target[], now: number, cost: Cost): number {
  let soonest = Infinity;
  for (const endpoint of upstream.endpoints) {
    if (endpoint.retired) continue;
    for (const target of targets) {
      const a = endpoint.gate.peek(target.model, now, cost);
      if (a.kind !== 'now' && a.at < soonest) soonest = a.at;
    }
  }
  return soonest;
}

/** The queue shed the request or its wait ran out: 429 with a Retry-After (the expected room, else maxWait). */
function queueRefusal(req: ProxyRequest, exit: 'queue_full' | 'queue_timeout', waiter: Waiter, at: number, state: { attempts: number; providerMs: number }, now: number): GiveUp {
  const { name } = req.upstream.config;
  const { maxWaitMs, maxSize } = req.upstream.queue.config;
  const message =
    exit === 'queue_full'
      ? `upstream "${name}": every endpoint is at its limit and the queue is full (${maxSize} waiting); this ${req.priority}-priority request was shed (the lowest priority goes first)`
      : `upstream "${name}": every endpoint stayed at its limit for ${Math.round(now - waiter.enteredAt)} ms in the queue (maxWait ${maxWaitMs} ms, or the request's deadline)`;
  const retryAfterMs = Number.isFinite(at) && at > now ? at - now : Math.max(1000, maxWaitMs);
  return { kind: 'refused', error: exit, message, attempts: state.attempts, retryAfterMs, providerMs: state.providerMs, outcome: 'shed' };
}

function giveUp(
  req: ProxyRequest,
  state: { attempts: number; last: Failure | undefined; budgetSpent: boolean; longWait: number | undefined; providerMs: number },
  now: number,
): GiveUp {
  const { upstream } = req;
  const name = upstream.config.name;
  const { attempts, last, providerMs } = state;
  const next = nextAvailable(upstream, targetsFor(req), now, req);
  const readyIn = next.kind === 'now' ? undefined : Number.isFinite(next.at) && next.at > now ? next.at - now : undefined;
  const retryAfterMs = state.longWait ?? readyIn;
  if (last?.response) {
    return { kind: 'provider_error', response: last.response, endpoint: last.endpoint.name, attempts, retryAfterMs, providerMs };
  }
  const refused = (error: OwnErrorKind, message: string, outcome: 'upstream_error' | 'unavailable' | 'deadline' | 'shed', after = retryAfterMs): GiveUp => ({
    kind: 'refused',
    error,
    message,
    attempts,
    retryAfterMs: after,
    providerMs,
    outcome,
  });
  if (last && state.budgetSpent) return refused('budget_exhausted', `upstream "${name}" failed (${describeOutcome(last.outcome)}) and its retry budget is spent`, 'upstream_error');
  if (last?.outcome.kind === 'cancelled') {
    // the deadline cut the last attempt: answered before the app's own timer fires, so its SDK does not retry
    return refused('deadline_exceeded', `upstream "${name}": the request deadline passed during attempt ${attempts}`, 'deadline', undefined);
  }
  if (last) {
    const kind = last.outcome.kind === 'timeout' ? 'upstream_timeout' : last.outcome.kind === 'internal' ? 'internal' : 'upstream_unavailable';
    return refused(kind, `upstream "${name}" failed: ${describeOutcome(last.outcome)} after ${attempts} attempt(s)`, 'upstream_error');
  }
  if (now >= req.deadline) return refused('deadline_exceeded', 'the request deadline passed before an endpoint could be tried', 'deadline', undefined);
  // nothing was tried: say what is in the way, once
  if (next.kind === 'busy' && next.reason === 'rate_limit') {
    // Breakwater's own limit, not the provider's: 429 with the time until one endpoint has room
    return refused('rate_limited', `upstream "${name}": every endpoint that could serve this request is at its client-side rate limit (rateLimit)`, 'unavailable');
  }
  if (next.kind === 'held') {
    const what = next.scope === 'model' ? `model "${req.model ?? ''}" is held on every endpoint` : 'every endpoint is held';
    return refused(next.scope === 'model' ? 'model_held' : 'endpoint_held', `upstream "${name}": ${what} (${next.reason}) until the provider's wait ends`, 'unavailable');
  }
  if (next.kind === 'busy') return refused('queue_timeout', `upstream "${name}": every endpoint is at its limit`, 'shed', retryAfterMs ?? Math.max(1000, upstream.queue.config.maxWaitMs));
  return refused('breaker_open', `every endpoint of upstream "${name}" is unavailable (breaker open)`, 'unavailable', retryAfterMs ?? 1000);
}
