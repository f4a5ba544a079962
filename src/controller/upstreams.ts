// LLMUpstream status as two runnables. The cache (every replica) watches LLMUpstreams and the
// Secrets they name, so a replica that wins the Lease has warm data at once. The writer
// (leader-only) runs the work queue: one sync per object computes the desired status and
// patches it when it differs, after checking right before the write that the Lease is still
// held (fencing). Handlers only enqueue.
import type { UpstreamStatus } from '../config/schema.ts';
import type { UpstreamObject } from '../config/sources/kubernetes.ts';
import { isConflict, paths, type KubeClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { WorkQueue, type SyncResult } from '../kube/queue.ts';
import { SecretPendingError, SecretStore, secretRefsOf } from '../kube/secrets.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { Runnable } from './manager.ts';
import { desiredStatus, patchStatus, sameStatus } from './status.ts';

export interface UpstreamStatusOptions {
  client: KubeClient;
  log: Logger;
  metrics: ControllerMetrics;
  /** undefined: every namespace */
  namespace: string | undefined;
  watchTimeoutSeconds: number;
  fieldManager: string;
  resyncMs: number;
  /** fencing: true only while this replica may write */
  holds(): boolean;
}

const keyOf = (o: UpstreamObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

export class UpstreamStatusController {
  readonly #o: UpstreamStatusOptions;
  readonly #upstreams: Informer<UpstreamObject>;
  readonly #secrets: SecretStore;
  #queue: WorkQueue | undefined;
  #resync: NodeJS.Timeout | undefined;
  #synced = false;

  constructor(options: UpstreamStatusOptions) {
    this.#o = options;
    const { client, log, namespace, watchTimeoutSeconds } = options;
    this.#secrets = new SecretStore({
      client,
      log,
      watchTimeoutSeconds,
      onChange: (ref) => {
        for (const o of this.#upstreams.list()) if (secretRefsOf(o).some((r) => r.namespace === ref.namespace && r.name === ref.name)) this.#enqueue(keyOf(o));
      },
    });
    this.#upstreams = new Informer<UpstreamObject>({
      client,
      path: paths.upstreams(namespace),
      watchTimeoutSeconds,
      log,
      what: namespace ? `llmupstreams in ${namespace}` : 'llmupstreams in all namespaces',
      onEvent: (_kind, obj) => {
        this.#watchSecrets();
        this.#enqueue(keyOf(obj));
      },
      onSynced: () => {
        this.#synced = true;
        this.#watchSecrets();
        this.#enqueueAll();
      },
    });
  }

  /** every replica keeps the Secrets warm, so a new leader has them at once */
  #watchSecrets(): void {
    this.#secrets.want(this.#upstreams.list().flatMap((o) => secretRefsOf(o)));
  }

  #enqueue(key: string): void {
    this.#queue?.add(key);
  }

  #enqueueAll(): void {
    for (const o of this.#upstreams.list()) this.#enqueue(keyOf(o));
  }

  /** /readyz: the first list has arrived */
  notReady(): string | undefined {
    return this.#synced ? undefined : 'LLMUpstreams not listed yet';
  }

  readonly cache: Runnable = {
    name: 'upstream-cache',
    start: async () => this.#upstreams.start(),
    stop: async () => {
      await this.#upstreams.stop();
      await this.#secrets.close();
    },
  };

  readonly writer: Runnable = {
    name: 'status-writer',
    start: async () => {
      this.#queue = new WorkQueue((key) => this.#sync(key), this.#o.log);
      this.#o.metrics.leader.set(1);
      this.#enqueueAll();
      this.#resync = setInterval(() => this.#enqueueAll(), this.#o.resyncMs);
      this.#resync.unref();
    },
    stop: async () => {
      clearInterval(this.#resync);
      this.#queue?.stop();
      this.#queue = undefined;
      this.#o.metrics.leader.set(0);
    },
  };

  async #sync(key: string): Promise<SyncResult> {
    const { log, client, fieldManager } = this.#o;
    if (!this.#o.holds()) return;
    const slash = key.indexOf('/');
    const obj = this.#upstreams.get(key.slice(slash + 1), key.slice(0, slash));
    if (!obj) return;
    // A Secret that has not answered yet gives no verdict: its first answer enqueues this
    // object again (SecretStore onChange), so nothing waits or polls here.
    if (secretRefsOf(obj).some((r) => this.#secrets.state(r).kind === 'pending')) return;
    const current = (obj as { status?: UpstreamStatus }).status;
    let desired: UpstreamStatus;
    try {
      desired = desiredStatus(obj, this.#secrets.resolver(), current);
    } catch (err) {
      if (err instanceof SecretPendingError) return; // raced with a Secret going away: same as above
      throw err;
    }
    if (sameStatus(current, desired)) return;
    // Fencing: the lease must still be ours, now, right before the write.
    if (!this.#o.holds()) {
      log.info({ upstream: key }, 'not writing status: the lease is no longer held');
      return;
    }
    try {
      await patchStatus(client, obj, desired, fieldManager);
    } catch (err) {
      this.#o.metrics.statusWrites.labels(isConflict(err) ? 'conflict' : 'error').inc();
      // 409: the object moved since it was cached; its update event enqueues it, this is a backstop
      if (isConflict(err)) return { requeueAfterMs: 1_000 };
      throw err;
    }
    this.#o.metrics.statusWrites.labels('written').inc();
    const accepted = desired.conditions?.find((c) => c.type === 'Accepted');
    const refsCondition = desired.conditions?.find((c) => c.type === 'ResolvedRefs');
    log.info(
      { upstream: key, generation: desired.observedGeneration, accepted: `${accepted?.status}/${accepted?.reason}`, resolvedRefs: `${refsCondition?.status}/${refsCondition?.reason}` },
      'status written',
    );
  }
}
