// The Kubernetes source: LLMUpstreams in the sidecar's namespace, watched with an informer,
// and the Secrets they name, each read and watched by name. Handlers only enqueue; one sync
// compiles every cached spec through the same compileUpstream as the file source and hands
// the whole set of good upstreams to the sink. A spec that cannot be applied here (missing or
// forbidden Secret, missing key, anything compile refuses) is rejected locally: sink.reject,
// a rate-limited Event on the LLMUpstream, and its last good version keeps serving. While the
// API server is unreachable nothing changes: the last good config serves on.
import type { KubernetesObject } from '@kubernetes/client-node';
import { compileUpstream, ConfigError } from '../compile.ts';
import { parseDuration } from '../duration.ts';
import type { UpstreamConfig } from '../runtime.ts';
import { API_GROUP, API_VERSION, KIND, type UpstreamDocument } from '../schema.ts';
import type { ConfigSink } from '../sink.ts';
import type { Logger } from '../../telemetry/log.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { KubeClient, loadKubeConfig, paths } from '../../kube/client.ts';
import { EventRecorder } from '../../kube/events.ts';
import { Informer } from '../../kube/informer.ts';
import { WorkQueue } from '../../kube/queue.ts';
import { SecretPendingError, SecretStore, secretRefsOf, type SecretRef } from '../../kube/secrets.ts';

export interface KubernetesSourceOptions {
  namespace: string;
  kubeconfig?: string;
  sink: ConfigSink;
  log: Logger;
  metrics: Metrics;
  /** a watch with no event or bookmark for this long is unhealthy; default BREAKWATER_WATCH_STALE_AFTER or 60s */
  staleAfterMs?: number;
  /** how long start waits for the first list and apply before returning anyway (default 10 s) */
  initialSyncTimeoutMs?: number;
}

export interface KubernetesSource {
  close(): void;
  /** 1 while the LLMUpstream watch is connected and fresh (also the config_watch_healthy gauge) */
  healthy(): boolean;
}

export interface UpstreamObject extends KubernetesObject {
  spec?: unknown;
}

export const DEFAULT_STALE_AFTER = '60s';

export function staleAfterFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.BREAKWATER_WATCH_STALE_AFTER ?? DEFAULT_STALE_AFTER;
  try {
    return parseDuration(text);
  } catch {
    throw new ConfigError('BREAKWATER_WATCH_STALE_AFTER', '(env)', `"${text}" is not a duration (e.g. 60s)`);
  }
}

/** Server-side watch timeout: a new watch (after a bookmark) at least 3 times per staleness window. */
export function watchTimeoutSeconds(staleAfterMs: number): number {
  // under 30 s: client-node's watch gives up on a silent connection after 30 s
  return Math.min(25, Math.max(3, Math.floor(staleAfterMs / 3000)));
}

/** The document compile reads: what the API server stored, metadata trimmed to what it uses. */
export function toDocument(obj: UpstreamObject): UpstreamDocument {
  const m = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion ?? `${API_GROUP}/${API_VERSION}`,
    kind: obj.kind ?? KIND,
    metadata: { name: m.name ?? '', namespace: m.namespace, generation: m.generation },
    spec: obj.spec as UpstreamDocument['spec'],
  };
}

interface Applied {
  config: UpstreamConfig;
  /** what it was compiled from: object version and the versions of its Secrets */
  fingerprint: string;
}

