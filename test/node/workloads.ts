// Workloads of the real-node chart tests (test/node/chart.test.ts), built as objects and read
// back: the chart rendered by `helm template`, one-pod Deployments, fake provider Deployments
// with their Services and what they recorded, and the pod fields the injection tests look at.
import { resolve } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { FakeStats } from '../../src/fake/server.ts';
import { getJson, helm, netnsFetch, nodeCluster, ok, restrictedSecurityContext, service, waitUntil, type Pod } from './harness.ts';

const CHART_DIR = resolve(import.meta.dirname, '..', '..', 'charts', 'breakwater');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  restartPolicy?: string;
  args?: string[];
  env?: EnvVar[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: Record<string, unknown>;
}

export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
}

export const specOf = (pod: Pod): PodSpec => pod.spec as unknown as PodSpec;
export const sidecarOf = (pod: Pod): Container | undefined => specOf(pod).initContainers?.find((c) => c.name === 'breakwater');
export const hasSidecar = (pod: Pod): boolean => sidecarOf(pod) !== undefined;

/** The image of cluster.json ("localhost/breakwater:dev") as the chart's repository + tag. */
export function imageParts(image: string): { repository: string; tag: string } {
  const colon = image.lastIndexOf(':');
  return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
}

/** `helm template --include-crds` of the chart, as objects. */
export async function renderChart(release: string, releaseNs: string, values: object): Promise<K8sObject[]> {
  const out = ok('helm template', await helm(['template', release, CHART_DIR, '--namespace', releaseNs, '--include-crds', '--values', '-'], { input: stringify(values) }));
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null && typeof o === 'object' && 'kind' in o);
}

/** A Deployment of one pod (labels on the pod template). */
export function deployment(name: string, labels: Record<string, string>, pod: { annotations?: Record<string, string>; labels?: Record<string, string>; spec: object }): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels: { ...labels, ...pod.labels }, annotations: pod.annotations ?? {} }, spec: pod.spec },
    },
  };
}

/** A fake provider Deployment (`breakwater fake`, its name in /_fake/stats) and its Service on 80. */
export function fakeProvider(name: string): object[] {
  return [
    deployment(name, { app: name }, {
      spec: {
        terminationGracePeriodSeconds: 2,
        containers: [{
          name: 'fake',
          image: nodeCluster()!.images.breakwater,
          imagePullPolicy: 'Never',
          args: ['fake', '--listen', '0.0.0.0:8080', '--name', name],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          securityContext: restrictedSecurityContext,
        }],
      },
    }),
    service(name, { app: name }, 80, 8080),
  ];
}

/** A pod of the Deployment selected by `app=<name>` (the newest, not being deleted). */
export async function podOf(ns: string, app: string): Promise<Pod | undefined> {
  const list = await getJson<{ items: Pod[] }>(ns, 'pods', '-l', `app=${app}`);
  return list.items.filter((p) => !p.metadata.deletionTimestamp).at(-1);
}

export async function waitForDeploymentPod(ns: string, app: string, check: (p: Pod) => boolean, timeoutMs = 60_000): Promise<Pod> {
  let found: Pod | undefined;
  await waitUntil(`a pod of ${ns}/${app}`, async () => {
    found = await podOf(ns, app);
    return found !== undefined && check(found);
  }, timeoutMs, 250);
  return found!;
}

export const fakeStats = async (ip: string): Promise<FakeStats> => JSON.parse((await netnsFetch(`http://${ip}/_fake/stats`)).body) as FakeStats;

/** The Authorization headers of the provider calls (not the control API) a fake has recorded. */
export const authorizations = (stats: FakeStats): string[] => stats.recent.filter((r) => r.path.includes('chat/completions')).map((r) => String(r.headers['authorization'] ?? ''));
