// The one place that decides what an attempt's result was. Everything downstream (retry,
// breaker, metrics, logs) reads the Outcome this returns.
import type { DialectRules, PathKind } from './dialects/types.ts';
import type { Outcome } from './outcome.ts';
import type { SseOverflow } from './stream.ts';
import { retryAfterMs } from './retry.ts';

/** Why Breakwater itself aborted an attempt. */
export type AbortCause =
  | { kind: 'timeout'; phase: 'firstByte' | 'response' | 'idle' }
  | { kind: 'cancelled'; reason: 'client_disconnected' | 'deadline' | 'hedge_lost' };

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
]);

/**
 * This process ran out of something (file descriptors, memory, socket buffers): the request
 * never left, and no provider may be blamed for it.
 */
const LOCAL_CODES = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'ENOBUFS']);

/** A transport-level failure (no usable response) as an outcome. */
export function classifyTransport(error: unknown, cause: AbortCause | undefined): Outcome {
  if (cause) return cause.kind === 'timeout' ? { kind: 'timeout', phase: cause.phase } : { kind: 'cancelled', reason: cause.reason };
  const code = (error as { code?: unknown } | undefined)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { kind: 'timeout', phase: 'connect' };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { kind: 'timeout', phase: 'firstByte' };
    case 'UND_ERR_BODY_TIMEOUT':
      return { kind: 'timeout', phase: 'idle' };
    case 'Z_DATA_ERROR':
    case 'Z_BUF_ERROR':
    case 'ERR_INVALID_CHAR':
      return { kind: 'invalid_response', reason: 'corrupt compressed body' };
    case 'UND_ERR_HEADERS_OVERFLOW':
      // the provider sent more header bytes than undici accepts: its answer is unusable, fail over
      return { kind: 'invalid_response', reason: 'response headers over the limit' };
    default:
      if (typeof code !== 'string') return { kind: 'connect', code: 'unknown' };
      if (LOCAL_CODES.has(code)) return { kind: 'internal', code };
      if (CONNECT_CODES.has(code) || isNetworkCode(code)) return { kind: 'connect', code };
      // undici's and Node's own argument errors: Breakwater built a request it cannot send
      return { kind: 'internal', code };
  }
}

/** errno-style network errors (ECONN*, EPROTO...) and TLS failures reach the provider's side */
function isNetworkCode(code: string): boolean {
  return /^E[A-Z]+$/.test(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.includes('CERT');
}

/** Failures after the headers arrived: a cut connection is a broken response, not a connect error. */
export function classifyBodyError(error: unknown, cause: AbortCause | undefined): Outcome {
  if (cause) return classifyTransport(error, cause);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', phase: 'idle' };
  if (code === 'BREAKWATER_RESPONSE_TOO_LARGE' || code === 'ERR_BUFFER_TOO_LARGE') return { kind: 'invalid_response', reason: 'response body over the limit' };
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') return { kind: 'invalid_response', reason: 'corrupt compressed body' };
  return { kind: 'invalid_response', reason: 'connection lost mid-response' };
}

/** A provider's HTTP error status (>= 400). */
export function classifyHttpError(
  dialect: DialectRules,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
  now: number,
  path: PathKind,
): Outcome {
  return dialect.classifyError({ status, body, retryAfterMs: retryAfterMs(headers, now), path });
}

/**
 * An SSE `error` event from the provider (before or after the commit), through the same dialect
 * rules as an HTTP error: a streamed Anthropic overloaded_error is a model-scoped throttle, a
 * streamed rate_limit_exceeded too; anything else is the provider's failure (a 500 in effect).
 */
export function classifyStreamError(dialect: DialectRules, data: string | undefined, path: PathKind): Outcome {
  let body: unknown;
  try {
    body = data === undefined ? undefined : JSON.parse(data);
  } catch {
    body = undefined;
  }
  const outcome = dialect.classifyError({ status: 500, body, retryAfterMs: undefined, path });
  // a stream that started is never the request's own fault: a 4xx-looking body is still a failure
  return outcome.kind === 'client_fault' ? { kind: 'server_error', status: 500, retryAfterMs: undefined } : outcome;
}

/** A 2xx JSON body: ok (with the parsed body), or invalid (malformed, empty, an error in disguise). */
export function classifyJsonBody(
  dialect: DialectRules,
  text: string,
  checks: { emptyChoices: boolean; errorInBody: boolean },
  path: PathKind,
): { outcome: Outcome; body: unknown } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { outcome: { kind: 'invalid_response', reason: 'malformed JSON body' }, body: undefined };
  }
  const reason = dialect.invalidBody(body, checks, path);
  return { outcome: reason === undefined ? { kind: 'ok' } : { kind: 'invalid_response', reason }, body };
}

/** A stream past one of the SSE scanner's limits (stream.ts): it cannot be relayed whole. */
export function classifySseOverflow(overflow: SseOverflow): Outcome {
  const size = overflow.bytes % 1048576 === 0 ? `${overflow.bytes / 1048576} MiB` : `${overflow.bytes} bytes`;
  return { kind: 'invalid_response', reason: overflow.limit === 'event' ? `SSE event over ${size}` : `over ${size} of SSE before the first event` };
}
