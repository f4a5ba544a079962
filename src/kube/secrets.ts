// The Secrets that LLMUpstreams name, each read and watched by name (get + watch with a
// metadata.name field selector: RBAC resourceNames allow exactly that, never a list). The
// store keeps the last value it saw while the API server is unreachable, and turns each
// state into the AuthResolver's answer: the key, or a ConfigError with the condition reason.
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { ConfigError, type AuthResolver } from '../config/errors.ts';
import { Secret } from '../config/runtime.ts';
import type { AuthSpec } from '../config/schema.ts';
import type { Logger } from '../telemetry/log.ts';
import { envOrFileAuth } from '../config/sources/file.ts';
import { isForbidden, isNotFound, isTooManyRequests, paths, type KubeClient } from './client.ts';
import { backoffMs, Informer } from './informer.ts';

interface SecretObject extends KubernetesObject {
  data?: Record<string, string>;
}

export type SecretState =
  | { kind: 'pending' }
  | { kind: 'present'; resourceVersion: string; data: Readonly<Record<string, string>> }
  | { kind: 'missing' }
  | { kind: 'forbidden' };

/** A Secret that has not answered yet: not a verdict on the spec, so no Event; try again. */
export class SecretPendingError extends Error {
  readonly code = 'BREAKWATER_SECRET_PENDING';
  constructor(namespace: string, name: string) {
    super(`Secret ${namespace}/${name} has not been read yet (API server unreachable?)`);
    this.name = 'SecretPendingError';
  }
}

export interface SecretRef {
  namespace: string;
  name: string;
}

const refKey = (r: SecretRef) => `${r.namespace}/${r.name}`;

/** How long to wait before asking again for a Secret the API server refused (RBAC may change). */
const FORBIDDEN_RETRY_MS = 30_000;

class WatchedSecret {
  state: SecretState = { kind: 'pending' };
  readonly informer: Informer<SecretObject>;

  constructor(ref: SecretRef, store: SecretStoreOptions, changed: () => void) {
    const { client, log } = store;
    const list = async (): Promise<KubernetesListObject<SecretObject>> => {
      try {
        const secret = await client.request<SecretObject>('GET', paths.secret(ref.namespace, ref.name));
        this.#set({ kind: 'present', resourceVersion: secret.metadata?.resourceVersion ?? '', data: secret.data ?? {} });
        // Not the Secret's own resourceVersion: a Secret that never changes keeps an old one,
        // older than the watch cache after an API server restart (410 Gone, re-list, the same
        // old version, 410 ...). An empty one starts the watch at the newest version with the
        // Secret's current state as its first event, so nothing between this GET and the watch
        // is missed; from then on the watch's events and bookmarks carry fresh versions.
        return { apiVersion: 'v1', kind: 'SecretList', metadata: { resourceVersion: '' }, items: [secret] };
      } catch (err) {
        if (isForbidden(err)) this.#set({ kind: 'forbidden' });
        if (!isNotFound(err)) throw err;
        this.#set({ kind: 'missing' });
        // the watch starts at the newest version and reports the Secret if it appears
        return { apiVersion: 'v1', kind: 'SecretList', metadata: { resourceVersion: '' }, items: [] };
      }
    };
    this.informer = new Informer<SecretObject>({
      client,
      path: paths.secrets(ref.namespace),
      fieldSelector: `metadata.name=${ref.name}`,
      list,
      watchTimeoutSeconds: store.watchTimeoutSeconds,
      log,
      what: `secret ${refKey(ref)}`,
      onEvent: (kind, obj) => {
        if (obj.metadata?.name !== ref.name) return;
        if (kind === 'delete') this.#set({ kind: 'missing' });
        else this.#set({ kind: 'present', resourceVersion: obj.metadata?.resourceVersion ?? '', data: obj.data ?? {} });
      },
      // any other failure keeps the last state: the last good key keeps serving
      retryDelayMs: (err, failures) => (isForbidden(err) ? FORBIDDEN_RETRY_MS : isTooManyRequests(err) ? backoffMs(1, 1_000) : backoffMs(failures)),
    });
    this.#changed = changed;
    this.informer.start();
  }

  readonly #changed: () => void;

