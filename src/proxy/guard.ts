// Admission at the proxy port's edge, before anything is read or forwarded: a pure function
// from the request line and headers to a refusal (or none). Every request that passes here is
// sent with the endpoint's key, so what could turn that key against the app stops here:
// - methods outside the REST set (TRACE/TRACK reflect the request, key included; CONNECT
//   tunnels): 405 with `Allow`;
// - browsers (the port sits on a developer's loopback too): a CORS preflight, an `Origin`, a
//   `Sec-Fetch-Site` other than `none`, or a Host name other than a loopback name (DNS
//   rebinding): 403. The official SDKs send none of these;
// - paths that climb out of the endpoint's base path through dot segments, raw or
//   percent-encoded, or backslashes: 400.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { OwnErrorKind } from './dialects/types.ts';

/**
 * The OpenAI and Anthropic APIs (and their SDKs) use GET, POST and DELETE; HEAD comes free with
 * GET; PUT and PATCH are plain REST verbs some OpenAI-compatible providers use. Everything else
 * (OPTIONS, TRACE, TRACK, CONNECT, WebDAV...) has no business carrying a provider key.
 */
export const ALLOWED_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const ALLOWED: ReadonlySet<string> = new Set(ALLOWED_METHODS);

export interface Refusal {
  kind: Extract<OwnErrorKind, 'forbidden' | 'method_not_allowed' | 'invalid_request'>;
  message: string;
  /** extra response headers (the `Allow` of a 405) */
  headers?: Record<string, string>;
}

export interface EdgeRequest {
  method?: string | undefined;
  /** the raw request target, as received */
  url?: string | undefined;
  headers: IncomingHttpHeaders;
}

/** The refusal for this request, or undefined when it may be forwarded. */
export function refuse(req: EdgeRequest): Refusal | undefined {
  const method = req.method ?? 'GET';
  const h = req.headers;
  if (method === 'OPTIONS' && h['access-control-request-method'] !== undefined) {
    return { kind: 'forbidden', message: 'CORS preflight refused: the proxy port serves local apps, never browser pages' };
  }
  if (!ALLOWED.has(method)) {
    return { kind: 'method_not_allowed', message: `method ${method} is not allowed; use ${ALLOWED_METHODS.join(', ')}`, headers: { allow: ALLOWED_METHODS.join(', ') } };
  }
  if (h.origin !== undefined) {
    return { kind: 'forbidden', message: 'a request with an Origin header comes from a browser page and is refused' };
  }
  const site = h['sec-fetch-site'];
  if (site !== undefined && site !== 'none') {
    return { kind: 'forbidden', message: `a browser request (Sec-Fetch-Site: ${truncate(site)}) is refused` };
  }
  if (!hostAllowed(h.host)) {
    return { kind: 'forbidden', message: `Host "${truncate(h.host ?? '')}" is refused: use localhost, a loopback or another IP address` };
  }
  const pathname = pathOf(req.url ?? '/');
  if (escapesBase(pathname)) {
    return { kind: 'invalid_request', message: 'the path has a dot segment or a backslash (raw or percent-encoded); it could leave the endpoint\'s base path' };
  }
  return undefined;
}

function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * A DNS-rebound page reaches 127.0.0.1 under the attacker's own name, and the Host header
 * carries that name. `localhost` and IP literals cannot be rebound, so they pass (an IP keeps a
 * non-loopback `--listen` address usable); every other name is refused. HTTP/1.0 without Host
 * is no browser.
 */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const h = host.toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::[0-9]{1,5})?$/.exec(h);
  if (bracketed) return isIP(bracketed[1]!) === 6;
  const colon = h.lastIndexOf(':');
  const name = colon < 0 ? h : h.slice(0, colon);
  if (colon >= 0 && !/^[0-9]{1,5}$/.test(h.slice(colon + 1))) return false;
  return name === 'localhost' || isIP(name) === 4;
}

/** percent-escapes of '.', '/', '\' and '%' itself (double encoding is undone too) */
const SEPARATOR_ESCAPES = /%(2e|2f|5c|25)/gi;
const SUSPECT = /[.%\\]/;
const DECODED: Record<string, string> = { '2e': '.', '2f': '/', '5c': '\\', '25': '%' };

/**
 * Does the path hold a `.` or `..` segment once its escapes of '.', '/', '\' and '%' are
 * decoded (repeatedly, so `%252e` counts) and backslashes read as slashes? A `;param` suffix
 * does not hide one (`..;/` is `..` to Tomcat-style servers). Other escapes stay as they are:
 * they cannot form a segment boundary or a dot.
 */
export function escapesBase(pathname: string): boolean {
  if (!SUSPECT.test(pathname)) return false; // the common case: no dot, escape or backslash at all
  let decoded = pathname;
  for (;;) {
    const next = decoded.replace(SEPARATOR_ESCAPES, (_, hex: string) => DECODED[hex.toLowerCase()]!);
    if (next === decoded) break;
    decoded = next;
  }
  if (decoded.includes('\\')) return true;
  for (const segment of decoded.split('/')) {
    const bare = segment.split(';', 1)[0];
    if (bare === '.' || bare === '..') return true;
  }
  return false;
}
