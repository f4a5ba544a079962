// The sidecar injector against a real kube-apiserver: the controller makes its own CA and
// serving certificate (in a Secret), fills the caBundle of a MutatingWebhookConfiguration that
// calls it on a loopback URL, and the API server then sends it every labelled Pod. No kubelet
// runs: pods are objects, so the assertions read the stored spec.
import { writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarContainer } from '../../src/cli.ts';
import { parse } from 'yaml';
import { sidecarValues } from '../../src/sidecar.ts';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { freePort } from './harness/processes.ts';
import { startController, type Controller } from './support/breakwater.ts';
import { renderChart, RELEASE } from './support/chart.ts';
import { applyJson, CONTROLLER_NAMESPACE, kubectlOk, setupCluster } from './support/cluster.ts';
import { waitUntil } from './support/wait.ts';

const NS = 'shop';
const CONFIG_NAME = 'breakwater-webhook';
const SECRET = 'breakwater-webhook-tls';
/** the chart's `sidecar:` values for this test; the chart renders them into --injection-config */
const SIDECAR = {
  image: { repository: 'breakwater', tag: 'e2e', pullPolicy: 'Never' },
  resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
  unreadyAfter: '5s',
  env: [{ name: 'BREAKWATER_WATCH_STALE_AFTER', value: '30s' }],
};

interface PodView {
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    initContainers?: Record<string, unknown>[];
    containers: { name: string; env?: { name: string; value?: string }[] }[];
  };
}

function webhookConfiguration(port: number): object {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: CONFIG_NAME },
    webhooks: [
      {
        name: 'inject.breakwater.dev',
        clientConfig: { url: `https://127.0.0.1:${port}/inject` },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        objectSelector: { matchLabels: { 'breakwater.dev/inject': 'enabled' } },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', CONTROLLER_NAMESPACE] }] },
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 5,
      },
    ],
  };
}

function pod(name: string, opts: { labelled?: boolean; env?: string; containerEnv?: { name: string; value: string }[] } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      labels: opts.labelled === false ? { app: name } : { app: name, 'breakwater.dev/inject': 'enabled' },
      ...(opts.env ? { annotations: { 'breakwater.dev/env': opts.env } } : {}),
    },
    spec: { containers: [{ name: 'app', image: 'app:e2e', ...(opts.containerEnv ? { env: opts.containerEnv } : {}) }] },
  };
}

/** The certificate a TLS server on 127.0.0.1:port presents (DER). */
function servedCertificate(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(raw);
    });
    socket.on('error', reject);
  });
}

