// Helpers for the tests that run real pods on the one-node cluster of hack/node.sh. The
// cluster is started once per vitest run by test/node/global-setup.ts (the `node` project in
// vitest.config.ts) and shared by every test/node file; each file works in its own namespace.
//
//   const node = nodeCluster();                       // undefined: skipped (the reason is printed)
//   describe.skipIf(!node)('…', () => {
//     let ns: string;
//     beforeAll(async () => { ns = await createNamespace('ready'); });
//     afterAll(() => deleteNamespace(ns));
//     it('…', async () => { await applyYaml(docs, ns); await waitForPod(ns, 'app', podReady); });
//   });
//
// Everything that talks to the cluster runs inside its network namespace (`nsenter --net`):
// kubectl, and `netnsFetch` for Service and pod IPs (there is no route to them from outside).
import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { waitFor } from '../support/wait.ts';

export interface NodeClusterInfo {
  dir: string;
  /** /run/netns/<name> */
  netns: string;
  bin: string;
  kubeconfig: string;
  server: string;
  nodeName: string;
  nodeIP: string;
  podCIDR: string;
  serviceCIDR: string;
  containerdSocket: string;
  logs: string;
  images: { breakwater: string; testapp: string; pause: string };
}

export type ProvidedNode = { cluster: NodeClusterInfo } | { skip: string } | { error: string };

declare module 'vitest' {
  export interface ProvidedContext {
    node: ProvidedNode;
  }
}

/**
 * The shared cluster, or undefined when the node tests are skipped (not root). Throws when the
 * cluster should be there but did not come up, so every node test file fails with the reason
 * (the other projects' tests still run).
 */
export function nodeCluster(): NodeClusterInfo | undefined {
  const provided = inject('node');
  if ('error' in provided) throw new Error(`the real-node cluster did not come up: ${provided.error}`);
  return 'cluster' in provided ? provided.cluster : undefined;
}

function cluster(): NodeClusterInfo {
  const c = nodeCluster();
  if (!c) throw new Error('the real-node cluster is not running');
  return c;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  /** SIGKILL after this long (default 30 s) */
  timeoutMs?: number;
}

/** Runs a command to completion (never rejects on a non-zero exit; see `ok`). */
export function run(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${opts.timeoutMs ?? 30_000} ms)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The result's stdout, or an error naming the command and its stderr. */
export function ok(what: string, res: ExecResult): string {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`);
  return res.stdout;
}

/** Any command inside the cluster's network namespace (same mount namespace as everything else). */
export function nsExec(command: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return run('nsenter', [`--net=${cluster().netns}`, '--', command, ...args], opts);
}

/** kubectl as the cluster admin, inside the namespace. */
export function kubectl(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  const c = cluster();
  return nsExec(`${c.bin}/kubectl`, [`--kubeconfig=${c.kubeconfig}`, ...args], opts);
}

/** helm as the cluster admin, inside the namespace (its caches in the cluster's work dir). */
export function helm(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  const c = cluster();
  return run('nsenter', [`--net=${c.netns}`, '--', 'env', `KUBECONFIG=${c.kubeconfig}`, `HELM_CACHE_HOME=${c.dir}/helm/cache`,
    `HELM_CONFIG_HOME=${c.dir}/helm/config`, `HELM_DATA_HOME=${c.dir}/helm/data`, `${c.bin}/helm`, ...args], { timeoutMs: 120_000, ...opts });
}

/** kubectl that must succeed: its stdout. */
export async function kubectlOk(args: readonly string[], opts?: ExecOptions): Promise<string> {
  return ok(`kubectl ${args.join(' ')}`, await kubectl(args, opts));
}

/** A resource as JSON (`kubectl get -o json`). */
export async function getJson<T>(namespace: string | undefined, ...what: string[]): Promise<T> {
  const nsArgs = namespace ? ['-n', namespace] : [];
  return JSON.parse(await kubectlOk([...nsArgs, 'get', ...what, '-o', 'json'])) as T;
}

/** `kubectl apply` (server-side) of YAML text or objects, in `namespace` unless they name one. */
export async function applyYaml(docs: string | readonly object[], namespace?: string): Promise<void> {
  const text = typeof docs === 'string' ? docs : docs.map((d) => stringify(d)).join('---\n');
  const nsArgs = namespace ? ['-n', namespace] : [];
  await kubectlOk([...nsArgs, 'apply', '--server-side', '--field-manager=breakwater-tests', '-f', '-'], { input: text });
}

let namespaces = 0;
/** A fresh namespace (`<prefix>-<pid>-<n>`) whose default ServiceAccount exists. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${++namespaces}`;
  await kubectlOk(['create', 'namespace', name]);
  await waitUntil(`ServiceAccount ${name}/default`, async () => (await kubectl(['-n', name, 'get', 'serviceaccount', 'default'])).code === 0, 30_000);
  return name;
}

