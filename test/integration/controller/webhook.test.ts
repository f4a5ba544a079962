// The webhook's HTTPS server on 127.0.0.1 with a certificate from its own CA: it answers
// AdmissionReviews, allows what it cannot read (counted as an error), refuses oversized bodies,
// serves nothing else, handshakes only once a certificate is loaded, and swaps certificates in
// place. The cert-manager mode reloads tls.crt/tls.key from a directory when they change.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sidecarContainer } from '../../../src/cli.ts';
import { systemClock } from '../../../src/clock.ts';
import { DirCertKeeper } from '../../../src/controller/certkeeper.ts';
import { issueServing, newCa, type KeyPair } from '../../../src/controller/certs.ts';
import { MAX_BODY_BYTES, WebhookServer } from '../../../src/controller/webhook.ts';
import { sidecarValues } from '../../../src/sidecar.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createControllerMetrics } from '../../../src/telemetry/metrics.ts';

interface Answer {
  status: number;
  body: string;
}

function post(port: number, ca: string, body: string | Buffer, path = '/inject', method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // agent: false, so each call is a new connection (and a new handshake)
    const req = request({ host: '127.0.0.1', port, path, method, ca, agent: false, headers: { 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const review = (object: unknown) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'uid-7', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object } });
const labelledPod = { metadata: { name: 'p', labels: { 'breakwater.dev/inject': 'enabled' } }, spec: { containers: [{ name: 'app' }] } };

describe('webhook server', () => {
  const metrics = createControllerMetrics();
  const server = new WebhookServer({ listen: { host: '127.0.0.1', port: 0 }, sidecar: sidecarContainer(sidecarValues({})), excludeNamespaces: ['kube-system'], log: silentLogger, metrics });
  let ca: KeyPair;
  let serving: KeyPair;
  const count = async (result: string) => (await metrics.injections.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  beforeAll(async () => {
    ca = await newCa(Date.now());
    serving = await issueServing(ca, ['127.0.0.1'], Date.now());
    await server.start();
  });
  afterAll(() => server.stop());

  it('refuses handshakes until a certificate is loaded', async () => {
    expect(server.ready()).toBe(false);
    await expect(post(server.port, ca.cert, review(labelledPod))).rejects.toThrow();
    server.setCertificate(serving);
    expect(server.ready()).toBe(true);
  });

  it('answers an AdmissionReview with the patch, and counts the injection', async () => {
    const before = await count('injected');
    const res = await post(server.port, ca.cert, review(labelledPod));
    expect(res.status).toBe(200);
    const answer = JSON.parse(res.body) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string } };
    expect(answer).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-7', allowed: true, patchType: 'JSONPatch' } });
    expect(JSON.parse(Buffer.from(answer.response.patch, 'base64').toString())[0]).toMatchObject({ op: 'add', path: '/spec/initContainers' });
    expect(await count('injected')).toBe(before + 1);
  });

  it('allows a request it cannot read, with a warning, and counts an error', async () => {
    const before = await count('error');
    const res = await post(server.port, ca.cert, '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-2"');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ response: { uid: '', allowed: true, warnings: [expect.stringMatching(/could not read/)] } });
    expect(await count('error')).toBe(before + 1);
  });

  it('refuses a body over the limit', async () => {
    const res = await post(server.port, ca.cert, Buffer.alloc(MAX_BODY_BYTES + 1, 0x20)).catch((err: Error) => ({ status: -1, body: err.message }));
    // either the 413 arrives, or the socket is cut while the client still sends
    expect([413, -1]).toContain(res.status);
  });

  it('serves nothing but POST /inject', async () => {
    expect((await post(server.port, ca.cert, '', '/', 'GET')).status).toBe(404);
    expect((await post(server.port, ca.cert, '', '/inject', 'GET')).status).toBe(404);
  });

  it('swaps in a new certificate for new connections', async () => {
    const otherCa = await newCa(Date.now());
    server.setCertificate(await issueServing(otherCa, ['127.0.0.1'], Date.now()));
    expect((await post(server.port, otherCa.cert, review(labelledPod))).status).toBe(200);
    await expect(post(server.port, ca.cert, review(labelledPod))).rejects.toThrow();
  });
});

describe('cert-manager mode', () => {
  it('loads tls.crt/tls.key from the directory and reloads them when they change', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'breakwater-certdir-'));
      const ca = await newCa(Date.now());
      const first = await issueServing(ca, ['a.example'], Date.now());
      const second = await issueServing(ca, ['b.example'], Date.now());
      writeFileSync(join(dir, 'tls.crt'), first.cert);
      writeFileSync(join(dir, 'tls.key'), first.key);
      const loaded: KeyPair[] = [];
      const keeper = new DirCertKeeper({ dir, log: silentLogger, clock: systemClock, metrics: createControllerMetrics(), recheckMs: 10_000, target: { setCertificate: (p) => loaded.push(p) } });
      await keeper.start();
      expect(loaded.map((p) => p.cert)).toEqual([first.cert]);
      expect(keeper.notReady()).toBeUndefined();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(loaded).toHaveLength(1); // unchanged: not loaded again
      writeFileSync(join(dir, 'tls.crt'), second.cert);
      writeFileSync(join(dir, 'tls.key'), second.key);
      await vi.advanceTimersByTimeAsync(10_000);
      await vi.waitFor(() => expect(loaded.map((p) => p.cert)).toEqual([first.cert, second.cert]), { timeout: 5_000 });
      await keeper.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
