// Which headers cross the proxy, in both directions, and which ones logs must censor: one list
// of hop-by-hop names and one of credential names, so the request filter, the response filter
// and log redaction cannot disagree (an `x-goog-api-key` once was dropped from requests but
// printed in logs). RFC 9110 §7.6.1: hop-by-hop headers, and every name the `Connection` header
// lists, belong to one connection and are never relayed.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Connection-level headers (RFC 9110 §7.6.1, plus the non-standard proxy-connection). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);

/**
 * Headers that carry a credential. An app's own never reach a provider (the endpoint's key
 * replaces them), a provider's cookies never reach the app, and logs print none of them.
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'set-cookie',
];
const CREDENTIALS: ReadonlySet<string> = new Set(CREDENTIAL_HEADERS);

/** Breakwater's own controls (requests) and reports (responses): only Breakwater sets them. */
const OWN_PREFIX = 'x-breakwater-';

/** Framing and negotiation that Breakwater redoes on its own leg of the request. */
const REQUEST_FRAMING: ReadonlySet<string> = new Set([
  'host', 'content-length', 'accept-encoding',
  // undici does not do 100-continue; the body is already here (or streams) anyway
  'expect',
]);

/** Framing of the provider's response, which Breakwater re-frames for the app. */
const RESPONSE_FRAMING: ReadonlySet<string> = new Set(['content-length']);

/** The names a `Connection` header lists (lowercased), which are hop-by-hop for that message. */
const NONE: ReadonlySet<string> = new Set();

export function connectionListed(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE;
  // the usual value on both legs: names nothing that is not hop-by-hop already (no Set to build)
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return NONE;
  const joined = Array.isArray(value) ? value.join(',') : value;
  return new Set(joined.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== ''));
}

/** The app's headers fit to forward: no hop-by-hop, no credentials, no Breakwater controls. */
export function requestHeaders(app: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionListed(app.connection);
  for (const name in app) {
    if (HOP_BY_HOP.has(name) || CREDENTIALS.has(name) || REQUEST_FRAMING.has(name) || listed.has(name) || name.startsWith(OWN_PREFIX)) continue;
    const value = app[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * A provider's response headers fit to pass on: no hop-by-hop (nor what its `Connection`
 * lists), no credentials (`Set-Cookie`: every app behind the sidecar shares one cookie-less
 * key; an echoed key header would hand the endpoint's key to the app), no `x-breakwater-*`
 * (those report what Breakwater did and only Breakwater sets them). `decoded`: the body was
 * decompressed here, so its `Content-Encoding` no longer applies.
 */
export function responseHeaders(provider: IncomingHttpHeaders, decoded = false): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionListed(provider.connection);
  for (const name in provider) {
    if (HOP_BY_HOP.has(name) || CREDENTIALS.has(name) || RESPONSE_FRAMING.has(name) || listed.has(name) || name.startsWith(OWN_PREFIX)) continue;
    if (decoded && name === 'content-encoding') continue;
    out[name] = provider[name];
  }
  return out;
}
