// The controller's admin server (--admin, default 0.0.0.0:7879): /livez (the event loop turns,
// the same Liveness as the sidecar's), /readyz (named checks: each runnable that can be
// unready says why) and /metrics. Nothing here is loopback-only: it shows no state beyond
// the check names.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock } from '../clock.ts';
import { Heartbeat } from '../admin/heartbeat.ts';
import { Liveness } from '../admin/liveness.ts';
import { isRead, pathOf, routeKey, send, sendJson } from '../admin/respond.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { Runnable } from './manager.ts';

export interface ReadyCheck {
  name: string;
  /** undefined when ready, else why not */
  check(): string | undefined;
}

export class ProbeServer implements Runnable {
  readonly name = 'probes';
  readonly #listen: { host: string; port: number };
  readonly #log: Logger;
  readonly #checks: ReadyCheck[] = [];
  readonly #heartbeat = new Heartbeat(systemClock);
  readonly #liveness = new Liveness(this.#heartbeat);
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;
  #shuttingDown = false;
  port = 0;

  constructor(options: { listen: { host: string; port: number }; log: Logger; metrics: ControllerMetrics }) {
    this.#listen = options.listen;
    this.#log = options.log;
    const noStore = { 'cache-control': 'no-store' };
    const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
      switch (isRead(req) ? routeKey(path) : undefined) {
        case '/livez': {
          const report = this.#liveness.check();
          return sendJson(req, res, report.live ? 200 : 503, { status: report.live ? 'ok' : 'stalled', reason: report.reason }, noStore);
        }
        case '/readyz': {
          const failing = this.#shuttingDown
            ? [{ name: 'shutdown', reason: 'shutting down' }]
            : this.#checks.flatMap((c) => {
                const reason = c.check();
                return reason === undefined ? [] : [{ name: c.name, reason }];
              });
          return sendJson(req, res, failing.length === 0 ? 200 : 503, { status: failing.length === 0 ? 'ready' : 'unready', checks: this.#checks.map((c) => c.name), failing }, noStore);
        }
        case '/metrics': {
          const text = await options.metrics.registry.metrics();
          return send(req, res, 200, { 'content-type': options.metrics.registry.contentType, ...noStore }, text);
        }
        default:
          return sendJson(req, res, 404, { error: `no route ${req.method} ${path}` });
      }
    };
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      const path = pathOf(req);
      route(req, res, path).catch((err: unknown) => {
        this.#log.error({ err }, 'controller admin: internal error');
        if (!res.headersSent) sendJson(req, res, 500, { error: 'internal error' });
        else res.destroy();
      });
    };
    this.#server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 10_000, headersTimeout: 5_000 }, handler);
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  addCheck(check: ReadyCheck): void {
    this.#checks.push(check);
  }

  /** /readyz turns 503 (SIGTERM: the Service stops sending webhook calls here) */
  shutdown(): void {
    this.#shuttingDown = true;
  }

  async start(): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#listen.port, this.#listen.host, () => {
        this.#server.off('error', reject);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
    this.#liveness.start();
    this.#heartbeat.start();
    this.#log.info({ admin: `${this.#listen.host}:${this.port}` }, 'controller admin server listening');
  }

  async stop(): Promise<void> {
    this.#heartbeat.stop();
    this.#liveness.stop();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      for (const s of this.#sockets) s.destroy();
    });
  }
}
