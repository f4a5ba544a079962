// The admin server (node:http, --admin, default 0.0.0.0:7879). To anyone: /livez (is the event
// loop turning), /readyz (the readiness policy), /metrics. To a loopback peer only (inside the
// pod, or kubectl port-forward): /debug/state, /dashboard and the breaker actions
// POST /admin/upstreams/<u>/endpoints/<e>/reset|open. The peer check reads the socket address;
// X-Forwarded-For is never trusted (nothing here reads it but the refusal log line).
// The port is reachable by the whole cluster, so it holds few sockets for a short time
// (ADMIN_LIMITS): stalled connections to it must not use up the file descriptors the data
// plane needs. Routes are matched as express matched them (respond.ts): express cost ~7 MB of
// an idle sidecar's memory for seven routes (README, design notes).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock } from '../clock.ts';
import type { ProxyRuntime } from '../proxy/runtime.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { dashboardCsp, dashboardHtml, newNonce } from './dashboard.ts';
import { Heartbeat } from './heartbeat.ts';
import { Liveness, type LivenessOptions } from './liveness.ts';
import { isLoopbackAddress, hostAllowed, originAllowed } from './peer.ts';
import { Readiness, type ReadinessPolicy } from './readiness.ts';
import { RecentStats } from './recent.ts';
import { clip, RefusalLog } from './refusals.ts';
import { isRead, pathOf, routeKey, send, sendJson } from './respond.ts';
import { debugState } from './state.ts';

export interface AdminOptions {
  runtime: ProxyRuntime;
  metrics: Metrics;
  log: Logger;
  clock?: Clock;
  readiness?: ReadinessPolicy;
  /** default 10 s */
  unreadyAfterMs?: number;
  liveness?: LivenessOptions;
  /** the period of the one background ticker (liveness, the dashboard sampler, readiness's backstop); default HEARTBEAT_MS */
  heartbeatMs?: number;
  /** recent error rate/latency window for the dashboard; default 60 s, sampled every 5 s */
  recent?: { windowMs?: number; sampleEveryMs?: number };
  /** dashboard refresh; default 2 s */
  dashboardPollMs?: number;
  /** timeouts and the connection cap of the admin port (tests shorten them) */
  limits?: Partial<AdminLimits>;
}

export interface AdminLimits {
  /** open connections; beyond it new ones are closed at once */
  maxConnections: number;
  headersTimeoutMs: number;
  /** a whole request, body included */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** how often Node checks the two timeouts above */
  checkEveryMs: number;
}

/** Probes, scrapes and an operator's browser need a handful of sockets, each for a moment. */
export const ADMIN_LIMITS: Readonly<AdminLimits> = {
  maxConnections: 128,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  // an idle sidecar wakes for this check (limits.ts says why 5 s)
  checkEveryMs: 5_000,
};

export interface RunningAdmin {
  port: number;
  readiness: Readiness;
  liveness: Liveness;
  /** readiness turns 503 (SIGTERM: drain) */
  shutdown(): void;
  close(): Promise<void>;
}

const NO_STORE = { 'cache-control': 'no-store' } as const;

