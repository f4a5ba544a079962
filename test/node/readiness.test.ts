// Issue 9, test 3: readiness through the kubelet. A pod with Breakwater as a native sidecar
// (plain pod spec, config from a ConfigMap) and an app calling it with the openai SDK; the
// upstream is `required` and both its endpoints are Services in front of one fake provider.
// When every endpoint fails, the kubelet's readiness probe takes the pod out of its Service
// within --unready-after + one probe period; when the provider heals, it is put back. Asserted
// through the API server (pod condition, EndpointSlice), never through the sidecar's port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyYaml,
  breakwaterSidecar,
  createNamespace,
  deleteNamespace,
  endpointReady,
  fakeProviderPod,
  getJson,
  netnsFetch,
  nodeCluster,
  podCondition,
  podJsonLogs,
  podReady,
  restrictedSecurityContext,
  service,
  serviceIP,
  waitForPod,
  waitUntil,
  type Pod,
} from './harness.ts';

const node = nodeCluster();
const UNREADY_AFTER_MS = 2_000;
const PROBE_PERIOD_S = 2;
const OPEN_DURATION_S = 10;
/** status sync (<0.5 s), our 250 ms poll, kubectl's own latency on a loaded 2-core machine */
const SLACK_MS = 4_000;

describe.skipIf(!node)('readiness through the kubelet (real node)', () => {
  let ns = '';
  let fakeURL = '';

  beforeAll(async () => {
    ns = await createNamespace('ready');
    await applyYaml([
      fakeProviderPod('fake', { app: 'fake' }),
      service('fake-a', { app: 'fake' }, 80, 8080),
      service('fake-b', { app: 'fake' }, 80, 8080),
      service('app', { app: 'app' }, 80, 8080),
    ], ns);
    const [a, b] = [await serviceIP(ns, 'fake-a'), await serviceIP(ns, 'fake-b')];
    fakeURL = `http://${a}`;
    const upstream = {
      apiVersion: 'breakwater.dev/v1alpha1',
      kind: 'LLMUpstream',
      metadata: { name: 'openai' },
      spec: {
        required: true,
        endpoints: [
          { name: 'fake-a', url: `http://${a}/v1`, insecure: true },
          { name: 'fake-b', url: `http://${b}/v1`, insecure: true },
        ],
        breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, rollingWindow: '10s', openDuration: `${OPEN_DURATION_S}s`, halfOpenRamp: [1] },
        retry: { maxAttempts: 2, backoff: { initial: '50ms', max: '200ms', jitter: 'full' } },
      },
    };
    await applyYaml([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'breakwater' }, data: { 'upstreams.yaml': JSON.stringify(upstream) } },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app', labels: { app: 'app' } },
        spec: {
          terminationGracePeriodSeconds: 10,
          automountServiceAccountToken: false,
          initContainers: [breakwaterSidecar(
            ['--config', '/etc/breakwater/upstreams.yaml', '--unready-after', `${UNREADY_AFTER_MS}ms`],
            {
              readinessProbe: { httpGet: { path: '/readyz', port: 7879 }, periodSeconds: PROBE_PERIOD_S, failureThreshold: 1 },
              volumeMounts: [{ name: 'config', mountPath: '/etc/breakwater', readOnly: true }],
            },
          )],
          containers: [{
            name: 'app',
            image: node!.images.testapp,
            imagePullPolicy: 'Never',
            env: [
              { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' },
              { name: 'MODE', value: 'loop' },
              { name: 'INTERVAL_MS', value: '200' },
            ],
            securityContext: restrictedSecurityContext,
          }],
          volumes: [{ name: 'config', configMap: { name: 'breakwater' } }],
        },
      },
    ], ns);
    await waitForPod(ns, 'fake', podReady);
    await waitForPod(ns, 'app', podReady);
    await waitUntil('the app pod\'s endpoint ready in Service app', async () => (await endpointReady(ns, 'app', 'app')) === true, 30_000);
  }, 180_000);

  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  it('takes the pod out of its Service when every endpoint of a required upstream fails, and puts it back when the provider heals', async () => {
    // The app's calls go through the sidecar to the fake provider.
    await waitUntil('a successful call in the app log', async () => (await podJsonLogs(ns, 'app', 'app')).some((l) => l['event'] === 'call' && l['ok'] === true), 20_000);

    // Every request to the provider fails from now on.
    const faultAt = Date.now();
    expect((await netnsFetch(`${fakeURL}/_fake/faults`, { method: 'POST', body: JSON.stringify({ fault: '503' }), headers: { 'content-type': 'application/json' } })).status).toBe(200);

    let podUnreadyAt = 0;
    let sliceUnreadyAt = 0;
    await waitUntil('pod Ready=False and its EndpointSlice endpoint ready=false', async () => {
      const pod = await getJson<Pod>(ns, 'pod', 'app');
      if (!podUnreadyAt && podCondition(pod, 'Ready') === 'False') podUnreadyAt = Date.now();
      if (!sliceUnreadyAt && (await endpointReady(ns, 'app', 'app')) === false) sliceUnreadyAt = Date.now();
      return podUnreadyAt > 0 && sliceUnreadyAt > 0;
    }, 40_000, 250);

    // When did the last endpoint's breaker open? (The sidecar's log, its own clock = ours.)
    const sidecar = await podJsonLogs(ns, 'app', 'breakwater');
    const opened = new Map<string, number>();
    for (const l of sidecar) {
      const t = Date.parse(String(l['time']));
      if (l['msg'] === 'breaker opened' && t >= faultAt - 1_000 && !opened.has(String(l['endpoint']))) opened.set(String(l['endpoint']), t);
    }
    expect([...opened.keys()].sort(), `breaker opened lines: ${JSON.stringify(sidecar.filter((l) => String(l['msg']).startsWith('breaker')))}`).toEqual(['fake-a', 'fake-b']);
    const allOpenAt = Math.max(...opened.values());
    const unreadyLine = sidecar.find((l) => l['msg'] === 'readiness: unready' && Date.parse(String(l['time'])) >= allOpenAt);
    expect(unreadyLine, 'the sidecar logs readiness: unready').toBeDefined();
    // Not before --unready-after (the verdict is evaluated every 250 ms)...
    expect(Date.parse(String(unreadyLine!['time'])) - allOpenAt).toBeGreaterThanOrEqual(UNREADY_AFTER_MS - 300);
    // ...and the kubelet and the EndpointSlice controller follow within one probe period.
    const bound = UNREADY_AFTER_MS + PROBE_PERIOD_S * 1000 + SLACK_MS;
    expect(podUnreadyAt - allOpenAt, `pod Ready=False ${podUnreadyAt - allOpenAt} ms after the last breaker opened`).toBeLessThanOrEqual(bound);
    expect(sliceUnreadyAt - allOpenAt, `EndpointSlice ready=false ${sliceUnreadyAt - allOpenAt} ms after the last breaker opened`).toBeLessThanOrEqual(bound + 1_000);

    // The provider heals: the breakers go half-open after openDuration, the pod is ready again
    // as soon as one endpoint is half-open, and the kubelet sees it within one probe period.
    const healAt = Date.now();
    expect((await netnsFetch(`${fakeURL}/_fake/faults`, { method: 'DELETE' })).status).toBe(200);
    let podReadyAt = 0;
    let sliceReadyAt = 0;
    await waitUntil('pod Ready=True and its EndpointSlice endpoint ready=true', async () => {
      const pod = await getJson<Pod>(ns, 'pod', 'app');
      if (!podReadyAt && podReady(pod)) podReadyAt = Date.now();
      if (!sliceReadyAt && (await endpointReady(ns, 'app', 'app')) === true) sliceReadyAt = Date.now();
      return podReadyAt > 0 && sliceReadyAt > 0;
    }, 40_000, 250);
    const halfOpenAt = Math.max(healAt, allOpenAt + OPEN_DURATION_S * 1000);
    const backBound = PROBE_PERIOD_S * 1000 + SLACK_MS + 1_000;
    expect(podReadyAt - halfOpenAt, `pod Ready=True ${podReadyAt - halfOpenAt} ms after the breakers could go half-open`).toBeLessThanOrEqual(backBound);
    expect(sliceReadyAt - halfOpenAt).toBeLessThanOrEqual(backBound + 1_000);

    console.log(`[readiness] after the last breaker opened: sidecar unready +${Date.parse(String(unreadyLine!['time'])) - allOpenAt} ms, ` +
      `pod Ready=False +${podUnreadyAt - allOpenAt} ms, EndpointSlice ready=false +${sliceUnreadyAt - allOpenAt} ms; ` +
      `after half-open was possible: pod Ready=True +${podReadyAt - halfOpenAt} ms, EndpointSlice ready=true +${sliceReadyAt - halfOpenAt} ms`);

    // Traffic flows again through the sidecar.
    await waitUntil('a successful call after healing', async () => (await podJsonLogs(ns, 'app', 'app')).some((l) => l['event'] === 'call' && l['ok'] === true && Date.parse(String(l['at'])) > healAt), 20_000);
    // The sidecar was never restarted (liveness is not tied to providers).
    const final = await getJson<Pod>(ns, 'pod', 'app');
    expect(final.status.initContainerStatuses?.find((c) => c.name === 'breakwater')?.restartCount).toBe(0);
  }, 120_000);
});
