// Setup on a running test control plane: the generated CRD, a namespace, and Breakwater's RBAC
// as the chart renders it (`helm template charts/breakwater`, the app namespace and its
// Secrets as values), bound to the harness's sidecar and controller identities instead of
// ServiceAccounts. There is no other copy of these rules.
import { join, resolve } from 'node:path';
import { IDENTITIES, type ControlPlane, type ExecOptions, type ExecResult } from '../harness.ts';
import { RBAC_KINDS, RELEASE_NAMESPACE, renderChart, type K8sObject, type Subject } from './chart.ts';

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const CRD_FILE = join(REPO, 'crds', 'llmupstreams.breakwater.dev.yaml');
export const CONTROLLER_NAMESPACE = RELEASE_NAMESPACE;
/** The chart's controller ServiceAccount for release `breakwater`. */
export const CONTROLLER_SERVICE_ACCOUNT = 'breakwater-controller';
/** The ServiceAccount the tests' app namespaces list in appNamespaces[].serviceAccounts. */
export const APP_SERVICE_ACCOUNT = 'app';

/** kubectl that throws (with its stderr) when the command fails. */
export async function kubectlOk(cp: ControlPlane, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const res: ExecResult = await cp.kubectl(args, opts);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${res.code}): ${res.stderr || res.stdout}`);
  return res.stdout;
}

export async function applyJson(cp: ControlPlane, objects: unknown[], opts: ExecOptions = {}): Promise<void> {
  const input = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
  await kubectlOk(cp, ['apply', '-f', '-'], { ...opts, input });
}

export async function installCrd(cp: ControlPlane): Promise<void> {
  await kubectlOk(cp, ['apply', '--server-side', '-f', CRD_FILE]);
  await waitForCrd(cp, 'llmupstreams.breakwater.dev');
}

/** Waits until a CRD is Established. */
export async function waitForCrd(cp: ControlPlane, name: string): Promise<void> {
  // poll rather than `kubectl wait`: right after the create, .status.conditions can still be
  // null, and kubectl wait then fails at once ("accessor error") instead of waiting
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await cp.kubectl(['get', `crd/${name}`, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    if (res.code === 0 && res.stdout.trim() === 'True') return;
    if (Date.now() > deadline) throw new Error(`the CRD ${name} was not Established within 60 s: ${res.stdout}${res.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The chart's RBAC (`helm template`, release breakwater in breakwater-system) for a test: app
 * namespace `namespace` with the Secrets `secretNames`, the ServiceAccount subjects replaced by
 * the harness identities (the controller's ServiceAccount -> the controller user, the app's ->
 * the sidecar user). Everything else is as the chart renders it.
 */
export async function renderRbac(cp: ControlPlane, namespace: string, secretNames: readonly string[]): Promise<K8sObject[]> {
  const values = { appNamespaces: [{ name: namespace, serviceAccounts: [APP_SERVICE_ACCOUNT], secrets: [...secretNames] }] };
  const objects = await renderChart((args, opts) => cp.helm(args, opts), values, { namespace: CONTROLLER_NAMESPACE, kubeVersion: cp.version });
  const user = (component: 'sidecar' | 'controller'): Subject => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: IDENTITIES[component].user });
  return objects
    .filter((obj) => RBAC_KINDS.has(obj.kind))
    .map((obj) =>
      obj.subjects
        ? {
            ...obj,
            subjects: obj.subjects.map((s) =>
              s.kind !== 'ServiceAccount' ? s : user(s.namespace === CONTROLLER_NAMESPACE && s.name === CONTROLLER_SERVICE_ACCOUNT ? 'controller' : 'sidecar'),
            ),
          }
        : obj,
    );
}

/** CRD, namespaces, RBAC. */
export async function setupCluster(cp: ControlPlane, namespace: string, secretNames: readonly string[]): Promise<void> {
  await installCrd(cp);
  for (const ns of [namespace, CONTROLLER_NAMESPACE]) {
    const res = await cp.kubectl(['create', 'namespace', ns]);
    if (res.code !== 0 && !res.stderr.includes('AlreadyExists')) throw new Error(res.stderr);
  }
  await applyJson(cp, await renderRbac(cp, namespace, secretNames));
}

export function secret(namespace: string, name: string, data: Record<string, string>): object {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData: data };
}

export function llmUpstream(namespace: string, name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'breakwater.dev/v1alpha1', kind: 'LLMUpstream', metadata: { name, namespace }, spec };
}

export interface UpstreamStatusView {
  generation: number;
  resourceVersion: string;
  status?: {
    observedGeneration?: number;
    endpoints?: number;
    conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[];
  };
  managedFields: { manager: string; operation: string; subresource?: string; time: string }[];
}

export async function getUpstream(cp: ControlPlane, namespace: string, name: string): Promise<UpstreamStatusView> {
  const obj = JSON.parse(await kubectlOk(cp, ['get', 'llmupstream', name, '-n', namespace, '-o', 'json', '--show-managed-fields'])) as {
    metadata: { generation: number; resourceVersion: string; managedFields?: UpstreamStatusView['managedFields'] };
    status?: UpstreamStatusView['status'];
  };
  return { generation: obj.metadata.generation, resourceVersion: obj.metadata.resourceVersion, status: obj.status, managedFields: obj.metadata.managedFields ?? [] };
}

export function condition(view: UpstreamStatusView, type: string) {
  return view.status?.conditions?.find((c) => c.type === type);
}

export interface EventView {
  reason: string;
  note: string;
  type: string;
  regarding: { name: string; kind: string };
  reportingController: string;
}

export async function eventsFor(cp: ControlPlane, namespace: string, name: string): Promise<EventView[]> {
  const list = JSON.parse(await kubectlOk(cp, ['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json'])) as { items: EventView[] };
  return list.items.filter((e) => e.regarding?.kind === 'LLMUpstream' && e.regarding.name === name);
}
