// Hedged attempts (spec.hedge: {after, maxExtra}; off by default). The attempt loop hands each
// attempt to attemptWithHedges() instead of calling forward() itself; with hedging off (or a
// request that cannot be replayed) that is one forward() call. With hedging on, when an attempt
// has not reached its commit point `after` into its life, one more attempt of the same request
// (same target model) starts on the next endpoint in the request's order that has nothing of
// this request in flight and that the request has not tried yet, and so on every `after` up to
// maxExtra. The first attempt to reach its commit point wins; the others are aborted and
// settled as cancelled (never charged to a breaker). An attempt that fails while another is
// still running does not end the request: its failure is recorded on its endpoint and the race
// goes on. Every hedge draws one token from the retry budget (a spent budget means no hedge)
// and counts as an attempt (x-breakwater-attempts, retry.maxAttempts).
//
// The commit point is forward()'s: a whole, validated JSON answer (a provider sends a
// non-streaming answer's headers only when it is ready), or a stream's first content event
// (status and headers alone, or comments and pings, are not a first byte: a stream that sent
// 200 and then stalls is exactly the case a hedge is for).
import type { Clock } from '../clock.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ProxyRequest } from './attempt.ts';
import { bodyFor, type Target } from './fallback.ts';
import type { AbortCause } from './classify.ts';
import { Attempt, forward, type AttemptResult } from './forward.ts';
import { describeOutcome, retryDecision, type Outcome } from './outcome.ts';
import { recordLatency } from './select.ts';

export type HedgeResult = 'started' | 'won' | 'lost' | 'failed' | 'budget_exhausted';
export type HedgeCounters = Readonly<Record<HedgeResult, { inc(): void }>>;

/** breakwater_hedges_total children of one upstream, bound once */
export function hedgeCounters(metrics: Metrics, upstream: string): HedgeCounters {
  return {
    started: metrics.hedges.labels(upstream, 'started'),
    won: metrics.hedges.labels(upstream, 'won'),
    lost: metrics.hedges.labels(upstream, 'lost'),
    failed: metrics.hedges.labels(upstream, 'failed'),
    budget_exhausted: metrics.hedges.labels(upstream, 'budget_exhausted'),
  };
}

/** What the race hands back to the loop: the attempt whose result decides (the loop or commit settles it). */
export interface Raced {
  attempt: Attempt;
  result: AttemptResult;
  /** hedged attempts started (each one counts as an attempt) */
  extra: number;
}

export interface RaceContext {
  clock: Clock;
  log: Logger;
  random: () => number;
  /** forward()'s wait cap (the loop's failover share of the time left) */
  cap: number;
  /** hedges this attempt may add: maxExtra less the request's earlier hedges, and no more than maxAttempts allows */
  extraLeft: number;
  /** the loop's "endpoint key \n model" pairs this request has tried; hedges add theirs */
  tried: Set<string>;
}

const HEDGE_LOST = { kind: 'cancelled', reason: 'hedge_lost' } as const satisfies Outcome & AbortCause;

/** One attempt, raced against hedges when the upstream asks for them and the request can be replayed. */
export async function attemptWithHedges(first: Attempt, req: ProxyRequest, target: Target, ctx: RaceContext): Promise<Raced> {
  const hedge = req.upstream.config.hedge;
  if (hedge === undefined || !req.retryable || ctx.extraLeft <= 0) {
    const sent = ctx.clock.now();
    const result = await forward(first, req, bodyFor(req, first.endpoint, target), ctx.clock, ctx.cap);
    recordLatency(first.endpoint, result, ctx.clock.now() - sent);
    return { attempt: first, result, extra: 0 };
  }
  return new Race(req, target, ctx, hedge.afterMs).run(first);
}

interface Running {
  attempt: Attempt;
  sent: number;
  hedge: boolean;
  done: Promise<Finished>;
}

interface Finished {
  running: Running;
  result: AttemptResult;
}

class Race {
  readonly #req: ProxyRequest;
  readonly #target: Target;
  readonly #ctx: RaceContext;
  readonly #afterMs: number;
  readonly #running: Running[] = [];
  #extra = 0;
  #timer: NodeJS.Timeout | undefined;
  /** resolves when the next hedge is due; undefined when none will be */
  #due: Promise<'due'> | undefined;

  constructor(req: ProxyRequest, target: Target, ctx: RaceContext, afterMs: number) {
    this.#req = req;
    this.#target = target;
    this.#ctx = ctx;
    this.#afterMs = afterMs;
  }

