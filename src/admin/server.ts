// The admin server (express, --admin, default 0.0.0.0:7879). To anyone: /livez (is the event
// loop turning), /readyz (the readiness policy), /metrics. To a loopback peer only (inside the
// pod, or kubectl port-forward): /debug/state, /dashboard and the breaker actions
// POST /admin/upstreams/<u>/endpoints/<e>/reset|open. The peer check reads the socket address;
// X-Forwarded-For is never trusted (express `trust proxy` is off and req.ip is not used).
// The port is reachable by the whole cluster, so it holds few sockets for a short time
// (ADMIN_LIMITS): stalled connections to it must not use up the file descriptors the data
// plane needs.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
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
  checkEveryMs: 2_000,
};

export interface RunningAdmin {
  port: number;
  readiness: Readiness;
  liveness: Liveness;
  /** readiness turns 503 (SIGTERM: drain) */
  shutdown(): void;
  close(): Promise<void>;
}

const NO_STORE = 'no-store';

function loopbackOnly(refusals: RefusalLog) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const peer = req.socket.remoteAddress;
    if (isLoopbackAddress(peer) && hostAllowed(req.headers.host)) return next();
    refusals.refused(peer, req.path, req.headers['x-forwarded-for']);
    res.status(403).set('cache-control', NO_STORE).json({ error: `${clip(req.path)} answers only to loopback peers (use kubectl port-forward); this peer is ${peer ?? 'unknown'}` });
  };
}

export function createAdminApp(options: AdminOptions, parts: { readiness: Readiness; liveness: Liveness; recent: RecentStats }) {
  const { runtime, metrics, log } = options;
  const clock = options.clock ?? systemClock;
  const { readiness, liveness, recent } = parts;
  const app = express();
  app.set('trust proxy', false); // never derive the peer from X-Forwarded-For
  app.set('x-powered-by', false);
  app.set('etag', false);

  app.get('/livez', (_req, res) => {
    const report = liveness.check();
    res.status(report.live ? 200 : 503).set('cache-control', NO_STORE).json({ status: report.live ? 'ok' : 'stalled', ...report });
  });

  app.get('/readyz', (_req, res) => {
    const v = readiness.evaluate();
    res
      .status(v.ready ? 200 : 503)
      .set('cache-control', NO_STORE)
      .json({ status: v.ready ? 'ready' : 'unready', reason: v.reason, policy: v.policy, unreadyAfterMs: v.unreadyAfterMs, upstreams: v.upstreams.map(({ name, required, available, availableEndpoints, unavailableForMs, blocking }) => ({ name, required, available, availableEndpoints, unavailableForMs, blocking })) });
  });

  app.get('/metrics', async (_req, res, next) => {
    try {
      const text = await metrics.registry.metrics();
      res.status(200).set('content-type', metrics.registry.contentType).set('cache-control', NO_STORE).send(text);
    } catch (err) {
      next(err);
    }
  });

  const local = loopbackOnly(new RefusalLog(log, clock));

  app.get('/debug/state', local, async (_req, res, next) => {
    try {
      const state = debugState(runtime, clock.now(), readiness.evaluate(), liveness.check(), await recent.view());
      res.status(200).set('cache-control', NO_STORE).json(state);
    } catch (err) {
      next(err);
    }
  });

  app.get('/dashboard', local, (_req, res) => {
    const nonce = newNonce();
    res
      .status(200)
      .set('content-type', 'text/html; charset=utf-8')
      .set('content-security-policy', dashboardCsp(nonce))
      .set('x-content-type-options', 'nosniff')
      .set('referrer-policy', 'no-referrer')
      .set('cache-control', NO_STORE)
      .send(dashboardHtml(nonce, options.dashboardPollMs));
  });

  app.all('/admin/{*rest}', local);
  app.post('/admin/upstreams/:upstream/endpoints/:endpoint/:action', (req, res) => {
    const { upstream: u, endpoint: e, action } = req.params as Record<string, string>;
    if (!originAllowed(req.headers.origin, req.headers.host)) {
      log.warn({ peer: req.socket.remoteAddress, origin: clip(req.headers.origin), host: clip(req.headers.host), upstream: clip(u), endpoint: clip(e), action: clip(action) }, 'admin: refused an action from a foreign origin');
      res.status(403).json({ error: `admin actions refuse requests from origin ${clip(req.headers.origin)}: only a page served by this admin server (Origin equal to Host) may press them` });
      return;
    }
    if (action !== 'reset' && action !== 'open') {
      res.status(404).json({ error: `unknown action "${action}": use reset or open` });
      return;
    }
    const upstream = runtime.snapshot?.upstreams.get(u!);
    if (!upstream) {
      res.status(404).json({ error: `no upstream named "${u}"` });
      return;
    }
    const endpoint = upstream.endpoints.find((x) => x.name === e);
    if (!endpoint) {
      res.status(404).json({ error: `upstream "${u}" has no endpoint named "${e}"; it has ${upstream.endpoints.map((x) => x.name).join(', ')}` });
      return;
    }
    log.warn({ upstream: u, endpoint: e, action, peer: req.socket.remoteAddress }, `admin: operator ${action === 'open' ? 'forced the breaker open' : 'reset the breaker'}`);
    if (action === 'open') endpoint.breaker.forceOpen('opened by an operator');
    else endpoint.resetByOperator();
    const now = clock.now();
    res.status(200).set('cache-control', NO_STORE).json({ ok: true, action, upstream: u, endpoint: endpoint.describe(now), readiness: readiness.evaluate().ready });
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no admin route ${req.method} ${req.path}` });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    log.error({ err, path: req.path }, 'admin: internal error');
    if (!res.headersSent) res.status(500).json({ error: 'internal error in the admin server' });
  });
  return app;
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
  const app = createAdminApp(options, { readiness, liveness, recent });

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
    app,
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
