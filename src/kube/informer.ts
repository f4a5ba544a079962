// An informer: @kubernetes/client-node's ListWatch (list, then watch from the list's
// resourceVersion; re-list on 410 Gone; resume from the last resourceVersion after a clean
// close) plus what it lacks for a long-lived sidecar:
//   - ListWatch stops on any other error; this restarts it with jittered exponential backoff,
//     resuming from the last resourceVersion it saw,
//   - watches ask for bookmarks and a server-side timeout, so a healthy but quiet API server
//     still shows a sign of life every `watchTimeoutSeconds`; `lastSignOfLife` and `connected`
//     let the owner report a stale watch.
// Handlers only hand events on; the owner enqueues work, never does it in a handler.
import { ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../telemetry/log.ts';
import { KubeApiError, type KubeClient } from './client.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubernetesObject> {
  client: KubeClient;
  /** collection path, e.g. /apis/breakwater.dev/v1alpha1/namespaces/shop/llmupstreams */
  path: string;
  fieldSelector?: string;
  /** default: GET the collection path (with the field selector) */
  list?: () => Promise<KubernetesListObject<T>>;
  /** the API server ends each watch after this long (with a bookmark just before) */
  watchTimeoutSeconds: number;
  log: Logger;
  /** for logs: "llmupstreams", "secret shop/openai" */
  what: string;
  onEvent(kind: InformerEvent, obj: T): void;
  /** the first list (and every re-list) has been applied to the cache */
  onSynced?(): void;
  /** connected changed, or a sign of life arrived */
  onHealth?(): void;
  /** how long to wait before restarting after an error (default: backoff 0.5 s .. 10 s) */
  retryDelayMs?(err: unknown, failures: number): number;
  /** an error the informer restarts from; the owner may record it (e.g. 403) */
  onError?(err: unknown): void;
}

const now = () => performance.now();

export function backoffMs(failures: number, baseMs = 500, maxMs = 10_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export class Informer<T extends KubernetesObject> {
  #options: InformerOptions<T>;
  #listWatch: ListWatch<T>;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #synced = false;
  /** a watch (or list) is established and has not failed since */
  connected = false;
  /** performance.now() of the last list, watch start, event or bookmark */
  lastSignOfLife = now();

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    const informer = this;
    /** `delivered`: an event or bookmark arrived (only that resets the backoff, so a watch that
     * opens and fails at once, e.g. 403 after a good list, cannot loop fast) */
    const alive = (delivered: boolean): void => {
      informer.lastSignOfLife = now();
      if (delivered) informer.#failures = 0;
      if (!informer.connected) {
        informer.connected = true;
        options.log.info({ watch: options.what }, 'kubernetes watch connected');
      }
      options.onHealth?.();
    };
    class LivenessWatch extends Watch {
      override async watch(
        path: string,
        query: Record<string, string | number | boolean | undefined>,
        callback: (phase: string, obj: unknown, watchObj?: unknown) => void,
        done: (err: unknown) => void,
      ): Promise<AbortController> {
        let finished = false;
        const params = { ...query, allowWatchBookmarks: true, timeoutSeconds: options.watchTimeoutSeconds };
        try {
          const controller = await super.watch(
            path,
            params,
            (phase, obj, watchObj) => {
              alive(phase !== 'ERROR');
              if (phase === 'ERROR') {
                const status = obj as { code?: number; reason?: string; message?: string };
                options.log.info({ watch: options.what, code: status.code, reason: status.reason }, `kubernetes watch ended by the API server: ${status.message ?? ''}${status.code === 410 ? ' (re-listing)' : ''}`);
              }
              callback(phase, obj, watchObj);
            },
            (err) => {
              finished = true;
              done(err);
            },
          );
          if (!finished) alive(false); // the API server answered 200: the watch is open
          return controller;
        } catch (err) {
          if (!finished) done(err);
          return new AbortController();
        }
      }
    }
    const list =
      options.list ??
      (() => options.client.request<KubernetesListObject<T>>('GET', options.path, { query: { fieldSelector: options.fieldSelector } }));
    const listFn = async (): Promise<KubernetesListObject<T>> => {
      const result = await list();
      alive(false);
      if (informer.#synced) options.log.info({ watch: options.what, resourceVersion: result.metadata?.resourceVersion }, 'kubernetes watch re-listed');
      // ListWatch applies the items right after this promise resolves (no await in between).
      setImmediate(() => {
        informer.#synced = true;
        options.onSynced?.();
      });
      return result;
    };
    this.#listWatch = new ListWatch<T>(options.path, new LivenessWatch(options.client.config), listFn, false, undefined, options.fieldSelector);
    this.#listWatch.on('add', (obj) => options.onEvent('add', obj));
    this.#listWatch.on('update', (obj) => options.onEvent('update', obj));
    this.#listWatch.on('delete', (obj) => options.onEvent('delete', obj));
    this.#listWatch.on('error', (err: unknown) => this.#failed(err));
  }

  get synced(): boolean {
    return this.#synced;
  }

  start(): void {
    this.#stopped = false;
    this.#run();
  }

  #run(): void {
    this.#listWatch.start().catch((err: unknown) => this.#failed(err));
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    this.#failures++;
    const { log, what } = this.#options;
    if (this.connected) {
      this.connected = false;
      this.#options.onHealth?.();
    }
    this.#options.onError?.(err);
    const status = err instanceof KubeApiError ? err.status : (err as { statusCode?: number }).statusCode;
    // 429: the API server is up but busy or still initializing its storage; ask again soon
    const delay = this.#options.retryDelayMs?.(err, this.#failures) ?? (status === 429 ? backoffMs(1, 1_000) : backoffMs(this.#failures));
    const detail = err instanceof Error ? err.message : String(err);
    log.warn({ watch: what, status, failures: this.#failures, retryInMs: Math.round(delay) }, `kubernetes watch failed, retrying: ${detail}`);
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopped) this.#run(); // resumes from the last resourceVersion (or re-lists)
    }, delay);
    this.#restartTimer.unref();
  }

  list(): readonly T[] {
    return this.#listWatch.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#listWatch.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#listWatch.stop();
  }
}