describe('sidecar injection webhook', () => {
  let cp: ControlPlane;
  let controller: Controller;
  let second: Controller | undefined;
  let port: number;
  let secondPort: number;

  let args: (port: number) => string[];
  let injectionYaml: string;
  const secretData = async () => (JSON.parse(await kubectlOk(cp, ['get', 'secret', SECRET, '-n', CONTROLLER_NAMESPACE, '-o', 'json'])) as { metadata: { resourceVersion: string }; data: Record<string, string> });
  const servesSecretCert = async (p: number) => (await servedCertificate(p)).equals(new X509Certificate(Buffer.from((await secretData()).data['tls.crt']!, 'base64')).raw);
  const createPod = async (obj: object) => {
    const res = await cp.kubectl(['create', '-f', '-', '-o', 'json'], { input: JSON.stringify(obj) });
    if (res.code !== 0) throw new Error(`kubectl create failed: ${res.stderr}`);
    return { pod: JSON.parse(res.stdout) as PodView, stderr: res.stderr };
  };
  const caBundle = async () => (await cp.kubectl(['get', 'mutatingwebhookconfiguration', CONFIG_NAME, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout;
  const metric = async (series: string) => {
    const text = await (await fetch(`${controller.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    await setupCluster(cp, NS, []);
    port = await freePort();
    // created before the controller, with an empty caBundle: the controller fills it
    await applyJson(cp, [webhookConfiguration(port)]);
    // the injection config exactly as the chart renders it (the contract between the two)
    const chart = await renderChart((a, o) => cp.helm(a, o), { sidecar: SIDECAR }, { namespace: CONTROLLER_NAMESPACE, kubeVersion: cp.version });
    const configMap = chart.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${RELEASE}-injection`) as { data?: Record<string, string> } | undefined;
    injectionYaml = configMap?.data?.['injection.yaml'] ?? '';
    expect(injectionYaml, 'the chart renders an injection config').not.toBe('');
    const valuesFile = join(cp.dir, 'injection.yaml');
    writeFileSync(valuesFile, injectionYaml);
    args = (p: number) => ['--webhook-listen', `127.0.0.1:${p}`, '--webhook-extra-san', '127.0.0.1', '--webhook-recheck', '1s', '--shutdown-delay', '0s', '--injection-config', valuesFile];
    controller = await startController(cp, NS, { identity: 'replica-a', args: args(port), env: { BREAKWATER_LOG_LEVEL: 'debug' } });
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await second?.stop();
    await controller?.stop();
    await cp?.stop();
  }, 60_000);

  it('creates its CA and serving certificate in a Secret and fills the webhook caBundle with the CA', async () => {
    await waitUntil('the caBundle to be filled', async () => (await caBundle()) !== '', 30_000);
    const secret = JSON.parse(await kubectlOk(cp, ['get', 'secret', SECRET, '-n', CONTROLLER_NAMESPACE, '-o', 'json'])) as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(await caBundle()).toBe(secret.data['ca.crt']);
    const ca = new X509Certificate(Buffer.from(secret.data['ca.crt']!, 'base64'));
    const tls = new X509Certificate(Buffer.from(secret.data['tls.crt']!, 'base64'));
    expect(tls.verify(ca.publicKey)).toBe(true);
    expect(tls.subjectAltName).toContain('DNS:breakwater-webhook.breakwater-system.svc');
    expect(tls.subjectAltName).toContain('IP Address:127.0.0.1');
    await waitUntil('the controller to be ready', async () => (await fetch(`${controller.admin}/readyz`)).status === 200, 15_000);
  });

  it('injects a labelled pod with the native sidecar built from the values, and sets the annotated base URLs', async () => {
    await waitUntil('the caBundle to be filled', async () => (await caBundle()) !== '', 30_000);
    const { pod: created } = await createPod(pod('labelled', { env: 'OPENAI_BASE_URL=openai,ANTHROPIC_BASE_URL=claude' }));
    const expected = sidecarContainer(sidecarValues(parse(injectionYaml)));
    expect(created.spec.initContainers?.map((c) => c.name)).toEqual(['breakwater']);
    // the stored container is what sidecarContainer() renders (the API server adds defaults)
    expect(created.spec.initContainers?.[0]).toMatchObject(JSON.parse(JSON.stringify(expected)) as Record<string, unknown>);
    expect(created.spec.initContainers?.[0]).toMatchObject({
      restartPolicy: 'Always',
      image: 'breakwater:e2e',
      imagePullPolicy: 'Never',
      resources: SIDECAR.resources,
      env: [{ name: 'BREAKWATER_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }, ...SIDECAR.env],
      args: expect.arrayContaining(['proxy', '--kubernetes']),
      securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      startupProbe: { httpGet: { path: '/readyz', port: 7879 } },
    });
    expect(created.spec.containers[0]!.env).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' },
      { name: 'ANTHROPIC_BASE_URL', value: 'http://127.0.0.1:7878/claude' },
    ]);
    expect(await metric('breakwater_injections_total{result="injected"}')).toBeGreaterThanOrEqual(1);
  });

  it('leaves a pod without the label untouched', async () => {
    const { pod: created } = await createPod(pod('plain', { labelled: false, env: 'OPENAI_BASE_URL=openai' }));
    expect(created.spec.initContainers).toBeUndefined();
    expect(created.spec.containers[0]!.env).toBeUndefined();
  });

  it('keeps a base URL the app sets itself, and kubectl shows the admission warning', async () => {
    const { pod: created, stderr } = await createPod(pod('own-url', { env: 'OPENAI_BASE_URL=openai', containerEnv: [{ name: 'OPENAI_BASE_URL', value: 'https://example.test/v1' }] }));
    expect(created.spec.initContainers?.map((c) => c.name)).toEqual(['breakwater']);
    expect(created.spec.containers[0]!.env).toEqual([{ name: 'OPENAI_BASE_URL', value: 'https://example.test/v1' }]);
    expect(stderr).toMatch(/Warning: breakwater: container app sets OPENAI_BASE_URL itself; kept its value/);
  });

  it('a second replica serves the certificate from the Secret instead of making its own', async () => {
    const before = (await secretData()).metadata.resourceVersion;
    secondPort = await freePort();
    second = await startController(cp, NS, { name: 'controller-b', identity: 'replica-b', args: args(secondPort) });
    await waitUntil('replica-b to serve the Secret\'s certificate', () => servesSecretCert(secondPort), 15_000);
    expect(await servesSecretCert(port)).toBe(true);
    expect((await secretData()).metadata.resourceVersion).toBe(before);
  });

  it('recreates a deleted certificate Secret, serves the new certificate and updates the caBundle', async () => {
    const before = await caBundle();
    await kubectlOk(cp, ['delete', 'secret', SECRET, '-n', CONTROLLER_NAMESPACE]);
    await waitUntil('a new CA in the caBundle', async () => !['', before].includes(await caBundle()), 30_000);
    const secret = JSON.parse(await kubectlOk(cp, ['get', 'secret', SECRET, '-n', CONTROLLER_NAMESPACE, '-o', 'json'])) as { data: Record<string, string> };
    expect(await caBundle()).toBe(secret.data['ca.crt']);
    // the API server now trusts only the new CA: a pod is injected only if the webhook serves
    // the new certificate (the API server may take a moment to pick up the new caBundle)
    let injected = false;
    for (let i = 0; i < 20 && !injected; i++) {
      const { pod: created } = await createPod(pod(`after-rotation-${i}`));
      injected = created.spec.initContainers?.[0]?.name === 'breakwater';
      if (!injected) await new Promise((r) => setTimeout(r, 500));
    }
    expect(injected).toBe(true);
    // both replicas raced to recreate it: one wrote it, both serve the Secret's certificate
    await waitUntil('both replicas to serve the new certificate', async () => (await servesSecretCert(port)) && (await servesSecretCert(secondPort)), 15_000);
  });

  it('with the controllers stopped, failurePolicy Ignore still admits a labelled pod (without the sidecar)', async () => {
    await second?.stop();
    await controller.stop();
    // SIGTERM stopped each runnable in order, in time (no SIGKILL), and gave the Lease up
    for (const c of [controller, second!]) {
      const msgs = c.lines().map((l) => l.msg);
      expect(msgs.slice(msgs.indexOf('controller stopping'))).toEqual(expect.arrayContaining(['controller stopping', 'controller stopped']));
      expect(msgs.at(-1)).toBe('controller stopped');
    }
    expect(controller.lines().some((l) => l.msg === 'lease released')).toBe(true);
    const { pod: created } = await createPod(pod('no-controller'));
    expect(created.metadata.labels?.['breakwater.dev/inject']).toBe('enabled');
    expect(created.spec.initContainers).toBeUndefined();
  });
});
