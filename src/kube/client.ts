// A small Kubernetes REST client over @kubernetes/client-node's KubeConfig (credentials, TLS)
// and its undici dispatcher. Every call has a deadline: a frozen API server must never hang a
// sync. Errors carry the HTTP status and the API's `reason`, checked by code, never by message.
import { KubeConfig, RequestContext, type HttpMethod } from '@kubernetes/client-node';
import { fetch, type Dispatcher } from 'undici';
import { ConfigError } from '../config/errors.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** A failed API call. `status` 0 means no HTTP answer (refused, reset, timed out). */
export class KubeApiError extends Error {
  readonly code = 'BREAKWATER_KUBE_API';
  readonly status: number;
  /** metav1.Status reason: NotFound, Forbidden, Conflict, AlreadyExists, Expired, ... or Unreachable */
  readonly reason: string;
  constructor(method: string, path: string, status: number, reason: string, message: string) {
    super(`${method} ${path}: ${status === 0 ? 'no answer' : status} ${reason}: ${message}`);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

export function isForbidden(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 403;
}

export function isTooManyRequests(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 429;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** default application/json; patches name their strategy (application/merge-patch+json, ...) */
  contentType?: string;
  timeoutMs?: number;
}

/** Loads a kubeconfig file when given (KUBECONFIG), the in-cluster ServiceAccount otherwise. */
/** Throws ConfigError (main.ts prints it as one line and exits non-zero). */
export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  const where = kubeconfig ?? 'in-cluster ServiceAccount';
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromCluster();
  } catch (err) {
    throw new ConfigError(where, '(kubeconfig)', `cannot load: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server || cluster.server.includes('undefined')) {
    throw new ConfigError(where, '(kubeconfig)', kubeconfig ? 'names no current cluster' : 'not running in a pod (KUBERNETES_SERVICE_HOST unset) and no KUBECONFIG given');
  }
  return kc;
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly server: string;
  #dispatcher: Dispatcher | undefined;

  constructor(config: KubeConfig) {
    this.config = config;
    this.server = config.getCurrentCluster()!.server.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    // Credentials are applied per call (a ServiceAccount token file rotates); the TLS
    // dispatcher is kept, so connections are reused.
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.config.applySecurityAuthentication(ctx);
    this.#dispatcher ??= ctx.getDispatcher() as Dispatcher | undefined;
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new KubeApiError(method, path, 0, 'Unreachable', String(cause));
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      let reason = 'Unknown';
      let message = text.slice(0, 300);
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason ?? reason;
        message = status.message ?? message;
      } catch {
        // not a metav1.Status
      }
      throw new KubeApiError(method, path, res.status, reason, message);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** Paths of the resources Breakwater touches. */
export const paths = {
  upstreams: (namespace: string | undefined) =>
    namespace ? `/apis/breakwater.dev/v1alpha1/namespaces/${namespace}/llmupstreams` : '/apis/breakwater.dev/v1alpha1/llmupstreams',
  upstreamStatus: (namespace: string, name: string) => `/apis/breakwater.dev/v1alpha1/namespaces/${namespace}/llmupstreams/${name}/status`,
  secrets: (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`,
  secret: (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`,
  events: (namespace: string) => `/apis/events.k8s.io/v1/namespaces/${namespace}/events`,
  lease: (namespace: string, name: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`,
  leases: (namespace: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
  mutatingWebhookConfiguration: (name: string) => `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
};
