// Who may see /debug/state, /dashboard and the admin actions: a loopback peer only (inside the
// pod, or `kubectl port-forward`, which arrives as loopback). The decision reads the socket's
// remote address and nothing the client sends: X-Forwarded-For and friends are never trusted
// (no proxy header is read to find the peer).
import { isIPv4 } from 'node:net';

/** 127.0.0.0/8, ::1, and IPv4-mapped 127.x (::ffff:127.0.0.1) */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return isIPv4(v4) && v4.startsWith('127.');
}

const LOOPBACK_HOSTS = /^(localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(:[0-9]{1,5})?$/i;

/**
 * For state-changing requests: a browser always sends Origin on a POST. Only a page this admin
 * server served may press the buttons: its Origin's host:port equals the request's Host, and
 * that is a loopback name. Any other page, a DNS-rebound name that resolves to 127.0.0.1, or
 * another server on another loopback port of the same machine, is refused; curl and other
 * tools send no Origin and pass.
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (host === undefined) return false;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const originHost = url.port === '' ? url.hostname : `${url.hostname}:${url.port}`;
    return originHost.toLowerCase() === host.toLowerCase() && LOOPBACK_HOSTS.test(originHost);
  } catch {
    return false;
  }
}

/**
 * For the loopback-only pages: a DNS-rebound name reaches 127.0.0.1 with its own Host header.
 * Requiring a loopback Host keeps a hostile page from reading /debug/state through an open
 * port-forward; curl, kubectl port-forward and the browser on localhost send a loopback Host.
 */
export function hostAllowed(host: string | undefined): boolean {
  return host === undefined || LOOPBACK_HOSTS.test(host);
}