export async function startKubernetesSource(options: KubernetesSourceOptions): Promise<KubernetesSource> {
  const { namespace, sink, log, metrics } = options;
  const source = `kubernetes:${namespace}`;
  const staleAfterMs = options.staleAfterMs ?? staleAfterFromEnv();
  const timeoutSeconds = watchTimeoutSeconds(staleAfterMs);
  const client = new KubeClient(loadKubeConfig(options.kubeconfig));
  const events = new EventRecorder({ client, log, controller: 'breakwater.dev/sidecar' });
  const gauge = metrics.configWatchHealthy.labels('kubernetes');
  gauge.set(0);

  const good = new Map<string, Applied>();
  /** the last verdict reported per upstream, so a rejection is logged and counted once */
  const reported = new Map<string, string>();
  let appliedFingerprint: string | undefined;
  let firstApplied: () => void = () => {};
  const firstApply = new Promise<void>((resolve) => (firstApplied = resolve));

  const sync = async (): Promise<void> => {
    if (!upstreams.synced) return;
    const objects = upstreams.list().filter((o) => o.metadata?.namespace === namespace);
    const refs = objects.flatMap((o) => secretRefsOf(o));
    secrets.want(refs);
    await secrets.settled(refs, 5_000);
    const resolve = secrets.resolver();
    let pending = false;
    const names = new Set<string>();
    for (const obj of objects) {
      const name = obj.metadata?.name ?? '';
      names.add(name);
      const objRefs = secretRefsOf(obj);
      // generation, not resourceVersion: a status write by the controller changes nothing here
      const fingerprint = `${obj.metadata?.uid}@${obj.metadata?.generation}|${objRefs.map((r: SecretRef) => `${r.name}=${secrets.version(r)}`).join(',')}`;
      if (good.get(name)?.fingerprint === fingerprint) continue;
      try {
        const config = compileUpstream(toDocument(obj), resolve);
        good.set(name, { config, fingerprint });
        reported.delete(name);
      } catch (thrown) {
        if (thrown instanceof SecretPendingError) {
          pending = true;
          continue;
        }
        // anything unexpected rejects this one resource; the others still apply
        const err =
          thrown instanceof ConfigError
            ? thrown
            : new ConfigError(`LLMUpstream "${name}"`, '(spec)', `could not be compiled: ${(thrown as Error).message ?? String(thrown)}`, 'Invalid');
        const verdict = `${fingerprint}|${err.reason}|${err.message}`;
        if (reported.get(name) === verdict) continue;
        reported.set(name, verdict);
        sink.reject(err, source);
        events.warn(
          { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: KIND, name, namespace, uid: obj.metadata?.uid, resourceVersion: obj.metadata?.resourceVersion },
          err.reason,
          `${good.has(name) ? 'not applied, the last good version keeps serving' : 'not applied'}: ${err.path}: ${err.detail}`,
        );
      }
    }
    for (const name of [...good.keys()]) if (!names.has(name)) good.delete(name); // deleted: its route goes
    for (const name of [...reported.keys()]) if (!names.has(name)) reported.delete(name);
    const applied = [...good.entries()].sort(([a], [b]) => a.localeCompare(b));
    const fingerprint = applied.map(([name, a]) => `${name}:${a.fingerprint}`).join(';');
    if (fingerprint !== appliedFingerprint) {
      sink.apply(applied.map(([, a]) => a.config), source);
      appliedFingerprint = fingerprint;
    }
    firstApplied();
    if (pending) throw new SecretPendingError(namespace, 'some referenced Secrets');
  };

  const queue = new WorkQueue(sync, log);
  const enqueue = (): void => queue.add('all');

  const secrets = new SecretStore({ client, log, watchTimeoutSeconds: timeoutSeconds, onChange: enqueue });

  let healthy = false;
  const checkHealth = (): void => {
    const fresh = performance.now() - upstreams.lastSignOfLife < staleAfterMs;
    const now = upstreams.synced && upstreams.connected && fresh;
    if (now !== healthy) {
      healthy = now;
      if (now) log.info({ source }, 'kubernetes watch healthy');
      else {
        const why = !upstreams.connected ? 'disconnected' : !fresh ? `no event or bookmark for ${Math.round((performance.now() - upstreams.lastSignOfLife) / 1000)}s` : 'not synced yet';
        log.warn({ source, why, staleAfterMs }, `kubernetes watch unhealthy (${why}); the last good config keeps serving`);
      }
    }
    gauge.set(healthy ? 1 : 0);
  };

  const upstreams = new Informer<UpstreamObject>({
    client,
    path: paths.upstreams(namespace),
    watchTimeoutSeconds: timeoutSeconds,
    log,
    what: `llmupstreams in ${namespace}`,
    onEvent: enqueue,
    onSynced: enqueue,
    onHealth: checkHealth,
  });
  upstreams.start();
  const healthTimer = setInterval(checkHealth, Math.min(1000, staleAfterMs / 4));
  healthTimer.unref();

  const close = (): void => {
    clearInterval(healthTimer);
    queue.stop();
    void upstreams.stop();
    void secrets.close();
    gauge.set(0);
  };

  const initialTimeout = options.initialSyncTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const waited = await Promise.race([
    firstApply.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), initialTimeout))),
  ]);
  clearTimeout(timer);
  if (!waited) log.warn({ source, waitedMs: initialTimeout }, 'no LLMUpstreams loaded yet (API server unreachable?); serving none until the watch delivers them');
  log.info({ source, staleAfterMs, watchTimeoutSeconds: timeoutSeconds }, 'watching LLMUpstreams');

  return { close, healthy: () => healthy };
}
