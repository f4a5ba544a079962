// Composition: config source -> runtime -> proxy listener (and the admin server, when given).
// main.ts calls this for `breakwater proxy`; tests call it in-process.
import { systemClock, type Clock } from './clock.ts';
import { startFileSource } from './config/sources/file.ts';
import type { ConfigSink } from './config/sink.ts';
import type { Logger } from './telemetry/log.ts';
import { createMetrics, type Metrics } from './telemetry/metrics.ts';
import { ProxyRuntime } from './proxy/runtime.ts';
import { ProxyServer } from './proxy/server.ts';

/** Where LLMUpstreams come from. */
export type SourceOptions =
  | { kind: 'file'; path: string }
  | { kind: 'kubernetes'; namespace: string; kubeconfig?: string }
  /** tests drive the runtime directly */
  | { kind: 'none' };

/** What app.ts needs of a running source. */
export interface RunningSource {
  close(): void;
  /** re-read now (SIGHUP); a no-op for watches */
  reload(): void;
}

export interface ProxyOptions {
  source: SourceOptions;
  listen: { host: string; port: number };
  drainMs: number;
  log: Logger;
  clock?: Clock;
  metrics?: Metrics;
  maxBodyBytes?: number;
}

export interface RunningProxy {
  port: number;
  runtime: ProxyRuntime;
  server: ProxyServer;
  metrics: Metrics;
  source: RunningSource | undefined;
  /** stop accepting, drain in-flight work within drainMs, close pools */
  shutdown(): Promise<{ drained: boolean }>;
}

/** Throws ConfigError when the config file is invalid at start. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? createMetrics();
  const runtime = new ProxyRuntime({ clock, log: options.log, metrics });
  const source = await startSource(options.source, runtime, options.log, metrics);
  const server = new ProxyServer({ runtime, clock, log: options.log, metrics, maxBodyBytes: options.maxBodyBytes });
  let port: number;
  try {
    port = await server.listen(options.listen.host, options.listen.port);
  } catch (err) {
    source?.close();
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
    async shutdown() {
      source?.close();
      const result = await server.shutdown(options.drainMs);
      await runtime.close();
      return result;
    },
  };
}

async function startSource(options: SourceOptions, sink: ConfigSink, log: Logger, metrics: Metrics): Promise<RunningSource | undefined> {
  switch (options.kind) {
    case 'file': {
      const source = startFileSource({ path: options.path, sink });
      metrics.configWatchHealthy.labels('file').set(1);
      return source;
    }
    case 'kubernetes': {
      const { startKubernetesSource } = await import('./config/sources/kubernetes.ts');
      const source = await startKubernetesSource({ namespace: options.namespace, kubeconfig: options.kubeconfig, sink, log, metrics });
      return { close: () => source.close(), reload: () => undefined };
    }
    case 'none':
      return undefined;
  }
}