/** /admin/upstreams/<u>/endpoints/<e>/<action>, one trailing slash allowed */
const ACTION_ROUTE = /^\/admin\/upstreams\/([^/]+)\/endpoints\/([^/]+)\/([^/]+)\/?$/i;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** a path parameter, percent-decoded; undefined when its encoding is malformed */
function param(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

export function createAdminHandler(options: AdminOptions, parts: { readiness: Readiness; liveness: Liveness; recent: RecentStats }): Handler {
  const { runtime, metrics, log } = options;
  const clock = options.clock ?? systemClock;
  const { readiness, liveness, recent } = parts;
  const refusals = new RefusalLog(log, clock);

  /** loopback peer and loopback Host, else 403 (and a bounded log line) */
  const local = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const peer = req.socket.remoteAddress;
    if (isLoopbackAddress(peer) && hostAllowed(req.headers.host)) return true;
    refusals.refused(peer, path, req.headers['x-forwarded-for']);
    sendJson(req, res, 403, { error: `${clip(path)} answers only to loopback peers (use kubectl port-forward); this peer is ${peer ?? 'unknown'}` }, NO_STORE);
    return false;
  };

  const livez: Handler = (req, res) => {
    const report = liveness.check();
    sendJson(req, res, report.live ? 200 : 503, { status: report.live ? 'ok' : 'stalled', ...report }, NO_STORE);
  };

  const readyz: Handler = (req, res) => {
    const v = readiness.evaluate();
    sendJson(
      req,
      res,
      v.ready ? 200 : 503,
      { status: v.ready ? 'ready' : 'unready', reason: v.reason, policy: v.policy, unreadyAfterMs: v.unreadyAfterMs, upstreams: v.upstreams.map(({ name, required, available, availableEndpoints, unavailableForMs, blocking }) => ({ name, required, available, availableEndpoints, unavailableForMs, blocking })) },
      NO_STORE,
    );
  };

  const scrape = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await metrics.registry.metrics();
    send(req, res, 200, { 'content-type': metrics.registry.contentType, ...NO_STORE }, text);
  };

  const state = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = debugState(runtime, clock.now(), readiness.evaluate(), liveness.check(), await recent.view());
    sendJson(req, res, 200, body, NO_STORE);
  };

  const dashboard: Handler = (req, res) => {
    const nonce = newNonce();
    send(
      req,
      res,
      200,
      { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': dashboardCsp(nonce), 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', ...NO_STORE },
      dashboardHtml(nonce, options.dashboardPollMs),
    );
  };

  const action = (req: IncomingMessage, res: ServerResponse, rawU: string, rawE: string, rawAction: string): void => {
    const [u, e, act] = [param(rawU), param(rawE), param(rawAction)];
    if (u === undefined || e === undefined || act === undefined) {
      sendJson(req, res, 400, { error: 'malformed percent-encoding in the path' });
      return;
    }
    if (!originAllowed(req.headers.origin, req.headers.host)) {
      log.warn({ peer: req.socket.remoteAddress, origin: clip(req.headers.origin), host: clip(req.headers.host), upstream: clip(u), endpoint: clip(e), action: clip(act) }, 'admin: refused an action from a foreign origin');
      sendJson(req, res, 403, { error: `admin actions refuse requests from origin ${clip(req.headers.origin)}: only a page served by this admin server (Origin equal to Host) may press them` });
      return;
    }
    if (act !== 'reset' && act !== 'open') {
      sendJson(req, res, 404, { error: `unknown action "${act}": use reset or open` });
      return;
    }
    const upstream = runtime.snapshot?.upstreams.get(u);
    if (!upstream) {
      sendJson(req, res, 404, { error: `no upstream named "${u}"` });
      return;
    }
    const endpoint = upstream.endpoints.find((x) => x.name === e);
    if (!endpoint) {
      sendJson(req, res, 404, { error: `upstream "${u}" has no endpoint named "${e}"; it has ${upstream.endpoints.map((x) => x.name).join(', ')}` });
      return;
    }
    log.warn({ upstream: u, endpoint: e, action: act, peer: req.socket.remoteAddress }, `admin: operator ${act === 'open' ? 'forced the breaker open' : 'reset the breaker'}`);
    if (act === 'open') endpoint.breaker.forceOpen('opened by an operator');
    else endpoint.resetByOperator();
    const now = clock.now();
    sendJson(req, res, 200, { ok: true, action: act, upstream: u, endpoint: endpoint.describe(now), readiness: readiness.evaluate().ready }, NO_STORE);
  };

  const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const key = routeKey(path);
    if (isRead(req)) {
      switch (key) {
        case '/livez':
          return livez(req, res);
        case '/readyz':
          return readyz(req, res);
        case '/metrics':
          return scrape(req, res);
        case '/debug/state':
          if (local(req, res, path)) await state(req, res);
          return;
        case '/dashboard':
          if (local(req, res, path)) dashboard(req, res);
          return;
      }
    }
    if (path.toLowerCase().startsWith('/admin/')) {
      // every method under /admin/ is loopback-only, before anything else is said about it
      if (!local(req, res, path)) return;
      const m = req.method === 'POST' ? ACTION_ROUTE.exec(path) : null;
      if (m) return action(req, res, m[1]!, m[2]!, m[3]!);
    }
    sendJson(req, res, 404, { error: `no admin route ${req.method} ${path}` });
  };

  return (req, res) => {
    const path = pathOf(req);
    route(req, res, path).catch((err: unknown) => {
      log.error({ err, path: clip(path) }, 'admin: internal error');
      if (!res.headersSent) sendJson(req, res, 500, { error: 'internal error in the admin server' });
      else res.destroy();
    });
  };
}

/** Starts the admin server and the probes' background work; metrics' scrape-time gauges read from it. */
export async function startAdmin(options: AdminOptions, listen: { host: string; port: number }): Promise<RunningAdmin> {
  const clock = options.clock ?? systemClock;
  const heartbeat = new Heartbeat(clock, options.heartbeatMs, (err) => options.log.error({ err }, 'admin: a background check failed'));
  const readiness = new Readiness({
    runtime: options.runtime,
    clock,
    log: options.log,
    metrics: options.metrics,
    policy: options.readiness ?? 'breakers',
    unreadyAfterMs: options.unreadyAfterMs ?? 10_000,
    heartbeat,
  });
  const liveness = new Liveness(heartbeat, options.liveness);
  const recent = new RecentStats(options.metrics, { ...options.recent, now: () => clock.now() });
  const handler = createAdminHandler(options, { readiness, liveness, recent });

  const scrape = options.metrics.scrape;
  scrape.ready = () => (readiness.evaluate().ready ? 1 : 0);
  scrape.availableEndpoints = () => readiness.availability().map((u) => [u.name, u.availableEndpoints] as const);
  scrape.lastRejected = () => (options.runtime.lastRejection ? options.runtime.lastRejection.at / 1000 : undefined);

  const limits: AdminLimits = { ...ADMIN_LIMITS, ...options.limits };
  const server: Server = createServer(
    {
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.checkEveryMs,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  liveness.start();
  readiness.start();
  await recent.start(heartbeat);
  heartbeat.start();
  options.log.info({ admin: `${listen.host}:${port}`, readiness: readiness.policy, unreadyAfterMs: readiness.unreadyAfterMs }, 'admin server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    readiness,
    liveness,
    shutdown: () => readiness.shutdown(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        heartbeat.stop();
        readiness.stop();
        liveness.stop();
        recent.stop();
        delete scrape.ready;
        delete scrape.availableEndpoints;
        delete scrape.lastRejected;
        server.close(() => resolve());
        server.closeIdleConnections();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