  #set(next: SecretState): void {
    const prev = this.state;
    const same =
      prev.kind === next.kind && (prev.kind !== 'present' || next.kind !== 'present' || prev.resourceVersion === next.resourceVersion);
    this.state = next;
    if (!same) this.#changed();
  }
}

export interface SecretStoreOptions {
  client: KubeClient;
  log: Logger;
  watchTimeoutSeconds: number;
  /** a watched Secret changed (appeared, rotated, vanished, became readable or forbidden) */
  onChange(ref: SecretRef): void;
}

export class SecretStore {
  #options: SecretStoreOptions;
  #watched = new Map<string, WatchedSecret>();

  constructor(options: SecretStoreOptions) {
    this.#options = options;
  }

  /** Watches exactly these Secrets: starts the new ones, stops the ones no longer named. */
  want(refs: Iterable<SecretRef>): void {
    const wanted = new Map<string, SecretRef>();
    for (const r of refs) wanted.set(refKey(r), r);
    for (const [key, w] of this.#watched) {
      if (!wanted.has(key)) {
        void w.informer.stop();
        this.#watched.delete(key);
      }
    }
    for (const [key, ref] of wanted) {
      if (!this.#watched.has(key)) this.#watched.set(key, new WatchedSecret(ref, this.#options, () => this.#options.onChange(ref)));
    }
  }

  state(ref: SecretRef): SecretState {
    return this.#watched.get(refKey(ref))?.state ?? { kind: 'pending' };
  }

  /** Resolves once none of `refs` is pending, or after `timeoutMs`. */
  async settled(refs: readonly SecretRef[], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (refs.some((r) => this.state(r).kind === 'pending') && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** secretRef from this store; env and file as the file source reads them. */
  resolver(): AuthResolver {
    return (auth: AuthSpec, where) => {
      const ref = auth.secretRef;
      if (!ref) return envOrFileAuth(auth, where);
      const namespace = where.namespace ?? '';
      const state = this.state({ namespace, name: ref.name });
      switch (state.kind) {
        case 'pending':
          throw new SecretPendingError(namespace, ref.name);
        case 'missing':
          throw new ConfigError(where.document, `${where.path}.secretRef`, `Secret "${ref.name}" not found in namespace "${namespace}"`, 'SecretNotFound');
        case 'forbidden':
          throw new ConfigError(
            where.document,
            `${where.path}.secretRef`,
            `Breakwater may not read Secret "${ref.name}" in namespace "${namespace}": add it to the Secrets Breakwater may read (RBAC resourceNames)`,
            'Forbidden',
          );
        case 'present': {
          // own keys only: "constructor" or "__proto__" must not find Object.prototype's
          const encoded = Object.hasOwn(state.data, ref.key) ? state.data[ref.key] : undefined;
          if (typeof encoded !== 'string') {
            throw new ConfigError(where.document, `${where.path}.secretRef.key`, `Secret "${ref.name}" has no key "${ref.key}"`, 'KeyNotFound');
          }
          const value = Buffer.from(encoded, 'base64').toString('utf8').trim();
          if (value === '') throw new ConfigError(where.document, `${where.path}.secretRef.key`, `key "${ref.key}" of Secret "${ref.name}" is empty`, 'KeyNotFound');
          return new Secret(value);
        }
      }
    };
  }

  /** resourceVersion of a present Secret (for change detection), else its state's kind */
  version(ref: SecretRef): string {
    const s = this.state(ref);
    return s.kind === 'present' ? `rv:${s.resourceVersion}` : s.kind;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#watched.values()].map((w) => w.informer.stop()));
    this.#watched.clear();
  }
}

/** The Secrets a spec names (ignores what it cannot read: validation reports that). */
export function secretRefsOf(obj: { metadata?: { namespace?: string }; spec?: unknown }): SecretRef[] {
  const namespace = obj.metadata?.namespace ?? '';
  const endpoints = (obj.spec as { endpoints?: unknown } | undefined)?.endpoints;
  if (!Array.isArray(endpoints)) return [];
  const out: SecretRef[] = [];
  for (const e of endpoints) {
    const name = (e as { auth?: { secretRef?: { name?: unknown } } } | null)?.auth?.secretRef?.name;
    if (typeof name === 'string' && name !== '') out.push({ namespace, name });
  }
  return out;
}
