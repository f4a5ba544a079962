// The controller's admin server (--admin, default 0.0.0.0:7879): /livez (the event loop turns,
// the same Liveness as the sidecar's), /readyz (named checks: each runnable that can be
// unready says why) and /metrics. Nothing here is loopback-only: it shows no state beyond
// the check names.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import { systemClock } from '../clock.ts';
import { Heartbeat } from '../admin/heartbeat.ts';
import { Liveness } from '../admin/liveness.ts';
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
    const app = express();
    app.set('x-powered-by', false);
    app.set('etag', false);
    app.get('/livez', (_req, res) => {
      const report = this.#liveness.check();
      res.status(report.live ? 200 : 503).set('cache-control', 'no-store').json({ status: report.live ? 'ok' : 'stalled', reason: report.reason });
    });
    app.get('/readyz', (_req, res) => {
      const failing = this.#shuttingDown
        ? [{ name: 'shutdown', reason: 'shutting down' }]
        : this.#checks.flatMap((c) => {
            const reason = c.check();
            return reason === undefined ? [] : [{ name: c.name, reason }];
          });
      res
        .status(failing.length === 0 ? 200 : 503)
        .set('cache-control', 'no-store')
        .json({ status: failing.length === 0 ? 'ready' : 'unready', checks: this.#checks.map((c) => c.name), failing });
    });
    app.get('/metrics', async (_req, res, next) => {
      try {
        const text = await options.metrics.registry.metrics();
        res.status(200).set('content-type', options.metrics.registry.contentType).set('cache-control', 'no-store').send(text);
      } catch (err) {
        next(err);
      }
    });
    app.use((req, res) => {
      res.status(404).json({ error: `no route ${req.method} ${req.path}` });
    });
    this.#server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 10_000, headersTimeout: 5_000 }, app);
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