/** Deletes a namespace and waits (bounded) until it is gone, so pods do not outlive the file
 * (BREAKWATER_NODE_KEEP_NAMESPACES=1 keeps it, to look around after a failure). */
export async function deleteNamespace(name: string, timeoutMs = 60_000): Promise<void> {
  if (process.env['BREAKWATER_NODE_KEEP_NAMESPACES'] === '1') return; // for a look after a failure
  await kubectl(['delete', 'namespace', name, '--wait=true', `--timeout=${Math.round(timeoutMs / 1000)}s`], { timeoutMs: timeoutMs + 5_000 });
}

/** Imports an OCI archive into the node's containerd (k8s.io namespace). */
export async function importImage(ociArchive: string): Promise<void> {
  const c = cluster();
  ok(`ctr images import ${ociArchive}`, await run('ctr', ['--address', c.containerdSocket, '-n', 'k8s.io', 'images', 'import', ociArchive], { timeoutMs: 120_000 }));
}

export interface NetnsResponse {
  status: number;
  body: string;
}

/** An HTTP request from inside the cluster's network namespace (to a Service or pod IP), by curl. */
export async function netnsFetch(url: string, init: { method?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<NetnsResponse> {
  const args = ['-sS', '-o', '-', '-w', '\n%{http_code}', '--max-time', String(Math.ceil((init.timeoutMs ?? 10_000) / 1000)), '-X', init.method ?? 'GET'];
  for (const [k, v] of Object.entries(init.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (init.body !== undefined) args.push('--data-binary', '@-');
  args.push(url);
  const out = ok(`curl ${url}`, await nsExec('curl', args, { input: init.body, timeoutMs: (init.timeoutMs ?? 10_000) + 5_000 }));
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

// --- pods -----------------------------------------------------------------------------------

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state?: { running?: { startedAt: string }; terminated?: { exitCode: number; reason?: string; startedAt?: string; finishedAt?: string }; waiting?: { reason?: string; message?: string } };
}

export interface Pod {
  metadata: { name: string; namespace: string; uid: string; deletionTimestamp?: string };
  spec: Record<string, unknown>;
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

export const podCondition = (pod: Pod, type: string): string | undefined => pod.status.conditions?.find((c) => c.type === type)?.status;
export const podReady = (pod: Pod): boolean => podCondition(pod, 'Ready') === 'True';

/** Polls the pod until `check` holds; on timeout the error shows the pod's status and events. */
export async function waitForPod(namespace: string, name: string, check: (pod: Pod) => boolean, timeoutMs = 60_000): Promise<Pod> {
  let last: Pod | undefined;
  try {
    await waitUntil(`pod ${namespace}/${name}`, async () => {
      const res = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json']);
      if (res.code !== 0) return false;
      last = JSON.parse(res.stdout) as Pod;
      return check(last);
    }, timeoutMs, 250);
  } catch (err) {
    const events = await kubectl(['-n', namespace, 'get', 'events', '--sort-by=.lastTimestamp', '-o', 'custom-columns=AT:.lastTimestamp,OBJ:.involvedObject.name,REASON:.reason,MSG:.message']);
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status)}\nevents:\n${events.stdout}`);
  }
  if (!last) throw new Error(`pod ${namespace}/${name} not found`);
  return last;
}

/** A container's log lines (`kubectl logs --timestamps`): each with the kubelet's receive time. */
export async function podLogs(namespace: string, pod: string, container: string): Promise<Array<{ at: number; line: string }>> {
  const out = await kubectlOk(['-n', namespace, 'logs', pod, '-c', container, '--timestamps']);
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const space = l.indexOf(' ');
    return { at: Date.parse(l.slice(0, space)), line: l.slice(space + 1) };
  });
}

/** JSON log lines of a container (non-JSON lines dropped), each with the kubelet's receive time. */
export async function podJsonLogs(namespace: string, pod: string, container: string): Promise<Array<Record<string, unknown> & { loggedAt: number }>> {
  const lines = await podLogs(namespace, pod, container);
  const out: Array<Record<string, unknown> & { loggedAt: number }> = [];
  for (const { at, line } of lines) {
    try {
      out.push({ ...(JSON.parse(line) as Record<string, unknown>), loggedAt: at });
    } catch {
      // not JSON (e.g. a Node warning)
    }
  }
  return out;
}

export interface EndpointSlice {
  endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean }; targetRef?: { name: string } }>;
}

/** The `ready` condition of the pod's endpoint in the Service's EndpointSlices (undefined: absent). */
export async function endpointReady(namespace: string, service: string, podName: string): Promise<boolean | undefined> {
  const list = await getJson<{ items: EndpointSlice[] }>(namespace, 'endpointslices', '-l', `kubernetes.io/service-name=${service}`);
  for (const slice of list.items) {
    for (const e of slice.endpoints ?? []) if (e.targetRef?.name === podName) return e.conditions?.ready ?? false;
  }
  return undefined;
}

/** The ClusterIP of a Service. */
export async function serviceIP(namespace: string, name: string): Promise<string> {
  return (await getJson<{ spec: { clusterIP: string } }>(namespace, 'service', name)).spec.clusterIP;
}

/** the shared polling wait (test/support/wait.ts), every 200 ms here */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 200): Promise<void> {
  await waitFor(what, check, timeoutMs, intervalMs);
}

// --- pod specs --------------------------------------------------------------------------------

/** The securityContext the README recommends for the sidecar (and the tests use for every container). */
export const restrictedSecurityContext = {
  runAsNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** A fake provider pod (the Breakwater image, `breakwater fake`) listening on 8080. */
export function fakeProviderPod(name: string, labels: Record<string, string>): object {
  const c = cluster();
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers: [{
        name: 'fake',
        image: c.images.breakwater,
        imagePullPolicy: 'Never',
        args: ['fake', '--listen', '0.0.0.0:8080', '--name', name],
        ports: [{ containerPort: 8080 }],
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        securityContext: restrictedSecurityContext,
      }],
    },
  };
}

/** A ClusterIP Service. */
export function service(name: string, selector: Record<string, string>, port: number, targetPort: number): object {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector, ports: [{ port, targetPort }] } };
}

/**
 * The plain pod-spec sidecar (no injector): Breakwater as a native sidecar, an init container
 * with `restartPolicy: Always`, probes on the admin port, the restricted securityContext.
 */
export function breakwaterSidecar(args: readonly string[], extra: Record<string, unknown> = {}): object {
  const c = cluster();
  return {
    name: 'breakwater',
    image: c.images.breakwater,
    imagePullPolicy: 'Never',
    restartPolicy: 'Always',
    args: ['proxy', ...args],
    ports: [{ name: 'admin', containerPort: 7879 }],
    startupProbe: { httpGet: { path: '/readyz', port: 7879 }, periodSeconds: 1, failureThreshold: 60 },
    readinessProbe: { httpGet: { path: '/readyz', port: 7879 }, periodSeconds: 2, failureThreshold: 1 },
    livenessProbe: { httpGet: { path: '/livez', port: 7879 }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    securityContext: restrictedSecurityContext,
    ...extra,
  };
}

export interface Streamed {
  /** the complete lines so far */
  readonly lines: string[];
  /** resolves when the command exits */
  readonly done: Promise<number>;
  stop(): void;
}

/** A long-running kubectl (`logs -f`, `get -w`) whose output lines are collected as they come. */
export function kubectlStream(args: readonly string[], maxMs = 120_000): Streamed {
  const c = cluster();
  const child = spawn('nsenter', [`--net=${c.netns}`, '--', `${c.bin}/kubectl`, `--kubeconfig=${c.kubeconfig}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), maxMs);
  const done = new Promise<number>((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      if (partial) lines.push(partial);
      resolve(code ?? -1);
    });
  });
  return { lines, done, stop: () => child.kill('SIGTERM') };
}

/** Splits concatenated JSON documents (the output of `kubectl get -w -o json`). */
export function splitJson(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') {
      if (depth++ === 0) start = i;
    } else if (ch === '}' && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return out;
}

/** Watches one object (`kubectl get -w -o json`); `objects()` parses what has arrived so far. */
export function watchObject<T>(namespace: string, ...what: string[]): Streamed & { objects(): T[] } {
  const stream = kubectlStream(['-n', namespace, 'get', ...what, '--watch', '-o', 'json']);
  return Object.assign(stream, { objects: () => splitJson(stream.lines.join('\n')) as T[] });
}
