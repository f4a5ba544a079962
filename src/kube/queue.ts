// A work queue in the shape of client-go's: handlers add keys; one worker runs sync(key) for
// each, one at a time; a key added while it is being synced runs again afterwards (never twice
// at once). A sync returns what should happen next: nothing, or `{ requeueAfterMs }` (wait for
// something that will not send an event, e.g. a 409 on fresh data). A sync that throws is
// retried with per-key exponential backoff. Permanent problems belong in status and Events, not
// in exceptions, so they never loop.
import type { Logger } from '../telemetry/log.ts';
import { backoffMs } from './informer.ts';

/** What a sync asks for: nothing more (void), or another run of the key after a delay. */
export type SyncResult = void | { requeueAfterMs: number };

export class WorkQueue {
  #sync: (key: string) => Promise<SyncResult>;
  #log: Logger;
  #pending = new Set<string>();
  #failures = new Map<string, number>();
  #timers = new Map<string, NodeJS.Timeout>();
  #running = false;
  #stopped = false;

  constructor(sync: (key: string) => Promise<SyncResult>, log: Logger) {
    this.#sync = sync;
    this.#log = log;
  }

  add(key: string): void {
    if (this.#stopped) return;
    this.#pending.add(key);
    if (!this.#running) void this.#work();
  }

  addAfter(key: string, ms: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, timer);
  }

  async #work(): Promise<void> {
    this.#running = true;
    while (!this.#stopped && this.#pending.size > 0) {
      const key = this.#pending.values().next().value as string;
      this.#pending.delete(key);
      try {
        const result = await this.#sync(key);
        this.#failures.delete(key);
        if (result) this.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const failures = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, failures);
        const delay = backoffMs(failures, 500, 30_000);
        this.#log.warn({ key, failures, retryInMs: Math.round(delay), err: (err as Error).message }, 'sync failed; retrying');
        this.addAfter(key, delay);
      }
    }
    this.#running = false;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#pending.clear();
  }
}
