// Setup on a running test control plane: the generated CRD, a namespace, and Breakwater's RBAC
// from deploy/rbac/ bound to the harness's sidecar and controller identities. The manifests are
// applied as written except for what an operator sets per install: namespaces, the subjects
// (harness users instead of ServiceAccounts) and the list of Secrets Breakwater may read.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { IDENTITIES, type ControlPlane, type ExecOptions, type ExecResult } from '../harness.ts';

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const CRD_FILE = join(REPO, 'crds', 'llmupstreams.breakwater.dev.yaml');
export const CONTROLLER_NAMESPACE = 'breakwater-system';

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
  // poll rather than `kubectl wait`: right after the create, .status.conditions can still be
  // null, and kubectl wait then fails at once ("accessor error") instead of waiting
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await cp.kubectl(['get', 'crd/llmupstreams.breakwater.dev', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    if (res.code === 0 && res.stdout.trim() === 'True') return;
    if (Date.now() > deadline) throw new Error(`the CRD was not Established within 60 s: ${res.stdout}${res.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Obj = { kind: string; metadata: { name: string; namespace?: string }; subjects?: { kind: string; name: string; namespace?: string }[]; rules?: { resources?: string[]; resourceNames?: string[] }[] };

function loadManifests(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(REPO, 'deploy', 'rbac', file), 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

/**
 * deploy/rbac/*.yaml for a test: app namespace `namespace`, controller namespace
 * breakwater-system, subjects = the harness identities, readable Secrets = `secretNames`.
 */
export function renderRbac(namespace: string, secretNames: readonly string[]): Obj[] {
  const user = (component: 'sidecar' | 'controller') => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: IDENTITIES[component].user });
  const out: Obj[] = [];
  for (const [file, ns] of [['namespace.yaml', namespace], ['controller.yaml', CONTROLLER_NAMESPACE]] as const) {
    for (const obj of loadManifests(file)) {
      if (obj.metadata.namespace !== undefined) obj.metadata.namespace = ns;
      if (obj.subjects) {
        obj.subjects = obj.subjects.map((s) => (s.kind === 'ServiceAccount' ? user(s.name === 'breakwater-controller' ? 'controller' : 'sidecar') : s));
      }
      if (obj.rules && file === 'namespace.yaml') {
        // the app's readable Secrets (the controller's own certificate Secret keeps its name)
        // an empty resourceNames list would grant every Secret: no names, no rule
        obj.rules = obj.rules
          .map((rule) => (rule.resources?.includes('secrets') && rule.resourceNames ? { ...rule, resourceNames: [...secretNames] } : rule))
          .filter((rule) => !(rule.resources?.includes('secrets') && rule.resourceNames?.length === 0));
      }
      out.push(obj);
    }
  }
  return out;
}

/** CRD, namespaces, RBAC. */
export async function setupCluster(cp: ControlPlane, namespace: string, secretNames: readonly string[]): Promise<void> {
  await installCrd(cp);
  for (const ns of [namespace, CONTROLLER_NAMESPACE]) {
    const res = await cp.kubectl(['create', 'namespace', ns]);
    if (res.code !== 0 && !res.stderr.includes('AlreadyExists')) throw new Error(res.stderr);
  }
  await applyJson(cp, renderRbac(namespace, secretNames));
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
