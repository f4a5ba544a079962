// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it, plus
// fencing for the writer: holds() is true only while the last successful renewal was *sent*
// less than renewDeadline ago. Other replicas take over only after they have seen the Lease
// unchanged for leaseDuration (> renewDeadline) by their own clocks, so a holder that was
// frozen, partitioned or slow stops writing before anyone else may start. Time is monotonic
// (performance.now), never the wall clock, and never the other replicas' timestamps.
import type { Logger } from '../telemetry/log.ts';
import { isConflict, isNotFound, paths, type KubeClient } from './client.ts';

export interface LeaseOptions {
  client: Pick<KubeClient, 'request'>;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** held: acquired or renewed; taken: another replica holds an unexpired lease; failed: try again */
type Attempt = 'held' | 'taken' | 'failed';

const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  #o: LeaseOptions;
  #leading = false;
  /** performance.now() when the last successful acquire/renew request was sent */
  #renewedAt = -Infinity;
  /** the Lease record as last seen, and when this replica first saw it so */
  #observed: { holder: string; renewTime: string; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** the last renewal came after holds() had turned false (frozen, partitioned, API server away) */
  #gap = false;

  constructor(options: LeaseOptions) {
    if (!(options.renewDeadlineMs < options.leaseDurationMs)) throw new Error('lease: renew deadline must be shorter than the lease duration');
    if (!(options.retryPeriodMs < options.renewDeadlineMs)) throw new Error('lease: retry period must be shorter than the renew deadline');
    this.#o = options;
  }

  /** Fencing: true only while this replica may write. Check it right before every write. */
  holds(): boolean {
    return this.#leading && performance.now() - this.#renewedAt < this.#o.renewDeadlineMs;
  }

  start(): void {
    this.#stopped = false;
    void this.#tick();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    let result: Attempt = 'failed';
    try {
      result = await this.#tryAcquireOrRenew();
    } catch (err) {
      this.#o.log.warn({ lease: this.#o.name, err: (err as Error).message }, 'lease: acquire/renew failed');
    }
    if (this.#stopped) return;
    if (result === 'held' && (!this.#leading || this.#gap)) {
      // acquired, or renewed after a gap in which holds() was false (and writes were skipped)
      const resumed = this.#leading;
      this.#leading = true;
      this.#o.log.info({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity, resumed }, resumed ? 'lease renewed after a gap: writing status again' : 'lease acquired: writing status');
      this.#o.onStartedLeading();
    } else if (this.#leading && (result === 'taken' || !this.holds())) {
      this.#renewedAt = -Infinity;
      this.#leading = false;
      this.#o.log.warn({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity }, 'lease lost: no more status writes');
      this.#o.onStoppedLeading();
    }
    this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
  }

  async #tryAcquireOrRenew(): Promise<Attempt> {
    const { client, namespace, name, identity, leaseDurationMs } = this.#o;
    const sentAt = performance.now();
    const durationSeconds = Math.max(1, Math.round(leaseDurationMs / 1000));
    const path = paths.lease(namespace, name);
    let lease: LeaseObject;
    try {
      lease = await client.request<LeaseObject>('GET', path, { timeoutMs: this.#o.retryPeriodMs });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const now = microTime();
      const created = await client
        .request<LeaseObject>('POST', paths.leases(namespace), {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
          timeoutMs: this.#o.retryPeriodMs,
        })
        .catch((e: unknown) => (isConflict(e) ? undefined : Promise.reject(e)));
      if (!created) return 'failed';
      this.#renewed(sentAt, created);
      return 'held';
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ?? '';
    if (!this.#observed || this.#observed.holder !== holder || this.#observed.renewTime !== renewTime) {
      this.#observed = { holder, renewTime, at: performance.now() };
    }
    const theirDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== identity && performance.now() - this.#observed.at < theirDurationMs) {
      return 'taken';
    }
    const now = microTime();
    const mine = holder === identity;
    try {
      const updated = await client.request<LeaseObject>('PUT', path, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { ...lease.metadata },
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: mine ? spec.acquireTime : now,
            renewTime: now,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
          },
        },
        timeoutMs: this.#o.retryPeriodMs,
      });
      this.#renewed(sentAt, updated);
      return 'held';
    } catch (err) {
      if (isConflict(err)) return 'failed'; // someone else wrote it first
      throw err;
    }
  }

  #renewed(sentAt: number, lease: LeaseObject): void {
    this.#gap = sentAt - this.#renewedAt >= this.#o.renewDeadlineMs;
    this.#renewedAt = sentAt;
    this.#observed = { holder: lease.spec?.holderIdentity ?? '', renewTime: lease.spec?.renewTime ?? '', at: performance.now() };
  }

  /** Stops renewing; when holding, gives the Lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.holds()) return;
    this.#leading = false;
    const path = paths.lease(this.#o.namespace, this.#o.name);
    try {
      const lease = await this.#o.client.request<LeaseObject>('GET', path, { timeoutMs: 2_000 });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      await this.#o.client.request('PUT', path, {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() } },
        timeoutMs: 2_000,
      });
      this.#o.log.info({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'lease released');
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'lease: release failed; it expires on its own');
    }
  }
}
