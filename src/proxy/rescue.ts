// The one place an error becomes the app's HTTP response: Breakwater's own errors in the
// upstream's dialect, provider errors passed on, and the headers every response carries.
// Every error the app receives says x-should-retry: false, so the official SDKs do not
// multiply load by retrying what Breakwater already retried.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { GiveUp } from './attempt.ts';
import type { RequestOutcome } from './commit.ts';
import { responseHeaders } from './headers.ts';
import type { DialectRules, OwnErrorKind } from './dialects/types.ts';

export const OWN_STATUS: Record<OwnErrorKind, number> = {
  breaker_open: 503,
  model_held: 429,
  endpoint_held: 429,
  overloaded: 503,
  budget_exhausted: 503,
  queue_full: 429,
  queue_timeout: 429,
  rate_limited: 429,
  deadline_exceeded: 504,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  invalid_request: 400,
  forbidden: 403,
  method_not_allowed: 405,
  request_timeout: 408,
  payload_too_large: 413,
  not_found: 404,
  shutting_down: 503,
  stream_broken: 502,
  internal: 500,
};

export function sendOwnError(
  res: ServerResponse,
  dialect: DialectRules,
  kind: OwnErrorKind,
  message: string,
  requestId: string,
  extra: { retryAfterMs?: number; attempts?: number; close?: boolean; headers?: OutgoingHttpHeaders } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = dialect.errorBody(kind, message, requestId);
  const headers: OutgoingHttpHeaders = {
    ...extra.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-should-retry': 'false',
    'x-breakwater-request-id': requestId,
    'x-breakwater-error': kind,
  };
  if (extra.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(extra.retryAfterMs / 1000)));
  if (extra.attempts !== undefined) headers['x-breakwater-attempts'] = String(extra.attempts);
  if (extra.close) headers.connection = 'close';
  res.writeHead(OWN_STATUS[kind], headers);
  res.end(body);
}

/** A provider's error response, passed on after Breakwater's own retries. */
export function sendProviderError(
  res: ServerResponse,
  response: { status: number; headers: IncomingHttpHeaders; bytes: Buffer },
  requestId: string,
  extra: { attempts: number; endpoint: string; retryAfterMs: number | undefined },
): void {
  const headers = responseHeaders(response.headers, true);
  headers['content-length'] = response.bytes.length;
  headers['x-should-retry'] = 'false';
  headers['x-breakwater-request-id'] = requestId;
  headers['x-breakwater-endpoint'] = extra.endpoint;
  headers['x-breakwater-attempts'] = String(extra.attempts);
  if (headers['retry-after'] === undefined && extra.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(extra.retryAfterMs / 1000)));
  res.writeHead(response.status, headers);
  res.end(response.bytes);
}

/** Renders the attempt loop's give-up; returns the request's outcome for metrics. */
export function sendGiveUp(res: ServerResponse, dialect: DialectRules, requestId: string, g: GiveUp): RequestOutcome {
  switch (g.kind) {
    case 'cancelled':
      return 'cancelled';
    case 'provider_error':
      sendProviderError(res, g.response, requestId, { attempts: g.attempts, endpoint: g.endpoint, retryAfterMs: g.retryAfterMs });
      return 'upstream_error';
    case 'refused':
      sendOwnError(res, dialect, g.error, g.message, requestId, { attempts: g.attempts, retryAfterMs: g.retryAfterMs });
      return g.outcome;
  }
}
