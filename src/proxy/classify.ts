// The one place that decides what an attempt's result was. Everything downstream (retry,
// breaker, metrics, logs) reads the Outcome this returns.
import type { DialectRules } from './dialects/types.ts';
import type { Outcome } from './outcome.ts';
import { retryAfterMs } from './retry.ts';

/** Why Breakwater itself aborted an attempt. */
export type AbortCause =
  | { kind: 'timeout'; phase: 'firstByte' | 'response' | 'idle' }
  | { kind: 'cancelled'; reason: 'client_disconnected' | 'deadline' };

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
]);

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
    default:
      if (typeof code === 'string' && CONNECT_CODES.has(code)) return { kind: 'connect', code };
      return { kind: 'connect', code: typeof code === 'string' ? code : 'unknown' };
  }
}

/** A provider's HTTP error status (>= 400). */
export function classifyHttpError(
  dialect: DialectRules,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
  now: number,
): Outcome {
  return dialect.classifyError({ status, body, retryAfterMs: retryAfterMs(headers, now) });
}

/** A 2xx JSON body: ok (with the parsed body), or invalid (malformed, empty, an error in disguise). */
export function classifyJsonBody(
  dialect: DialectRules,
  text: string,
  checks: { emptyChoices: boolean; errorInBody: boolean },
): { outcome: Outcome; body: unknown } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { outcome: { kind: 'invalid_response', reason: 'malformed JSON body' }, body: undefined };
  }
  const reason = dialect.invalidBody(body, checks);
  return { outcome: reason === undefined ? { kind: 'ok' } : { kind: 'invalid_response', reason }, body };
}
