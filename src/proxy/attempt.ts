// The attempt loop: pick an endpoint, fire, classify, and then retry, fail over or fall back.
// A pass tries the requested model on every admitting endpoint, then each fallback model;
// skipping an open endpoint costs no attempt. Between passes Breakwater sleeps (backoff with
// jitter, or until a held endpoint is back), never past the deadline. Every attempt after the
// first draws from the upstream's retry budget.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Clock } from '../clock.ts';
import type { FallbackStep } from '../config/runtime.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { commit, type RequestOutcome } from './commit.ts';
import type { Availability, EndpointRuntime } from './endpoint.ts';
import { forward, type AttemptRequest, type AttemptResult } from './forward.ts';
import { describeOutcome, type Outcome } from './outcome.ts';
import { sendOwnError, sendProviderError } from './rescue.ts';
import { backoffMs } from './retry.ts';
import type { UpstreamRuntime } from './upstream.ts';

export interface ProxyRequest extends AttemptRequest {
  requestId: string;
  upstream: UpstreamRuntime;
  /** the parsed JSON body (buffered paths only), to rewrite model and max tokens */
  json: Record<string, unknown> | undefined;
  model: string | undefined;
  /** fallbacks allowed: a generation path, a chain for the model, no x-breakwater-fallback: off */
  fallbackAllowed: boolean;
  /** buffered and replayable: retries and failover allowed */
  retryable: boolean;
  startedAt: number;
}

export interface LoopDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

interface Target {
  model: string | undefined;
  maxTokens: number | undefined;
  fallback: boolean;
}

function targetsFor(req: ProxyRequest): Target[] {
  const first: Target = { model: req.model, maxTokens: undefined, fallback: false };
  if (!req.fallbackAllowed || req.model === undefined) return [first];
  const chain: readonly FallbackStep[] = req.upstream.config.fallbacks.get(req.model) ?? [];
  return [first, ...chain.map((s) => ({ model: s.model, maxTokens: s.maxTokens, fallback: true }))];
}

/** The body for one (endpoint, target): the original bytes unless the model or max tokens change. */
function bodyFor(req: ProxyRequest, endpoint: EndpointRuntime, target: Target): Buffer | Readable | undefined {
  if (req.json === undefined || target.model === undefined) return req.body;
  const model = endpoint.config.models.get(target.model) ?? target.model;
  if (model === req.json.model && target.maxTokens === undefined) return req.body; // the common case: no copy
  let changed = model !== req.json.model;
  const rewritten: Record<string, unknown> = { ...req.json, model };
  if (target.maxTokens !== undefined) {
    for (const field of req.upstream.dialect.maxTokenFields) {
      const value = rewritten[field];
      // cap, never inject: a field the app did not send stays unsent
      if (typeof value === 'number' && value > target.maxTokens) {
        rewritten[field] = target.maxTokens;
        changed = true;
      }
    }
  }
  return changed ? Buffer.from(JSON.stringify(rewritten)) : req.body;
}

interface Failure {
  endpoint: EndpointRuntime;
  outcome: Outcome;
  response: Extract<AttemptResult, { kind: 'failed' }>['response'];
}

