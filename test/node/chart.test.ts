// Issue 9, tests 1, 2, 4 and 6 on the real node: the chart as a user installs it. `helm template`
// (test values: the image built by hack/image.sh with imagePullPolicy Never, 2 controller
// replicas, one app namespace with its ServiceAccount and Secret) applied server-side; then the
// controller's pods, its Lease and the caBundle it patches in; a labelled Deployment that gets the
// native sidecar from the webhook and calls the fake provider through it with the openai SDK; live
// config changes (`kubectl patch llmu`, a rotated Secret) reaching the running sidecar; and what
// the webhook must leave alone (unlabelled pods, the chart's namespace, no controller at all).
//
// One install is shared by the file's tests, which run in order (the last one scales the
// controller to 0). The API server reaches the webhook the way a real cluster's does: through the
// Service's ClusterIP, which it looks up itself (no cluster DNS needed; without
// --enable-aggregator-routing it never dials endpoints directly: its log shows `dial tcp
// <ClusterIP>:443`). kube-apiserver runs in the cluster's network namespace, where a route sends
// the Service range to the bridge and kube-proxy's nat OUTPUT rules DNAT (and masquerade) locally
// originated packets to a controller pod, as for any process on a node. kube-proxy programs the
// endpoints a moment after the pods turn Ready, so the first test waits for a server-side dry run
// of a labelled pod to come back injected before the others create pods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  applyYaml,
  createNamespace,
  deleteNamespace,
  getJson,
  kubectl,
  kubectlOk,
  netnsFetch,
  nodeCluster,
  ok,
  podJsonLogs,
  podReady,
  restrictedSecurityContext,
  run,
  serviceIP,
  waitUntil,
  type Pod,
} from './harness.ts';
import {
  authorizations,
  deployment,
  fakeProvider,
  fakeStats,
  hasSidecar,
  imageParts,
  podOf,
  renderChart,
  sidecarOf,
  specOf,
  waitForDeploymentPod,
  type Condition,
  type K8sObject,
} from './workloads.ts';

const node = nodeCluster();
const RELEASE = 'breakwater';
const CONTROLLER = `${RELEASE}-controller`;
const WEBHOOK = `${RELEASE}-webhook`;
const CERT_SECRET = `${RELEASE}-webhook-tls`;
const INJECT_LABEL = { 'breakwater.dev/inject': 'enabled' } as const;

/** The test values: the built image (never pulled), 2 replicas, one app namespace. */
function testValues(appNs: string): object {
  const image = { ...imageParts(node!.images.breakwater), pullPolicy: 'Never' };
  return {
    image,
    controller: { replicas: 2, logLevel: 'info' },
    sidecar: { image, unreadyAfter: '10s', drain: '5s' },
    appNamespaces: [{ name: appNs, serviceAccounts: ['default'], secrets: ['openai'] }],
  };
}

