// charts/breakwater rendered by the real `helm template` (the helm binary from
// hack/control-plane.sh): the e2e suite binds its identities to the RBAC the chart renders
// (there is no second, hand-written copy), and test/e2e/chart.test.ts checks the chart itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ensureBinaries, REPO_ROOT } from '../harness/binaries.ts';
import { exec, type ExecResult } from '../harness/clients.ts';

export const CHART_DIR = join(REPO_ROOT, 'charts', 'breakwater');
/** The release the tests install: its names match the Lease and RBAC names the suite expects. */
export const RELEASE = 'breakwater';
export const RELEASE_NAMESPACE = 'breakwater-system';

export interface Subject {
  kind: string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  rules?: PolicyRule[];
  subjects?: Subject[];
  roleRef?: { kind: string; name: string };
  [field: string]: unknown;
}

/** Runs helm with the given arguments (and stdin). */
export type HelmRunner = (args: readonly string[], opts?: { input?: string }) => Promise<ExecResult>;

/** A helm runner that needs no control plane, with its own throwaway HELM_*_HOME dirs. */
export async function standaloneHelm(): Promise<{ helm: HelmRunner; dispose(): Promise<void> }> {
  const binDir = await ensureBinaries();
  const home = await mkdtemp(join(tmpdir(), 'breakwater-helm-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    KUBECONFIG: join(home, 'no-cluster.kubeconfig'),
  };
  return {
    helm: (args, opts = {}) => exec(join(binDir, 'helm'), args, env, opts),
    dispose: () => rm(home, { recursive: true, force: true }),
  };
}

export interface TemplateOptions {
  namespace?: string;
  release?: string;
  /** --kube-version (helm's default is its own client version) */
  kubeVersion?: string;
  includeCrds?: boolean;
  /** values files relative to the chart, e.g. ci/full-values.yaml (before `values`) */
  valuesFiles?: readonly string[];
}

/** `helm template` with `values` on stdin; the raw result (a bad value is code != 0). */
export function helmTemplate(helm: HelmRunner, values: object = {}, opts: TemplateOptions = {}): Promise<ExecResult> {
  const args = [
    'template',
    opts.release ?? RELEASE,
    CHART_DIR,
    '--namespace',
    opts.namespace ?? RELEASE_NAMESPACE,
    ...(opts.kubeVersion ? ['--kube-version', opts.kubeVersion] : []),
    ...(opts.includeCrds ? ['--include-crds'] : []),
    ...(opts.valuesFiles ?? []).flatMap((f) => ['--values', join(CHART_DIR, f)]),
    '--values',
    '-',
  ];
  return helm(args, { input: JSON.stringify(values) });
}

/** The objects `helm template` renders; throws with helm's message when it fails. */
export async function renderChart(helm: HelmRunner, values: object = {}, opts: TemplateOptions = {}): Promise<K8sObject[]> {
  const res = await helmTemplate(helm, values, opts);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}): ${res.stderr}`);
  return parseManifests(res.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export const RBAC_KINDS: ReadonlySet<string> = new Set(['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
