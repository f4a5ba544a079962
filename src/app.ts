// Composition: config source -> runtime -> proxy listener (and the admin server, when given).
// main.ts calls this for `breakwater proxy`; tests call it in-process.
import { startAdmin, type RunningAdmin } from './admin/server.ts';
import type { ReadinessPolicy } from './admin/readiness.ts';
import { systemClock, type Clock } from './clock.ts';
import { startFileSource } from './config/sources/file.ts';
import type { ConfigSink } from './config/sink.ts';
import type { Logger } from './telemetry/log.ts';
import { createMetrics, disableMetricUpdates, type Metrics } from './telemetry/metrics.ts';
import { ProxyRuntime } from './proxy/runtime.ts';
import { ProxyServer } from './proxy/server.ts';
import type { EdgeLimits } from './proxy/limits.ts';

/** Where LLMUpstreams come from. */
export type SourceOptions =
  | { kind: 'file'; path: string }
  | { kind: 'kubernetes'; namespace: string; kubeconfig?: string }
  /** tests drive the runtime directly */
  | { kind: 'none' };

/** What app.ts needs of a running source. */
export interface RunningSource {
  close(): void;
  /** re-read now (SIGHUP); resolves once applied or rejected; a no-op for watches */
  reload(): Promise<void>;
}

export interface ProxyOptions {
  source: SourceOptions;
  listen: { host: string; port: number };
  drainMs: number;
  log: Logger;
  clock?: Clock;
  metrics?: Metrics;
  maxBodyBytes?: number;
  /** all buffered request bodies together; past it, 503 with Retry-After */
  maxBufferedBytes?: number;
  /** the proxy port's timeouts and connection cap (defaults in src/proxy/limits.ts) */
  limits?: Partial<EdgeLimits>;
  /** the admin server (probes, metrics, debug state, dashboard); none when absent */
  admin?: { host: string; port: number };
  /** readiness policy; default breakers */
  readiness?: ReadinessPolicy;
  /** default 10 s */
  unreadyAfterMs?: number;
  /** test hook, never set in production: the rate limits' window (default one minute; see RuntimeDeps) */
  rateLimitWindowMs?: number;
  /** prom-client's event-loop lag metrics (a 10 ms sampling timer); off by default */
  eventLoopMetrics?: boolean;
}

export interface RunningProxy {
  port: number;
  runtime: ProxyRuntime;
  server: ProxyServer;
  metrics: Metrics;
  source: RunningSource | undefined;
  admin: RunningAdmin | undefined;
  adminPort: number | undefined;
  /** stop accepting, drain in-flight work within drainMs, close pools */
  shutdown(): Promise<{ drained: boolean }>;
}

/** Throws ConfigError when the config file is invalid at start. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? createMetrics(undefined, { eventLoop: options.eventLoopMetrics });
  if (process.env.BREAKWATER_METRICS === 'off') disableMetricUpdates(metrics);
  const runtime = new ProxyRuntime({ clock, log: options.log, metrics, rateLimitWindowMs: options.rateLimitWindowMs });
  // the admin server starts first, so /readyz answers 503 until the first config is applied
  const admin = options.admin
    ? await startAdmin({ runtime, metrics, log: options.log, clock, readiness: options.readiness, unreadyAfterMs: options.unreadyAfterMs }, options.admin)
    : undefined;
  let source: RunningSource | undefined;
  const server = new ProxyServer({ runtime, clock, log: options.log, metrics, maxBodyBytes: options.maxBodyBytes, maxBufferedBytes: options.maxBufferedBytes, limits: options.limits });
  let port: number;
  try {
    source = await startSource(options.source, runtime, options.log, metrics, clock);
    port = await server.listen(options.listen.host, options.listen.port);
  } catch (err) {
    source?.close();
    await admin?.close();
    await runtime.close();
    throw err;
  }
  options.log.info({ listen: `${options.listen.host}:${port}` }, 'proxy listening');
  return {
    port,
    runtime,
    server,
    metrics,
    source,
    admin,
    adminPort: admin?.port,
    async shutdown() {
      admin?.shutdown(); // unready while draining
      source?.close();
      const result = await server.shutdown(options.drainMs);
      await runtime.close();
      await admin?.close();
      return result;
    },
  };
}

async function startSource(options: SourceOptions, sink: ConfigSink, log: Logger, metrics: Metrics, clock: Clock): Promise<RunningSource | undefined> {
  switch (options.kind) {
    case 'file': {
      const source = startFileSource({ path: options.path, sink, clock });
      metrics.configWatchHealthy.labels('file').set(1);
      return source;
    }
    case 'kubernetes': {
      const { startKubernetesSource } = await import('./config/sources/kubernetes.ts');
      const source = await startKubernetesSource({ namespace: options.namespace, kubeconfig: options.kubeconfig, sink, log, metrics });
      return { close: () => source.close(), reload: async () => undefined };
    }
    case 'none':
      return undefined;
  }
}