describe.skipIf(!node)('the Helm chart on a real node: controller, injection, live config', () => {
  let releaseNs = '';
  let appNs = '';
  let rendered: K8sObject[] = [];
  let fakeA = '';
  let fakeB = '';
  let appliedAt = 0;

  beforeAll(async () => {
    releaseNs = await createNamespace('bw-system');
    appNs = await createNamespace('bw-app');
    rendered = await renderChart(RELEASE, releaseNs, testValues(appNs));
    // The CRD first (the rest does not depend on it, but the LLMUpstreams below do).
    const crds = rendered.filter((o) => o.kind === 'CustomResourceDefinition');
    await applyYaml(crds);
    for (const crd of crds) await kubectlOk(['wait', '--for=condition=Established', `crd/${crd.metadata.name}`, '--timeout=30s'], { timeoutMs: 35_000 });
    // Every namespaced object of the chart names its namespace (the release's or an app's).
    await applyYaml(rendered.filter((o) => o.kind !== 'CustomResourceDefinition'));
    appliedAt = Date.now();
    // The providers and the app's Secret meanwhile.
    await applyYaml([
      ...fakeProvider('fake-a'),
      ...fakeProvider('fake-b'),
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai' }, type: 'Opaque', stringData: { apiKey: 'sk-first' } },
    ], appNs);
    [fakeA, fakeB] = [await serviceIP(appNs, 'fake-a'), await serviceIP(appNs, 'fake-b')];
  }, 120_000);

  afterAll(async () => {
    // Cluster-scoped objects first (the webhook configuration above all), then the namespaces.
    // The CRD last: deleting it deletes every LLMUpstream, and the next install must not find it terminating.
    const clusterScoped = rendered.filter((o) => !o.metadata.namespace && ['MutatingWebhookConfiguration', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
    for (const o of clusterScoped) await kubectl(['delete', o.kind.toLowerCase(), o.metadata.name, '--ignore-not-found']);
    await Promise.all([appNs, releaseNs].filter((n) => n !== '').map((n) => deleteNamespace(n)));
    for (const o of rendered.filter((r) => r.kind === 'CustomResourceDefinition')) {
      await kubectl(['delete', 'crd', o.metadata.name, '--ignore-not-found', '--timeout=60s'], { timeoutMs: 65_000 });
    }
  }, 120_000);

  it('helm template applied server-side: the controller pods run the built image and become Ready, one holds the Lease, the controller fills the caBundle and the API server reaches the webhook through its Service', async () => {
    // The chart renders no caBundle: whatever is there later, the controller wrote.
    const renderedWebhook = rendered.find((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as { webhooks: Array<{ clientConfig: { caBundle?: string } }> };
    expect(renderedWebhook.webhooks[0]!.clientConfig.caBundle).toBeUndefined();

    ok('rollout status', await kubectl(['-n', releaseNs, 'rollout', 'status', `deployment/${CONTROLLER}`, '--timeout=90s'], { timeoutMs: 95_000 }));
    const readyAfterMs = Date.now() - appliedAt;
    const pods = (await getJson<{ items: Pod[] }>(releaseNs, 'pods', '-l', 'app.kubernetes.io/component=controller')).items.filter((p) => !p.metadata.deletionTimestamp);
    expect(pods).toHaveLength(2);

    // The image containerd imported from build/breakwater.oci.tar (by its config or manifest digest).
    const c = node!;
    const listed = ok('ctr images ls', await run('ctr', ['--address', c.containerdSocket, '-n', 'k8s.io', 'images', 'ls', `name==${c.images.breakwater}`]));
    const manifestDigest = /sha256:[0-9a-f]{64}/.exec(listed)?.[0];
    expect(manifestDigest, listed).toBeDefined();
    const manifest = JSON.parse(ok('ctr content get', await run('ctr', ['--address', c.containerdSocket, '-n', 'k8s.io', 'content', 'get', manifestDigest!]))) as { config: { digest: string } };
    for (const pod of pods) {
      expect(podReady(pod), pod.metadata.name).toBe(true);
      const status = pod.status.containerStatuses?.find((s) => s.name === 'controller') as { image?: string; imageID?: string; ready: boolean; restartCount: number } | undefined;
      expect(specOf(pod).containers[0]).toMatchObject({ image: c.images.breakwater, imagePullPolicy: 'Never' });
      expect(status?.ready).toBe(true);
      expect([manifest.config.digest, manifestDigest].some((d) => status?.imageID?.endsWith(d!)), `imageID ${status?.imageID}`).toBe(true);
    }

    // Exactly one replica holds the Lease (the identity is the pod's hostname + a random suffix).
    let holder = '';
    await waitUntil(`Lease ${CONTROLLER} held`, async () => {
      const lease = await getJson<{ spec: { holderIdentity?: string } }>(releaseNs, 'lease', CONTROLLER);
      holder = lease.spec.holderIdentity ?? '';
      return holder !== '';
    }, 30_000);
    expect(pods.filter((p) => holder.startsWith(`${p.metadata.name}_`)), `holder ${holder}`).toHaveLength(1);

    // The controller's own CA (in the Secret it created) is the webhook's caBundle.
    const secret = await getJson<{ data: Record<string, string> }>(releaseNs, 'secret', CERT_SECRET);
    expect(secret.data['ca.crt']).toBeTruthy();
    await waitUntil('caBundle filled', async () => {
      const mwc = await getJson<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(undefined, 'mutatingwebhookconfiguration', WEBHOOK);
      return mwc.webhooks.every((w) => w.clientConfig.caBundle === secret.data['ca.crt']);
    }, 30_000);
    const caBundleAfterMs = Date.now() - appliedAt;

    // The API server calls the webhook through the Service (ClusterIP, kube-proxy's rules): a
    // server-side dry run of a labelled pod comes back injected once kube-proxy has programmed
    // the controller pods' endpoints, which can lag their Ready condition by a few seconds.
    const probePod = stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'dry-run', labels: INJECT_LABEL },
      spec: { containers: [{ name: 'main', image: c.images.breakwater, imagePullPolicy: 'Never' }] },
    });
    await waitUntil('a server-side dry run of a labelled pod comes back injected', async () => {
      const out = await kubectlOk(['-n', appNs, 'create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: probePod });
      return hasSidecar(JSON.parse(out) as Pod);
    }, 30_000, 500);
    console.log(`[chart] after the apply: 2 controller replicas Ready ${readyAfterMs} ms, caBundle filled ${caBundleAfterMs} ms, webhook answering through its Service ${Date.now() - appliedAt} ms`);
  }, 150_000);

  it('a Deployment labelled for injection gets the native sidecar, its openai SDK calls succeed through it, and kubectl get llmu shows Accepted=True', async () => {
    await applyYaml([
      {
        apiVersion: 'breakwater.dev/v1alpha1',
        kind: 'LLMUpstream',
        metadata: { name: 'openai' },
        spec: {
          // fake-a now; the live-config test adds fake-b ahead of it
          endpoints: [{ name: 'fake-a', url: `http://${fakeA}/v1`, insecure: true, priority: 1, auth: { secretRef: { name: 'openai', key: 'apiKey' } } }],
          retry: { maxAttempts: 2, backoff: { initial: '50ms', max: '200ms', jitter: 'full' } },
        },
      },
      deployment('app', { app: 'app' }, {
        labels: INJECT_LABEL,
        annotations: { 'breakwater.dev/env': 'OPENAI_BASE_URL=openai' },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{
            name: 'app',
            image: node!.images.testapp,
            imagePullPolicy: 'Never',
            env: [{ name: 'MODE', value: 'loop' }, { name: 'INTERVAL_MS', value: '300' }],
            securityContext: restrictedSecurityContext,
          }],
        },
      }),
    ], appNs);
    const deployedAt = Date.now();

    const pod = await waitForDeploymentPod(appNs, 'app', podReady, 90_000);
    console.log(`[chart] injected pod Ready ${Date.now() - deployedAt} ms after the Deployment was applied`);
    // The spec the webhook wrote: a native sidecar first, probes on the admin port, locked down.
    const spec = specOf(pod);
    expect(spec.initContainers?.[0]?.name).toBe('breakwater');
    const sidecar = sidecarOf(pod)!;
    expect(sidecar).toMatchObject({ image: node!.images.breakwater, imagePullPolicy: 'Never', restartPolicy: 'Always' });
    expect(sidecar.args?.slice(0, 2)).toEqual(['proxy', '--kubernetes']);
    expect(sidecar.args).toEqual(expect.arrayContaining(['--listen', '127.0.0.1:7878', '--drain', '5s']));
    expect(sidecar.startupProbe?.httpGet).toEqual({ path: '/readyz', port: 7879, scheme: 'HTTP' });
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 7879, scheme: 'HTTP' });
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 7879, scheme: 'HTTP' });
    expect(sidecar.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(sidecar.env).toContainEqual({ name: 'BREAKWATER_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } });
    expect(spec.containers[0]?.env).toContainEqual({ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' });
    const sidecarStatus = pod.status.initContainerStatuses?.find((s) => s.name === 'breakwater');
    expect(sidecarStatus?.ready).toBe(true);
    expect(sidecarStatus?.state?.running).toBeDefined();

    // The app's SDK calls go through the sidecar to fake-a, with the key from the Secret.
    await waitUntil('successful calls in the app log', async () => (await podJsonLogs(appNs, pod.metadata.name, 'app')).filter((l) => l['event'] === 'call' && l['ok'] === true).length >= 3, 30_000, 500);
    const auth = authorizations(await fakeStats(fakeA));
    expect(auth.length).toBeGreaterThan(0);
    expect(new Set(auth)).toEqual(new Set(['Bearer sk-first']));

    // The controller (the Lease holder) writes the status that kubectl prints.
    await waitUntil('LLMUpstream openai Accepted=True', async () => {
      const u = await getJson<{ status?: { conditions?: Condition[] } }>(appNs, 'llmu', 'openai');
      return u.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True') ?? false;
    }, 30_000);
    // The table as kubectl prints it; columns are aligned under their headers (an empty cell is blank).
    const table = await kubectlOk(['-n', appNs, 'get', 'llmu']);
    const [header, ...rows] = table.trimEnd().split('\n');
    const at = header!.indexOf('ACCEPTED');
    const row = rows.find((r) => r.startsWith('openai '));
    expect(at, table).toBeGreaterThan(0);
    expect(row?.slice(at).split(/\s+/)[0], table).toBe('True');
  }, 150_000);

  it('kubectl patch llmu adding an endpoint and a rotated Secret reach the running sidecar: the next calls go to the new endpoint with the new key, no restart', async () => {
    const before = (await podOf(appNs, 'app'))!;
    await netnsFetch(`http://${fakeB}/_fake/stats/reset`, { method: 'POST' });
    // A new endpoint ahead of fake-a (lower priority first), and a new key.
    await kubectlOk(['-n', appNs, 'patch', 'llmu', 'openai', '--type', 'json', '-p', JSON.stringify([
      { op: 'add', path: '/spec/endpoints/-', value: { name: 'fake-b', url: `http://${fakeB}/v1`, insecure: true, priority: 0, auth: { secretRef: { name: 'openai', key: 'apiKey' } } } },
    ])]);
    await kubectlOk(['-n', appNs, 'patch', 'secret', 'openai', '--type', 'merge', '-p', JSON.stringify({ stringData: { apiKey: 'sk-second' } })]);
    const patchedAt = Date.now();

    await waitUntil('calls reaching fake-b with the rotated key', async () => authorizations(await fakeStats(fakeB)).includes('Bearer sk-second'), 30_000, 250);
    console.log(`[chart] the first call at the new endpoint with the new key ${Date.now() - patchedAt} ms after the patches (poll 250 ms)`);
    // Once the new key is in, every later call uses it (the first ones may predate the rotation).
    await netnsFetch(`http://${fakeB}/_fake/stats/reset`, { method: 'POST' });
    await waitUntil('three more calls at fake-b', async () => authorizations(await fakeStats(fakeB)).length >= 3, 20_000, 500);
    expect(new Set(authorizations(await fakeStats(fakeB)))).toEqual(new Set(['Bearer sk-second']));

    // The same pod and sidecar process: nothing was restarted.
    const after = (await podOf(appNs, 'app'))!;
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status.initContainerStatuses?.find((s) => s.name === 'breakwater')?.restartCount).toBe(0);
    expect(after.status.containerStatuses?.find((s) => s.name === 'app')?.restartCount).toBe(0);
    const calls = (await podJsonLogs(appNs, after.metadata.name, 'app')).filter((l) => l['event'] === 'call');
    expect(calls.slice(-3).every((l) => l['ok'] === true), JSON.stringify(calls.slice(-3))).toBe(true);
    // The controller saw the new generation too.
    await waitUntil('status endpoints 2', async () => (await getJson<{ status?: { endpoints?: number } }>(appNs, 'llmu', 'openai')).status?.endpoints === 2, 30_000);
  }, 90_000);

  it('leaves a pod without the label and a labelled pod in the chart\'s namespace untouched', async () => {
    const plain = (name: string, labels: Record<string, string>): object => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: node!.images.breakwater, imagePullPolicy: 'Never', args: ['fake', '--listen', '127.0.0.1:8080'], securityContext: restrictedSecurityContext }],
      },
    });
    // The control: the same labelled pod in the app namespace is injected (a server-side dry run).
    const labelled = stringify(plain('in-chart-namespace', { app: 'in-chart-namespace', ...INJECT_LABEL }));
    expect(hasSidecar(JSON.parse(await kubectlOk(['-n', appNs, 'create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: labelled })) as Pod)).toBe(true);
    await applyYaml([plain('unlabelled', { app: 'unlabelled' })], appNs);
    await applyYaml(labelled, releaseNs);
    for (const [ns, name] of [[appNs, 'unlabelled'], [releaseNs, 'in-chart-namespace']] as const) {
      const pod = await getJson<Pod>(ns, 'pod', name);
      expect(specOf(pod).initContainers ?? [], `${ns}/${name}`).toEqual([]);
      expect(specOf(pod).containers.map((c) => c.name)).toEqual(['main']);
      expect(specOf(pod).containers[0]?.env ?? []).toEqual([]);
    }
    await kubectl(['-n', releaseNs, 'delete', 'pod', 'in-chart-namespace', '--wait=false']);
  }, 60_000);

  it('with the controller scaled to 0 a labelled pod is still created, without the sidecar (failurePolicy Ignore)', async () => {
    await kubectlOk(['-n', releaseNs, 'scale', `deployment/${CONTROLLER}`, '--replicas=0']);
    await waitUntil('no controller pod left and no webhook endpoint', async () => {
      const pods = (await getJson<{ items: Pod[] }>(releaseNs, 'pods', '-l', 'app.kubernetes.io/component=controller')).items;
      const slices = await getJson<{ items: Array<{ endpoints?: unknown[] }> }>(releaseNs, 'endpointslices', '-l', `kubernetes.io/service-name=${WEBHOOK}`);
      return pods.length === 0 && slices.items.every((s) => (s.endpoints ?? []).length === 0);
    }, 60_000, 500);

    const started = Date.now();
    await applyYaml([deployment('orphan', { app: 'orphan' }, {
      labels: INJECT_LABEL,
      annotations: { 'breakwater.dev/env': 'OPENAI_BASE_URL=openai' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: node!.images.breakwater, imagePullPolicy: 'Never', args: ['fake', '--listen', '127.0.0.1:8080'], securityContext: restrictedSecurityContext }],
      },
    })], appNs);
    const pod = await waitForDeploymentPod(appNs, 'orphan', podReady, 60_000);
    const createdAfterMs = Date.now() - started;
    console.log(`[chart] with no controller, the labelled pod was Ready ${createdAfterMs} ms after its Deployment was applied`);
    expect(hasSidecar(pod)).toBe(false);
    expect(specOf(pod).initContainers ?? []).toEqual([]);
    expect(specOf(pod).containers[0]?.env ?? []).toEqual([]);
    // A generous bound: the API server gives up on the webhook within timeoutSeconds (5 s).
    expect(createdAfterMs).toBeLessThan(45_000);
  }, 120_000);
});
