// The mutating admission webhook's HTTPS server (node:https): POST /inject with an
// AdmissionReview v1, answered with the JSON Patch from inject.ts. It always allows: a request
// it cannot read is answered "allowed" with a warning and counted as an error, so a bug here
// never blocks an app's pods. Bodies are bounded, every phase of a request has a deadline, and
// the certificate is swapped in place (setSecureContext) when the keeper loads a new one.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SidecarContainer } from '../cli.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { KeyPair } from './certs.ts';
import { injection, type PodLike } from './inject.ts';
import type { Runnable } from './manager.ts';

export const INJECT_PATH = '/inject';
/** an AdmissionReview carries one Pod (etcd's object limit is ~1.5 MiB) */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookOptions {
  listen: { host: string; port: number };
  sidecar: SidecarContainer;
  /** never injected, whatever the webhook configuration sends (kube-system, our own namespace) */
  excludeNamespaces: readonly string[];
  log: Logger;
  metrics: ControllerMetrics;
}

interface AdmissionRequest {
  uid?: unknown;
  kind?: { group?: string; version?: string; kind?: string };
  operation?: string;
  namespace?: string;
  object?: unknown;
}

interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

/** Decodes a request body into the answer; never throws. */
export function review(body: string, sidecar: SidecarContainer, excludeNamespaces: readonly string[] = []): { response: AdmissionResponse; result: 'injected' | 'skipped' | 'already_injected' | 'error'; detail?: string; pod?: string } {
  let request: AdmissionRequest | undefined;
  try {
    const parsed = JSON.parse(body) as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequest };
    if (parsed.apiVersion !== 'admission.k8s.io/v1' || parsed.kind !== 'AdmissionReview') throw new Error('not an admission.k8s.io/v1 AdmissionReview');
    request = parsed.request;
    if (typeof request?.uid !== 'string' || request.uid === '') throw new Error('request.uid is missing');
  } catch (err) {
    const detail = (err as Error).message.slice(0, 200);
    const uid = typeof request?.uid === 'string' ? request.uid : '';
    return { response: { uid, allowed: true, warnings: [`breakwater: injection skipped: could not read the admission request (${detail})`] }, result: 'error', detail };
  }
  const uid = request.uid as string;
  const pod = (request.object ?? {}) as PodLike;
  const podName = `${request.namespace ?? pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? `${pod.metadata?.generateName ?? ''}*`}`;
  // the configuration's namespaceSelector should keep these away; this holds if it does not
  const excluded = excludeNamespaces.includes(request.namespace ?? pod.metadata?.namespace ?? '');
  if (excluded || request.kind?.kind !== 'Pod' || request.operation !== 'CREATE' || typeof request.object !== 'object' || request.object === null) {
    return { response: { uid, allowed: true }, result: 'skipped', pod: podName };
  }
  try {
    const { result, patch, warnings } = injection(pod, sidecar);
    const response: AdmissionResponse = { uid, allowed: true };
    if (patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
    }
    if (warnings.length > 0) response.warnings = warnings;
    return { response, result, pod: podName };
  } catch (err) {
    const detail = (err as Error).message.slice(0, 200);
    return { response: { uid, allowed: true, warnings: [`breakwater: injection failed (${detail}); the pod runs without the sidecar`] }, result: 'error', detail, pod: podName };
  }
}

export class WebhookServer implements Runnable {
  readonly name = 'webhook';
  readonly #o: WebhookOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #certificate: KeyPair | undefined;
  port = 0;

  constructor(options: WebhookOptions) {
    this.#o = options;
    // no certificate until the keeper loads one: handshakes fail until then (failurePolicy
    // Ignore admits the pod, uninjected), and /readyz says not ready
    this.#server = createServer({ minVersion: 'TLSv1.2', requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 30_000 }, (req, res) => this.#handle(req, res));
    this.#server.setTimeout(30_000, (socket) => socket.destroy());
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.#server.on('tlsClientError', (err) => this.#o.log.debug({ err: err.message }, 'webhook: TLS handshake failed'));
  }

  /** true once a serving certificate is loaded */
  ready(): boolean {
    return this.#certificate !== undefined;
  }

  setCertificate(pair: KeyPair): void {
    if (this.#certificate?.cert === pair.cert && this.#certificate.key === pair.key) return;
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    this.#certificate = pair;
    this.#o.log.info('webhook: serving certificate loaded');
  }

  async start(): Promise<void> {
    const { host, port } = this.#o.listen;
    this.port = await new Promise<number>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
    this.#o.log.info({ webhook: `https://${host}:${this.port}${INJECT_PATH}` }, 'webhook listening');
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, 2_000).unref();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== INJECT_PATH || req.method !== 'POST') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`breakwater webhook: POST ${INJECT_PATH}\n`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refused = true;
        this.#o.metrics.injections.labels('error').inc();
        this.#o.log.warn({ limit: MAX_BODY_BYTES }, 'webhook: admission request too large; not injected');
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('admission request too large\n');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      const { response, result, detail, pod } = review(Buffer.concat(chunks).toString('utf8'), this.#o.sidecar, this.#o.excludeNamespaces);
      this.#o.metrics.injections.labels(result).inc();
      const fields = { pod, result, warnings: response.warnings?.length ?? 0, ...(detail ? { detail } : {}) };
      if (result === 'error') this.#o.log.warn(fields, 'webhook: admission request not handled; allowed without the sidecar');
      else this.#o.log.info(fields, `webhook: ${result}`);
      const out = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    });
  }
}
