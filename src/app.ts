// Composition: config source -> runtime -> proxy listener (and the admin server, when given).
// main.ts calls this for `breakwater proxy`; tests call it in-process.
import { systemClock, type Clock } from './clock.ts';
import { startFileSource, type FileSource } from './config/sources/file.ts';
import type { Logger } from './telemetry/log.ts';
import { createMetrics, type Metrics } from './telemetry/metrics.ts';
import { ProxyRuntime } from './proxy/runtime.ts';
import { ProxyServer } from './proxy/server.ts';

export interface ProxyOptions {
  /** YAML file of LLMUpstream documents */
  config?: string;
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
  source: FileSource | undefined;
  /** stop accepting, drain in-flight work within drainMs, close pools */
  shutdown(): Promise<{ drained: boolean }>;
}

/** Throws ConfigError when the config file is invalid at start. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? createMetrics();
  const runtime = new ProxyRuntime({ clock, log: options.log, metrics });
  const source = options.config ? startFileSource({ path: options.config, sink: runtime }) : undefined;
  if (source) metrics.configWatchHealthy.labels('file').set(1);
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