export async function runAttempts(req: ProxyRequest, res: ServerResponse, deps: LoopDeps): Promise<RequestOutcome> {
  const { clock, log } = deps;
  const { upstream } = req;
  const { retry } = upstream.config;
  const targets = targetsFor(req);
  const maxAttempts = req.retryable ? retry.maxAttempts : 1;
  let attempts = 0;
  let waits = 0;
  let last: Failure | undefined;
  let budgetSpent = false;
  let deadlineHit = false;
  let providerMs = 0;
  const announced = new Set<Target>();

  passes: for (;;) {
    for (const target of targets) {
      for (const endpoint of upstream.order()) {
        if (endpoint.retired) continue;
        if (attempts >= maxAttempts || clock.now() >= req.deadline) break passes;
        const admission = endpoint.admit(target.model, clock.now());
        if (!admission.admitted) continue;
        if (attempts > 0) {
          if (!upstream.budget.tryRetry()) {
            endpoint.breaker.record(admission.ticket, 'ignore');
            budgetSpent = true;
            upstream.counters.budgetExhausted.inc();
            log.warn(
              { upstream: upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, attempts, reason: last ? describeOutcome(last.outcome) : 'unknown' },
              'retry budget exhausted: no further attempts for this request',
            );
            break passes;
          }
          upstream.countRetry(last?.outcome.kind ?? 'unknown');
        } else {
          upstream.budget.recordFirstAttempt();
        }
        if (target.fallback && !announced.has(target)) {
          announced.add(target);
          upstream.countFallback(req.model ?? '', target.model ?? '');
          log.warn({ upstream: upstream.config.name, requestId: req.requestId, from: req.model, to: target.model }, 'falling back to a smaller model');
        }
        attempts++;
        endpoint.inflight++;
        endpoint.inflightGauge.inc();
        const sent = performance.now();
        const authUsed = endpoint.config.auth;
        let result: AttemptResult;
        try {
          result = await forward(endpoint, req, bodyFor(req, endpoint, target), clock);
        } finally {
          providerMs += performance.now() - sent;
        }
        if (result.kind === 'answer') {
          return commit(req, res, { endpoint, ticket: admission.ticket, result, attempts, fallbackModel: target.fallback ? target.model : undefined, providerMs, authUsed }, deps);
        }
        endpoint.inflight--;
        endpoint.inflightGauge.dec();
        endpoint.record(admission.ticket, result.outcome, target.model, { requestId: req.requestId, ...retry, authUsed });
        if (result.outcome.kind === 'cancelled') {
          if (result.outcome.reason === 'client_disconnected') return 'cancelled';
          deadlineHit = true;
          break passes;
        }
        last = { endpoint, outcome: result.outcome, response: result.response };
        const more = req.retryable && result.outcome.kind !== 'internal' && attempts < maxAttempts;
        log.info(
          { upstream: upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, model: target.model, attempt: attempts, outcome: describeOutcome(result.outcome) },
          more ? 'attempt failed: failing over' : 'attempt failed: no attempts left',
        );
        if (!more) break passes;
      }
    }
    // A whole pass without an answer: wait (only now, when nothing else is left) and go again:
    // after a backoff if some endpoint would take the request now, or until a provider's
    // Retry-After ends. Endpoints behind an open breaker are not waited for: fail fast.
    if (attempts === 0 || attempts >= maxAttempts) break;
    const now = clock.now();
    const next = nextAvailable(upstream, targets, now);
    if (next.kind === 'open') break;
    const wait = next.kind === 'now' ? backoffMs(++waits, retry.backoff) : Math.max(next.at - now, backoffMs(++waits, retry.backoff));
    if (now + wait >= req.deadline || wait > retry.maxRetryAfterMs) break;
    const slept = performance.now();
    try {
      await clock.sleep(wait, req.appSignal);
    } catch {
      return 'cancelled';
    } finally {
      providerMs += performance.now() - slept;
    }
  }

  return giveUp(req, res, { attempts, last, budgetSpent, deadlineHit, providerMs }, deps);
}

/** The best availability over every (endpoint, target): now beats held beats open; earliest first. */
function nextAvailable(upstream: UpstreamRuntime, targets: readonly Target[], now: number): Availability {
  const rank = { now: 0, held: 1, open: 2 } as const;
  let best: Availability = { kind: 'open', at: Infinity };
  for (const endpoint of upstream.endpoints) {
    if (endpoint.retired) continue;
    for (const target of targets) {
      const a = endpoint.availability(target.model, now);
      if (rank[a.kind] < rank[best.kind] || (a.kind === best.kind && a.at < best.at)) best = a;
    }
  }
  return best;
}

function giveUp(
  req: ProxyRequest,
  res: ServerResponse,
  state: { attempts: number; last: Failure | undefined; budgetSpent: boolean; deadlineHit: boolean; providerMs: number },
  deps: LoopDeps,
): RequestOutcome {
  const { upstream, requestId } = req;
  const { dialect } = upstream;
  const now = deps.clock.now();
  const readyAt = nextAvailable(upstream, targetsFor(req), now).at;
  const retryAfterMs = Number.isFinite(readyAt) && readyAt > now ? readyAt - now : undefined;
  upstream.counters.overhead.observe(Math.max(0, performance.now() - req.startedAt - state.providerMs) / 1000);
  const { last } = state;
  if (last?.response) {
    sendProviderError(res, last.response, requestId, { attempts: state.attempts, endpoint: last.endpoint.name, retryAfterMs });
    return 'upstream_error';
  }
  if (last && state.budgetSpent) {
    sendOwnError(res, dialect, 'budget_exhausted', `upstream "${upstream.config.name}" failed (${describeOutcome(last.outcome)}) and its retry budget is spent`, requestId, {
      attempts: state.attempts,
      retryAfterMs,
    });
    return 'upstream_error';
  }
  if (last) {
    const timedOut = last.outcome.kind === 'timeout';
    sendOwnError(res, dialect, timedOut ? 'upstream_timeout' : last.outcome.kind === 'internal' ? 'internal' : 'upstream_unavailable', `upstream "${upstream.config.name}" failed: ${describeOutcome(last.outcome)} after ${state.attempts} attempt(s)`, requestId, {
      attempts: state.attempts,
      retryAfterMs,
    });
    return 'upstream_error';
  }
  if (state.deadlineHit || now >= req.deadline) {
    sendOwnError(res, dialect, 'deadline_exceeded', 'the request deadline passed before an endpoint could be tried', requestId, { attempts: state.attempts });
    return 'deadline';
  }
  sendOwnError(res, dialect, 'breaker_open', `every endpoint of upstream "${upstream.config.name}" is unavailable (breaker open or held)`, requestId, { attempts: 0, retryAfterMs: retryAfterMs ?? 1000 });
  return 'unavailable';
}
