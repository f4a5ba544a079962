// Issue 9, test 5: graceful stop in a real pod. The app streams 5 s chat completions through
// Breakwater (native sidecar, plain pod spec); the pod is deleted mid-stream. The kubelet stops
// the app first (it finishes its stream, then exits), and only then the sidecar, which drains
// and exits 0. The order is read from the containers' own logs, the exit codes from a watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyYaml,
  breakwaterSidecar,
  createNamespace,
  deleteNamespace,
  fakeProviderPod,
  kubectl,
  kubectlOk,
  kubectlStream,
  nodeCluster,
  podReady,
  restrictedSecurityContext,
  service,
  serviceIP,
  waitForPod,
  waitUntil,
  watchObject,
  type Pod,
} from './harness.ts';

const node = nodeCluster();
const STREAM_EVENTS = 10;
const STREAM_DELAY_MS = 500;

type Line = Record<string, unknown>;
/** `kubectl logs --timestamps` lines → the JSON each container wrote (other lines dropped). */
function parse(lines: readonly string[]): Line[] {
  const out: Line[] = [];
  for (const l of lines) {
    try {
      out.push(JSON.parse(l.slice(l.indexOf(' ') + 1)) as Line);
    } catch {
      // not JSON
    }
  }
  return out;
}

describe.skipIf(!node)('graceful stop (real node)', () => {
  let ns = '';

  beforeAll(async () => {
    ns = await createNamespace('stop');
    await applyYaml([fakeProviderPod('fake', { app: 'fake' }), service('fake', { app: 'fake' }, 80, 8080)], ns);
    const ip = await serviceIP(ns, 'fake');
    const upstream = {
      apiVersion: 'breakwater.dev/v1alpha1',
      kind: 'LLMUpstream',
      metadata: { name: 'openai' },
      spec: { endpoints: [{ name: 'fake', url: `http://${ip}/v1`, insecure: true }] },
    };
    await applyYaml([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'breakwater' }, data: { 'upstreams.yaml': JSON.stringify(upstream) } },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app', labels: { app: 'app' } },
        spec: {
          terminationGracePeriodSeconds: 30,
          automountServiceAccountToken: false,
          initContainers: [breakwaterSidecar(['--config', '/etc/breakwater/upstreams.yaml', '--drain', '20s'], {
            volumeMounts: [{ name: 'config', mountPath: '/etc/breakwater', readOnly: true }],
          })],
          containers: [{
            name: 'app',
            image: node!.images.testapp,
            imagePullPolicy: 'Never',
            env: [
              { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' },
              { name: 'MODE', value: 'stream' },
              { name: 'STREAM_EVENTS', value: String(STREAM_EVENTS) },
              { name: 'STREAM_DELAY_MS', value: String(STREAM_DELAY_MS) },
            ],
            securityContext: restrictedSecurityContext,
          }],
          volumes: [{ name: 'config', configMap: { name: 'breakwater' } }],
        },
      },
    ], ns);
    await waitForPod(ns, 'fake', podReady);
    await waitForPod(ns, 'app', podReady);
  }, 180_000);

  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  it('deleting the pod mid-stream: the stream completes through the sidecar, the app stops before the sidecar, the sidecar exits 0', async () => {
    const appLog = kubectlStream(['-n', ns, 'logs', '-f', 'app', '-c', 'app', '--timestamps']);
    const sidecarLog = kubectlStream(['-n', ns, 'logs', '-f', 'app', '-c', 'breakwater', '--timestamps']);
    const exits = watchObject<Pod>(ns, 'pod', 'app');
    try {
      // A stream that has been running for a second (and has ~4 s to go).
      let inFlight = 0;
      await waitUntil('a stream in flight for 1 s', () => {
        const events = parse(appLog.lines);
        const started = events.filter((e) => e['event'] === 'stream-start').at(-1);
        if (!started) return false;
        const n = Number(started['n']);
        if (events.some((e) => e['event'] === 'stream-end' && e['n'] === n)) return false;
        if (Date.now() - Date.parse(String(started['at'])) < 1_000) return false;
        inFlight = n;
        return true;
      }, 30_000, 100);

      const deletedAt = Date.now();
      await kubectlOk(['-n', ns, 'delete', 'pod', 'app', '--wait=false']);
      let logsEnded = false;
      void Promise.all([appLog.done, sidecarLog.done]).then(() => (logsEnded = true));
      await waitUntil('both containers\' logs to end', () => logsEnded, 45_000, 100);
      await waitUntil('pod app deleted', async () => (await kubectl(['-n', ns, 'get', 'pod', 'app'])).stderr.includes('NotFound'), 30_000, 250);
      const stoppedAfterMs = Date.now() - deletedAt;

      // The stream in flight at SIGTERM completed intact, through the sidecar.
      const app = parse(appLog.lines);
      const sigterm = app.findIndex((e) => e['event'] === 'sigterm');
      const end = app.findIndex((e) => e['event'] === 'stream-end' && e['n'] === inFlight);
      const exiting = app.findIndex((e) => e['event'] === 'exiting');
      expect(sigterm, JSON.stringify(app.slice(-6))).toBeGreaterThanOrEqual(0);
      expect(end, 'the stream ends after SIGTERM').toBeGreaterThan(sigterm);
      expect(app[end]).toMatchObject({ ok: true, finish: 'stop' });
      expect(Number(app[end]!['chunks'])).toBeGreaterThanOrEqual(STREAM_EVENTS);
      expect(Number(app[end]!['chars'])).toBeGreaterThan(0);
      expect(exiting).toBeGreaterThan(end);
      expect(app.filter((e) => e['event'] === 'stream-start').length, 'no new stream after SIGTERM').toBe(app.slice(0, sigterm).filter((e) => e['event'] === 'stream-start').length);

      // The app stopped before the sidecar was told to stop; the sidecar drained and exited.
      const sidecar = parse(sidecarLog.lines);
      const shutdown = sidecar.find((e) => String(e['msg']).startsWith('shutting down'));
      const drained = sidecar.find((e) => String(e['msg']).startsWith('drained'));
      expect(shutdown, JSON.stringify(sidecar.slice(-5))).toBeDefined();
      expect(drained, 'the sidecar logs drained; exiting').toBeDefined();
      expect(Date.parse(String(shutdown!['time']))).toBeGreaterThanOrEqual(Date.parse(String(app[exiting]!['at'])));
      // Exit codes as the kubelet reported them before the pod went away.
      const exitCodes = (): Record<string, number> => {
        const codes: Record<string, number> = {};
        for (const pod of exits.objects()) {
          for (const c of [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])]) {
            if (c.state?.terminated) codes[c.name] = c.state.terminated.exitCode;
          }
        }
        return codes;
      };
      await waitUntil('both exit codes in the watch', () => Object.keys(exitCodes()).length === 2, 10_000).catch(() => {});
      expect(exitCodes()).toEqual({ app: 0, breakwater: 0 });
      expect(stoppedAfterMs, 'the pod is gone well within its grace period').toBeLessThan(30_000);
    } finally {
      appLog.stop();
      sidecarLog.stop();
      exits.stop();
    }
  }, 120_000);
});
