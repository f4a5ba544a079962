// Placeholder until the Kubernetes source lands (issue 4): the interface app.ts calls.
import type { ConfigSink } from '../sink.ts';
import type { Logger } from '../../telemetry/log.ts';
import type { Metrics } from '../../telemetry/metrics.ts';

export interface KubernetesSourceOptions {
  namespace: string;
  kubeconfig?: string;
  sink: ConfigSink;
  log: Logger;
  metrics: Metrics;
}

export async function startKubernetesSource(_options: KubernetesSourceOptions): Promise<{ close(): void }> {
  throw new Error('the Kubernetes source is not built yet');
}
