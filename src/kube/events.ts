// Kubernetes Events (events.k8s.io/v1) about LLMUpstreams, rate-limited: one Event per
// (object, reason, note); repeats within the window only bump its series (a PATCH at most once
// a minute); and a token bucket caps the whole recorder. Notes come from ConfigError messages,
// which never hold a key.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../telemetry/log.ts';
import { paths, type KubeClient } from './client.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventRecorderOptions {
  client: KubeClient;
  log: Logger;
  /** reportingController, e.g. breakwater.dev/sidecar */
  controller: string;
  /** reportingInstance; default the pod's hostname */
  instance?: string;
  /** an identical Event is not created again within this window (default 10 min) */
  dedupeMs?: number;
  burst?: number;
  /** tokens per second (default one every 10 s) */
  refillPerSecond?: number;
}

interface Recorded {
  eventName: string;
  namespace: string;
  count: number;
  firstAt: number;
  lastPatchAt: number;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class EventRecorder {
  #options: EventRecorderOptions;
  #recent = new Map<string, Recorded>();
  #tokens: number;
  #refilledAt = Date.now();

  constructor(options: EventRecorderOptions) {
    this.#options = options;
    this.#tokens = options.burst ?? 20;
  }

  #take(): boolean {
    const now = Date.now();
    const burst = this.#options.burst ?? 20;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) / 1000) * (this.#options.refillPerSecond ?? 0.1));
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Records a Warning. Never throws; failures are logged. */
  warn(target: EventTarget, reason: string, note: string, action = 'Apply'): void {
    void this.#record(target, 'Warning', reason, note.slice(0, 1024), action).catch((err: unknown) =>
      this.#options.log.warn({ namespace: target.namespace, name: target.name, reason, err: (err as Error).message }, 'could not record a Kubernetes Event'),
    );
  }

  async #record(target: EventTarget, type: string, reason: string, note: string, action: string): Promise<void> {
    const { client } = this.#options;
    const now = Date.now();
    const dedupeMs = this.#options.dedupeMs ?? 10 * 60_000;
    for (const [k, r] of this.#recent) if (now - r.firstAt > dedupeMs) this.#recent.delete(k);
    const key = `${target.namespace}/${target.name}/${target.uid ?? ''}/${reason}/${note}`;
    const seen = this.#recent.get(key);
    if (seen) {
      seen.count++;
      if (now - seen.lastPatchAt < 60_000) return;
      seen.lastPatchAt = now;
      await client.request('PATCH', `${paths.events(seen.namespace)}/${seen.eventName}`, {
        body: { series: { count: seen.count, lastObservedTime: microTime(now) } },
        contentType: 'application/merge-patch+json',
      });
      return;
    }
    if (!this.#take()) {
      this.#options.log.debug({ namespace: target.namespace, name: target.name, reason }, 'event rate limit: not recorded');
      return;
    }
    const eventName = `${target.name}.${randomBytes(8).toString('hex')}`;
    this.#recent.set(key, { eventName, namespace: target.namespace, count: 1, firstAt: now, lastPatchAt: now });
    // a failed POST forgets the entry, so the next occurrence creates the Event instead of patching nothing
    await client.request('POST', paths.events(target.namespace), {
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: eventName, namespace: target.namespace },
        eventTime: microTime(now),
        reportingController: this.#options.controller,
        reportingInstance: (this.#options.instance ?? hostname()).slice(0, 128),
        action,
        reason,
        note,
        type,
        regarding: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.name,
          namespace: target.namespace,
          uid: target.uid,
          resourceVersion: target.resourceVersion,
        },
      },
    }).catch((err: unknown) => {
      this.#recent.delete(key);
      throw err;
    });
  }
}
