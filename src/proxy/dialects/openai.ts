// The OpenAI dialect (and every OpenAI-compatible provider: Azure, vLLM, Gemini's and
// Anthropic's compatibility APIs, OpenRouter, Groq...).
import type { Outcome } from '../outcome.ts';
import { isInferencePath, usageFrom, type DialectRules, type ErrorClassInput, type OwnErrorKind, type PathKind } from './types.ts';

const TYPE: Record<OwnErrorKind, string> = {
  breaker_open: 'server_error',
  model_held: 'rate_limit_exceeded',
  endpoint_held: 'rate_limit_exceeded',
  overloaded: 'server_error',
  budget_exhausted: 'server_error',
  queue_full: 'rate_limit_exceeded',
  queue_timeout: 'rate_limit_exceeded',
  rate_limited: 'rate_limit_exceeded',
  deadline_exceeded: 'timeout',
  upstream_unavailable: 'server_error',
  upstream_timeout: 'timeout',
  invalid_request: 'invalid_request_error',
  forbidden: 'invalid_request_error',
  method_not_allowed: 'invalid_request_error',
  request_timeout: 'invalid_request_error',
  payload_too_large: 'invalid_request_error',
  not_found: 'invalid_request_error',
  shutting_down: 'server_error',
  stream_broken: 'server_error',
  internal: 'server_error',
};

function errorObject(kind: OwnErrorKind, message: string, requestId: string): string {
  return JSON.stringify({ error: { message: `${message} (breakwater request ${requestId})`, type: TYPE[kind], param: null, code: kind } });
}

function code(body: unknown): string | undefined {
  const error = (body as { error?: { code?: unknown; type?: unknown } } | undefined)?.error;
  if (typeof error?.code === 'string') return error.code;
  return typeof error?.type === 'string' ? error.type : undefined;
}

/** error codes that say the key or the account itself is unusable (not this one request) */
const KEY_FAILURES = new Set([
  'invalid_api_key', 'insufficient_quota', 'authentication_error', 'account_deactivated', 'billing_not_active',
  // the provider refuses this endpoint's region: every request through it will fail the same way
  'unsupported_country_region_territory',
]);

function classifyError({ status, body, retryAfterMs, path }: ErrorClassInput): Outcome {
  const c = code(body);
  const inference = isInferencePath(path);
  if (c === 'insufficient_quota' && inference) return { kind: 'account', status, reason: 'insufficient_quota' };
  if (status === 429 || c === 'rate_limit_exceeded') return { kind: 'throttled', status, scope: c === 'rate_limit_exceeded' ? 'model' : 'endpoint', retryAfterMs };
  // A key failure on an inference path holds the endpoint; a permission 403 (a restricted key,
  // an organization-only path) is about this request alone: the app gets it, nothing is held.
  if ((status === 401 || (status === 403 && c !== undefined && KEY_FAILURES.has(c))) && inference) {
    return { kind: 'account', status, reason: c ?? 'unauthorized' };
  }
  if (status === 529) return { kind: 'throttled', status, scope: 'endpoint', retryAfterMs };
  if (status === 408 || status >= 500) return { kind: 'server_error', status, retryAfterMs };
  return { kind: 'client_fault', status };
}

function invalidBody(body: unknown, checks: { emptyChoices: boolean; errorInBody: boolean }, path: PathKind): string | undefined {
  if (typeof body !== 'object' || body === null) return 'body is not a JSON object';
  const b = body as { error?: unknown; choices?: unknown; object?: unknown; data?: unknown };
  if (checks.errorInBody && b.error !== undefined && b.error !== null) return 'error object in a 200 body';
  if (!checks.emptyChoices) return undefined;
  // an empty list is a fine answer elsewhere (no files, no batches): only answers must have content
  if (path === 'generation') {
    if (Array.isArray(b.choices) && b.choices.length === 0) return 'empty choices';
    if (typeof b.object === 'string' && b.object.startsWith('chat.completion') && !Array.isArray(b.choices)) return 'no choices';
  }
  if (path === 'embeddings' && Array.isArray(b.data) && b.data.length === 0) return 'empty data';
  return undefined;
}

export const openai: DialectRules = {
  name: 'openai',
  errorBody: errorObject,
  sseErrorEvent: (kind, message, requestId) => `event: error\ndata: ${errorObject(kind, message, requestId)}\n\n`,
  classifyError,
  invalidBody,
  isTerminalEvent: (event, data) =>
    event === undefined ? data.is('[DONE]') : event === 'response.completed' || event === 'response.incomplete' || event === 'response.failed',
  // a Responses stream announces itself (response.created, response.in_progress) before content
  commitsStream: (event) => event !== 'response.created' && event !== 'response.in_progress',
  // response.failed ends a Responses stream, but as the provider's failure, not an answer
  isErrorEvent: (event, data) => event === 'error' || event === 'response.failed' || (event === undefined && data.startsWith('{"error"')),
  // chat/completions and embeddings: body.usage; Responses API: response.usage (also in response.completed)
  readUsage: (body) => {
    const b = body as { usage?: unknown; response?: { usage?: unknown } } | undefined;
    return usageFrom(b?.usage) ?? usageFrom(b?.response?.usage);
  },
  maxTokenFields: ['max_tokens', 'max_completion_tokens', 'max_output_tokens'],
};
