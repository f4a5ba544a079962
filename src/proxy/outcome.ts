// The typed result of one attempt. classify.ts is the only place that produces these; retry,
// breaker, metrics and logs all read the same value.
import type { ChargeableOutcome } from '../config/schema.ts';

export type Outcome =
  | { kind: 'ok' }
  /** the provider answered that the request itself is wrong: pass it through, the provider is healthy */
  | { kind: 'client_fault'; status: number }
  /** the provider is out of capacity; scope 'model' holds only (endpoint, model) */
  | { kind: 'throttled'; status: number; scope: 'endpoint' | 'model'; retryAfterMs: number | undefined }
  /** 401/403/insufficient quota: this endpoint cannot serve anyone for a while */
  | { kind: 'account'; status: number; reason: string }
  | { kind: 'server_error'; status: number; retryAfterMs: number | undefined }
  | { kind: 'timeout'; phase: 'connect' | 'firstByte' | 'response' | 'idle' }
  | { kind: 'connect'; code: string }
  | { kind: 'invalid_response'; reason: string }
  /** Breakwater could not send the request (e.g. a header undici refuses): not the provider's fault */
  | { kind: 'internal'; code: string }
  /** the app went away, its own deadline passed, or another attempt of the request committed first (hedge.ts): recorded as nothing */
  | { kind: 'cancelled'; reason: 'client_disconnected' | 'deadline' | 'hedge_lost' };

export type OutcomeKind = Outcome['kind'];

/** What a breaker learns from an outcome. */
export type BreakerVerdict = 'success' | 'failure' | 'ignore';

export function breakerVerdict(outcome: Outcome, failOn: ReadonlySet<ChargeableOutcome>): BreakerVerdict {
  switch (outcome.kind) {
    case 'ok':
    case 'client_fault':
      return 'success';
    case 'cancelled':
    case 'internal':
    case 'account': // holds the endpoint instead (see endpoint.ts); a key problem is not an outage
      return 'ignore';
    case 'throttled':
    case 'server_error':
    case 'timeout':
    case 'connect':
    case 'invalid_response':
      return failOn.has(outcome.kind) ? 'failure' : 'success';
  }
}

/**
 * What the attempt loop does after an outcome: `answer` (the app gets this response),
 * `failover` (another endpoint, model or a later try may succeed), `stop` (no further attempt
 * helps: give up), `cancelled` (the app is gone: write nothing).
 */
export type RetryDecision = 'answer' | 'failover' | 'stop' | 'cancelled';

export function retryDecision(outcome: Outcome): RetryDecision {
  switch (outcome.kind) {
    case 'ok':
    case 'client_fault':
      return 'answer';
    case 'cancelled':
      return outcome.reason === 'client_disconnected' ? 'cancelled' : 'stop';
    case 'internal':
      return 'stop';
    case 'throttled':
    case 'server_error':
    case 'timeout':
    case 'connect':
    case 'invalid_response':
    case 'account':
      return 'failover';
  }
}

/** the provider's own failure (what error rates and alerts count), as opposed to the app's or ours */
export function isProviderFailure(kind: OutcomeKind): boolean {
  return kind !== 'ok' && kind !== 'client_fault' && kind !== 'cancelled' && kind !== 'internal';
}

/** Outcomes after which another endpoint (or a later retry) may still succeed. */
export function isRetryable(outcome: Outcome): boolean {
  return retryDecision(outcome) === 'failover';
}

export function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'ok':
      return 'ok';
    case 'client_fault':
      return `client fault ${outcome.status}`;
    case 'throttled':
      return `throttled ${outcome.status}${outcome.scope === 'model' ? ' (model)' : ''}`;
    case 'account':
      return `account error ${outcome.status}: ${outcome.reason}`;
    case 'server_error':
      return `server error ${outcome.status}`;
    case 'timeout':
      return `timeout (${outcome.phase})`;
    case 'connect':
      return `connection failed (${outcome.code})`;
    case 'invalid_response':
      return `invalid response: ${outcome.reason}`;
    case 'cancelled':
      return `cancelled (${outcome.reason})`;
    case 'internal':
      return `request could not be sent (${outcome.code})`;
  }
}