  async run(first: Attempt): Promise<Raced> {
    this.#launch(first, false);
    this.#arm();
    try {
      for (;;) {
        const waiting: Promise<Finished | 'due'>[] = this.#running.map((r) => r.done);
        if (this.#due) waiting.push(this.#due);
        const next = await Promise.race(waiting);
        if (next === 'due') {
          this.#due = undefined;
          if (this.#startHedge() !== 'budget_exhausted' && this.#extra < this.#ctx.extraLeft) this.#arm();
          continue;
        }
        const { running, result } = next;
        this.#running.splice(this.#running.indexOf(running), 1);
        recordLatency(running.attempt.endpoint, result, this.#ctx.clock.now() - running.sent);
        if (result.kind === 'answer') {
          if (running.hedge) this.#req.upstream.hedges.won.inc();
          return this.#end(running, result);
        }
        if (running.hedge) this.#req.upstream.hedges[result.outcome.kind === 'cancelled' ? 'lost' : 'failed'].inc();
        if (this.#running.length > 0 && retryDecision(result.outcome) === 'failover') {
          // another attempt of this request is still running: this failure is its endpoint's, not the request's
          running.attempt.settle(result.outcome);
          this.#ctx.log.info(
            { upstream: this.#req.upstream.config.name, endpoint: running.attempt.endpoint.name, requestId: this.#req.requestId, outcome: describeOutcome(result.outcome), hedge: running.hedge },
            'attempt failed while a hedged attempt is still running: waiting for it',
          );
          continue;
        }
        return this.#end(running, result);
      }
    } finally {
      this.#ctx.clock.clearTimeout(this.#timer);
    }
  }

  #arm(): void {
    this.#due = new Promise((resolve) => {
      this.#timer = this.#ctx.clock.setTimeout(() => resolve('due'), this.#afterMs);
    });
  }

  #launch(attempt: Attempt, hedge: boolean): void {
    const { clock, cap, log } = this.#ctx;
    const req = this.#req;
    const running: Running = { attempt, sent: clock.now(), hedge, done: undefined as unknown as Promise<Finished> };
    // a rewrite that throws becomes this attempt's failure, never the race's
    const send = async () => forward(attempt, req, bodyFor(req, attempt.endpoint, this.#target), clock, cap);
    running.done = send().then(
      (result) => ({ running, result }),
      (err: unknown) => {
        // a bug or a rewrite that threw: this attempt is Breakwater's failure
        log.error({ err, upstream: req.upstream.config.name, endpoint: attempt.endpoint.name, requestId: req.requestId }, 'attempt failed inside breakwater');
        return { running, result: { kind: 'failed', outcome: { kind: 'internal', code: 'exception' }, response: undefined } };
      },
    );
    this.#running.push(running);
  }

  /** one more attempt on the next endpoint in the request's order that is free for it */
  #startHedge(): 'started' | 'none' | 'budget_exhausted' {
    const { clock, random, tried, log } = this.#ctx;
    const req = this.#req;
    const { upstream } = req;
    const model = this.#target.model;
    const now = clock.now();
    if (now >= req.deadline || req.appSignal.aborted) return 'none';
    for (const endpoint of upstream.order(random)) {
      if (endpoint.retired || this.#running.some((r) => r.attempt.endpoint === endpoint)) continue;
      const pair = `${endpoint.config.key}\n${model ?? ''}`; // the loop's pair key (attempt.ts)
      if (tried.has(pair) || endpoint.gate.peek(model, now, req).kind !== 'now') continue;
      // the budget is checked before a half-open trial slot is taken, as the loop does
      if (!upstream.budget.tryRetry()) {
        upstream.hedges.budget_exhausted.inc();
        log.info({ upstream: upstream.config.name, requestId: req.requestId }, 'retry budget spent: no hedged attempt');
        return 'budget_exhausted';
      }
      const admission = endpoint.gate.take(model, now, req);
      if (!admission.admitted) continue;
      tried.add(pair);
      this.#extra++;
      upstream.hedges.started.inc();
      const attempt = new Attempt(endpoint, upstream.configOf(endpoint), admission.ticket, model, { requestId: req.requestId, retry: upstream.config.retry }, clock, req.deadline, req.appSignal);
      attempt.reservation = admission.reservation;
      log.info({ upstream: upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, afterMs: this.#afterMs * this.#extra }, 'no first byte yet: hedged attempt started');
      this.#launch(attempt, true);
      return 'started';
    }
    return 'none';
  }

  /** the race is over: `decided` goes back to the loop, every other attempt is cancelled */
  #end(decided: Running, result: AttemptResult): Raced {
    for (const loser of this.#running) {
      loser.attempt.abort(HEDGE_LOST);
      if (loser.hedge) this.#req.upstream.hedges.lost.inc();
      void loser.done.then(({ running, result: late }) => {
        if (late.kind === 'answer') discard(late);
        // cut by this race, or earlier by the app going away or the deadline: never charged
        const cause = running.attempt.cause;
        const cut: Outcome = cause?.kind === 'cancelled' ? { kind: 'cancelled', reason: cause.reason } : HEDGE_LOST;
        recordLatency(running.attempt.endpoint, { kind: 'failed', outcome: cut, response: undefined }, this.#ctx.clock.now() - running.sent);
        running.attempt.settle(cut);
      });
    }
    this.#running.length = 0;
    return { attempt: decided.attempt, result, extra: this.#extra };
  }
}

/** a loser that reached its commit point anyway: release its body (the abort already cut the socket) */
function discard(result: Extract<AttemptResult, { kind: 'answer' }>): void {
  const { body } = result;
  if (body.kind !== 'buffered') body.exchange.abort(new Error('hedge lost'));
}
