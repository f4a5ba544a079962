// How long, and how many, the proxy port will wait for and hold. Node's `requestTimeout: 0`
// (needed so a long streamed upload is not cut) also turns `headersTimeout` off unless it is
// set on its own, and then half-sent headers hold a socket forever; the body of a buffered
// request gets its own idle timer (408) for the same reason. The connection cap bounds the
// sockets (and file descriptors) local clients can hold.
import type { ServerOptions } from 'node:http';

export interface EdgeLimits {
  /** from the first byte of a request to the end of its headers */
  headersTimeoutMs: number;
  /** an idle keep-alive connection closes after this */
  keepAliveTimeoutMs: number;
  /** a buffered request body that sends nothing for this long gets a 408 */
  bodyIdleMs: number;
  /** open connections per listening address; beyond it new ones are closed at once */
  maxConnections: number;
  /** how often Node checks the headers timeout (so a stalled header is cut within headersTimeoutMs + this) */
  checkEveryMs: number;
}

export const DEFAULT_EDGE_LIMITS: Readonly<EdgeLimits> = {
  headersTimeoutMs: 10_000,
  // above the usual clients' idle timeouts (undici 4 s, httpx 5 s, aiohttp 15 s), so the client
  // closes first and never sends on a socket the proxy is closing
  keepAliveTimeoutMs: 65_000,
  bodyIdleMs: 30_000,
  maxConnections: 1024,
  // Node checks each listening server on a timer of its own: at 1 s, the two proxy addresses
  // (127.0.0.1 and ::1) were two of an idle sidecar's ~4 wake-ups a second. A header stalled
  // past 10 s is cut within 15 s instead of 11.
  checkEveryMs: 5_000,
};

export function edgeLimits(overrides: Partial<EdgeLimits> = {}): EdgeLimits {
  const limits = { ...DEFAULT_EDGE_LIMITS };
  for (const [k, v] of Object.entries(overrides) as [keyof EdgeLimits, number | undefined][]) if (v !== undefined) limits[k] = v;
  return limits;
}

/** node:http server options for the proxy port */
export function proxyServerOptions(limits: EdgeLimits): ServerOptions {
  return {
    // the whole request may take as long as the app streams it; the body timer and the
    // request's deadline bound a stall instead
    requestTimeout: 0,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkEveryMs,
  };
}
