// Keeps the webhook's serving certificate, on every replica. Two modes:
//   - own CA (default): the certificates live in one kubernetes.io/tls Secret (ca.crt, ca.key,
//     tls.crt, tls.key) in the controller's namespace. Every `recheck` each replica reads it;
//     if it is missing or needs renewal (certs.ts decides), the replica writes a new one, with
//     the resourceVersion as precondition: replicas that race get 409, re-read and load the
//     winner's. Then it loads the serving pair into the webhook and makes every webhook of the
//     MutatingWebhookConfiguration carry the CA in its caBundle (a guarded JSON Patch).
//   - cert-manager (--webhook-cert-dir): tls.crt/tls.key are read from a mounted directory and
//     reloaded when they change; no Secret is written and caBundle is cert-manager's job.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.ts';
import { isConflict, isNotFound, paths, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import { caBundlePatch, renewalNeeded, renewed, servingExpiry, type CertBundle, type KeyPair, type WebhookConfigurationLike } from './certs.ts';
import type { Runnable } from './manager.ts';

interface SecretObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

const KEYS = { caCert: 'ca.crt', caKey: 'ca.key', tlsCert: 'tls.crt', tlsKey: 'tls.key' } as const;

function bundleOf(secret: SecretObject | undefined): CertBundle | undefined {
  if (!secret?.data) return undefined;
  const read = (k: string) => Buffer.from(secret.data?.[k] ?? '', 'base64').toString('utf8');
  return { caCert: read(KEYS.caCert), caKey: read(KEYS.caKey), tlsCert: read(KEYS.tlsCert), tlsKey: read(KEYS.tlsKey) };
}

function dataOf(bundle: CertBundle): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return { [KEYS.caCert]: b64(bundle.caCert), [KEYS.caKey]: b64(bundle.caKey), [KEYS.tlsCert]: b64(bundle.tlsCert), [KEYS.tlsKey]: b64(bundle.tlsKey) };
}

export interface CertTarget {
  setCertificate(pair: KeyPair): void;
}

interface Common {
  log: Logger;
  clock: Clock;
  metrics: ControllerMetrics;
  target: CertTarget;
  recheckMs: number;
}

/** A periodic job that runs once at start (awaited) and then every recheckMs. */
abstract class Periodic implements Runnable {
  abstract readonly name: string;
  protected readonly common: Common;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();
  loaded: KeyPair | undefined;

  constructor(common: Common) {
    this.common = common;
  }

  protected abstract tick(): Promise<void>;

  /** undefined when a certificate is loaded (a /readyz check) */
  notReady(): string | undefined {
    return this.loaded ? undefined : 'no webhook serving certificate loaded yet';
  }

  protected load(pair: KeyPair): void {
    if (this.loaded?.cert === pair.cert && this.loaded.key === pair.key) return;
    this.common.target.setCertificate(pair);
    this.loaded = pair;
    const expiry = servingExpiry(pair.cert);
    if (expiry !== undefined) this.common.metrics.certificateExpiry.set(expiry / 1000);
  }

  async #run(): Promise<void> {
    try {
      await this.tick();
    } catch (err) {
      this.common.log.warn({ job: this.name, err: (err as Error).message }, 'webhook certificate check failed; trying again');
    }
    if (!this.#stopped) this.#timer = this.common.clock.setTimeout(() => void (this.#running = this.#run()), this.common.recheckMs);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#running = this.#run();
    await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.common.clock.clearTimeout(this.#timer);
    await this.#running;
  }
}

export interface SecretCertKeeperOptions extends Common {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** the names the serving certificate must carry */
  names: readonly string[];
  /** the MutatingWebhookConfiguration whose webhooks get the caBundle */
  webhookConfigName: string;
}

export class SecretCertKeeper extends Periodic {
  readonly name = 'cert-keeper';
  readonly #o: SecretCertKeeperOptions;
  #missingConfigLogged = false;

  constructor(options: SecretCertKeeperOptions) {
    super(options);
    this.#o = options;
  }

  protected async tick(): Promise<void> {
    const bundle = await this.#ensureSecret();
    this.load({ cert: bundle.tlsCert, key: bundle.tlsKey });
    await this.#ensureCaBundle(Buffer.from(bundle.caCert).toString('base64'));
  }

