// The Anthropic Messages dialect.
import type { Outcome } from '../outcome.ts';
import { isInferencePath, usageFrom, type DialectRules, type ErrorClassInput, type OwnErrorKind, type PathKind } from './types.ts';

const TYPE: Record<OwnErrorKind, string> = {
  breaker_open: 'overloaded_error',
  model_held: 'rate_limit_error',
  endpoint_held: 'rate_limit_error',
  overloaded: 'overloaded_error',
  budget_exhausted: 'overloaded_error',
  queue_full: 'rate_limit_error',
  queue_timeout: 'rate_limit_error',
  rate_limited: 'rate_limit_error',
  deadline_exceeded: 'timeout_error',
  upstream_unavailable: 'api_error',
  upstream_timeout: 'timeout_error',
  invalid_request: 'invalid_request_error',
  forbidden: 'permission_error',
  method_not_allowed: 'invalid_request_error',
  request_timeout: 'invalid_request_error',
  payload_too_large: 'request_too_large',
  not_found: 'not_found_error',
  shutting_down: 'overloaded_error',
  stream_broken: 'api_error',
  internal: 'api_error',
};

function errorObject(kind: OwnErrorKind, message: string, requestId: string): string {
  return JSON.stringify({ type: 'error', error: { type: TYPE[kind], message: `${message} (breakwater request ${requestId})` }, request_id: requestId });
}

function errorOf(body: unknown): { type?: unknown; message?: unknown } | undefined {
  return (body as { error?: { type?: unknown; message?: unknown } } | undefined)?.error;
}

function classifyError({ status, body, retryAfterMs, path }: ErrorClassInput): Outcome {
  const error = errorOf(body);
  const message = typeof error?.message === 'string' ? error.message : '';
  const inference = isInferencePath(path);
  if (status === 529 || error?.type === 'overloaded_error') return { kind: 'throttled', status, scope: 'model', retryAfterMs };
  if (status === 429 || error?.type === 'rate_limit_error') return { kind: 'throttled', status, scope: 'endpoint', retryAfterMs };
  // A key failure on an inference path holds the endpoint; a permission_error (a scoped key, an
  // admin-only path) is about this request alone: the app gets it, nothing is held.
  if ((status === 401 || error?.type === 'authentication_error') && inference) {
    return { kind: 'account', status, reason: typeof error?.type === 'string' ? error.type : 'unauthorized' };
  }
  // Anthropic reports an exhausted prepaid balance as a 400; it is an account problem, not the request's.
  if ((status === 400 || status === 403) && /credit balance/i.test(message) && inference) return { kind: 'account', status, reason: 'credit balance too low' };
  if (status === 408 || status >= 500) return { kind: 'server_error', status, retryAfterMs };
  return { kind: 'client_fault', status };
}

function invalidBody(body: unknown, checks: { emptyChoices: boolean; errorInBody: boolean }, path: PathKind): string | undefined {
  if (typeof body !== 'object' || body === null) return 'body is not a JSON object';
  const b = body as { type?: unknown; content?: unknown; error?: unknown };
  if (checks.errorInBody && (b.type === 'error' || (b.error !== undefined && b.error !== null))) return 'error object in a 200 body';
  if (checks.emptyChoices && path === 'generation' && b.type === 'message' && Array.isArray(b.content) && b.content.length === 0) return 'empty content';
  return undefined;
}

export const anthropic: DialectRules = {
  name: 'anthropic',
  errorBody: errorObject,
  sseErrorEvent: (kind, message, requestId) => `event: error\ndata: ${errorObject(kind, message, requestId)}\n\n`,
  classifyError,
  invalidBody,
  isTerminalEvent: (event) => event === 'message_stop',
  isErrorEvent: (event) => event === 'error',
  commitsStream: (event) => event !== 'message_start' && event !== 'content_block_start',
  // a message: body.usage; a stream: message_start carries input, message_delta the output
  readUsage: (body) => {
    const b = body as { usage?: unknown; message?: { usage?: unknown } } | undefined;
    return usageFrom(b?.usage) ?? usageFrom(b?.message?.usage);
  },
  maxTokenFields: ['max_tokens'],
};