  async #read(): Promise<SecretObject | undefined> {
    const { client, namespace, secretName } = this.#o;
    try {
      return await client.request<SecretObject>('GET', paths.secret(namespace, secretName));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The Secret's bundle, made or renewed first when needed. Conflicts re-read (another replica won). */
  async #ensureSecret(): Promise<CertBundle> {
    const { client, namespace, secretName, names, log, clock } = this.#o;
    for (let attempt = 0; ; attempt++) {
      const secret = await this.#read();
      const current = bundleOf(secret);
      const now = clock.wallNow(); // certificate validity is wall-clock time
      const renewal = renewalNeeded(current, names, now);
      if (renewal.kind === 'none') return current!;
      if (attempt >= 3) throw new Error(`the certificate Secret ${namespace}/${secretName} keeps changing under us`);
      log.info({ secret: `${namespace}/${secretName}`, renew: renewal.kind, reason: renewal.reason }, 'webhook certificate: issuing');
      const next = await renewed(current, renewal, names, now);
      // a fresh bundle that still "needs renewal" would be rewritten on every recheck, by every
      // replica: refuse to write it and say why
      const fresh = renewalNeeded(next, names, now);
      if (fresh.kind !== 'none') throw new Error(`a freshly issued certificate still needs renewal (${fresh.reason}); not writing it`);
      const body: SecretObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: secret?.type ?? 'kubernetes.io/tls',
        metadata: secret?.metadata
          ? { ...secret.metadata }
          : { name: secretName, namespace, labels: { 'app.kubernetes.io/name': 'breakwater', 'app.kubernetes.io/component': 'webhook' } },
        data: { ...secret?.data, ...dataOf(next) },
      };
      try {
        if (secret) await client.request('PUT', paths.secret(namespace, secretName), { body });
        else await client.request('POST', paths.secrets(namespace), { body });
        log.info({ secret: `${namespace}/${secretName}`, names }, 'webhook certificate: written');
        return next;
      } catch (err) {
        // 409 (AlreadyExists on create, Conflict on update): another replica wrote it first; theirs wins, read it again
        if (!isConflict(err)) throw err;
        log.info({ secret: `${namespace}/${secretName}` }, 'webhook certificate: another replica wrote it first; reading theirs');
      }
    }
  }

  async #ensureCaBundle(caBundle: string): Promise<void> {
    const { client, webhookConfigName, log } = this.#o;
    const path = paths.mutatingWebhookConfiguration(webhookConfigName);
    let config: WebhookConfigurationLike;
    try {
      config = await client.request<WebhookConfigurationLike>('GET', path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!this.#missingConfigLogged) log.warn({ webhookConfiguration: webhookConfigName }, 'MutatingWebhookConfiguration not found; its caBundle is filled once it exists');
      this.#missingConfigLogged = true;
      return;
    }
    this.#missingConfigLogged = false;
    const patch = caBundlePatch(config, caBundle);
    if (patch.length === 0) return;
    try {
      await client.request('PATCH', path, { contentType: 'application/json-patch+json', body: patch });
      log.info({ webhookConfiguration: webhookConfigName, webhooks: patch.length / 2 }, 'caBundle patched');
    } catch (err) {
      // 422: the webhooks moved between GET and PATCH (the test op failed): next round
      log.warn({ webhookConfiguration: webhookConfigName, err: (err as Error).message }, 'caBundle patch failed; trying again');
    }
  }
}

export interface DirCertKeeperOptions extends Common {
  dir: string;
}

/** cert-manager mode: tls.crt and tls.key from a mounted Secret, reloaded when they change. */
export class DirCertKeeper extends Periodic {
  readonly name = 'cert-dir';
  readonly #dir: string;

  constructor(options: DirCertKeeperOptions) {
    super(options);
    this.#dir = options.dir;
  }

  protected async tick(): Promise<void> {
    const [cert, key] = await Promise.all([readFile(join(this.#dir, 'tls.crt'), 'utf8'), readFile(join(this.#dir, 'tls.key'), 'utf8')]);
    const before = this.loaded;
    this.load({ cert, key });
    if (before && this.loaded !== before) this.common.log.info({ dir: this.#dir }, 'webhook certificate reloaded from the directory');
  }
}
