// charts/breakwater with the real tools (issue 9, item 2 and test 7): `helm lint --strict`,
// values.schema.json refusing bad values by name, the CRD as in crds/, the rendered
// PrometheusRule through promtool, RBAC that never has an empty resourceNames, a webhook that
// never sees kube-system or the release namespace; then the rendered release applied
// server-side to a real kube-apiserver, its RBAC asked with impersonation, the webhook's
// selectors exercised by creating pods, and a `helm upgrade` that keeps the caBundle the
// controller patched in.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { CRD_FILE, installCrd, kubectlOk, REPO, waitForCrd } from './support/cluster.ts';
import {
  CHART_DIR,
  helmTemplate,
  parseManifests,
  RBAC_KINDS,
  RELEASE,
  RELEASE_NAMESPACE,
  renderChart,
  standaloneHelm,
  type HelmRunner,
  type K8sObject,
} from './support/chart.ts';

const FULL = 'ci/full-values.yaml';
const CERT_MANAGER = 'ci/cert-manager-values.yaml';

interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  reinvocationPolicy: string;
  clientConfig: { caBundle?: string; service: { name: string; namespace: string; path: string; port: number } };
  rules: { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }[];
  objectSelector: { matchLabels: Record<string, string> };
  namespaceSelector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values: string[] }[] };
}

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  startupProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: object;
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
}

interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
  affinity: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: { podAffinityTerm: { topologyKey: string } }[] } };
}

const one = (objects: K8sObject[], kind: string, name?: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
};
const webhooksOf = (objects: K8sObject[]): Webhook[] => one(objects, 'MutatingWebhookConfiguration').webhooks as Webhook[];
const podSpecOf = (objects: K8sObject[]): PodSpec => (one(objects, 'Deployment').spec as { template: { spec: PodSpec } }).template.spec;
const flagsOf = (c: Container): Map<string, string> =>
  new Map(c.args.filter((a) => a.startsWith('--')).map((a) => [a.slice(2).split('=')[0]!, a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true']));

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw new Error(`promtool could not run (${run.error.message}): install it with \`apt-get install -y prometheus\``);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** A stand-in CRD for another operator's kind (Prometheus Operator, cert-manager): accepts any spec. */
function stubCrd(group: string, kind: string, plural: string): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
}

describe('charts/breakwater', () => {
  let helm: HelmRunner;
  let dispose: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ helm, dispose } = await standaloneHelm());
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await dispose?.();
  });

  describe('helm lint --strict', () => {
    it.each([['the default values', []], ['ci/full-values.yaml', ['--values', join(CHART_DIR, FULL)]], ['ci/cert-manager-values.yaml', ['--values', join(CHART_DIR, CERT_MANAGER)]]])(
      'passes with %s',
      async (_name, extra) => {
        const res = await helm(['lint', '--strict', CHART_DIR, ...extra]);
        expect(res.code, res.stdout + res.stderr).toBe(0);
        expect(res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
        expect(res.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
      },
    );
  });

  it('Chart.yaml is apiVersion v2 for Kubernetes >= 1.29 with appVersion = package.json version', () => {
    const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'breakwater', kubeVersion: '>=1.29.0-0', appVersion: pkg.version });
  });

  it('NOTES.txt tells the next two commands: label a workload, apply an LLMUpstream (in the first app namespace)', async () => {
    const values = JSON.stringify({ appNamespaces: [{ name: 'checkout', serviceAccounts: ['api'], secrets: ['openai'] }] });
    const res = await helm(['install', RELEASE, CHART_DIR, '--dry-run=client', '--namespace', RELEASE_NAMESPACE, '--values', '-'], { input: values });
    expect(res.code, res.stderr).toBe(0);
    const notes = res.stdout.split('NOTES:\n')[1] ?? '';
    expect(notes).toContain('Sidecar RBAC for: checkout (Secrets: openai)');
    expect(notes).toMatch(/1\. [^\n]*\n\n\s*kubectl -n checkout patch deployment my-app [^\n]*"breakwater\.dev\/inject":"enabled"/);
    expect(notes).toMatch(/2\. [^]*\nkubectl -n checkout apply -f - <<'YAML'\napiVersion: breakwater\.dev\/v1alpha1\nkind: LLMUpstream\n[^]*\nYAML\n/);
    // the heredoc must parse as the LLMUpstream it claims to be
    const doc = parse(/<<'YAML'\n([^]*?)\nYAML\n/.exec(notes)![1]!) as { kind: string; spec: { endpoints: { url: string }[] } };
    expect(doc.kind).toBe('LLMUpstream');
    expect(doc.spec.endpoints[0]!.url).toBe('https://api.openai.com/v1');
  });

  describe('values.schema.json refuses a bad value with a message naming it', () => {
    it.each([
      ['failurePolicy: Maybe', { webhook: { failurePolicy: 'Maybe' } }, "at '/webhook/failurePolicy'", /Ignore.*Fail/],
      ['replicas: "two"', { controller: { replicas: 'two' } }, "at '/controller/replicas'", /want integer/],
      ['a duration without a unit', { sidecar: { unreadyAfter: '10' } }, "at '/sidecar/unreadyAfter'", /does not match pattern/],
      ['a duration in words', { sidecar: { drain: '30 seconds' } }, "at '/sidecar/drain'", /does not match pattern/],
      ['a port out of range', { sidecar: { proxyPort: 70000 } }, "at '/sidecar/proxyPort'", /maximum/],
      ['an unknown readiness mode', { sidecar: { readiness: 'always' } }, "at '/sidecar/readiness'", /breakers.*local/],
      ['an unknown pull policy', { sidecar: { image: { pullPolicy: 'Sometimes' } } }, "at '/sidecar/image/pullPolicy'", /Always.*IfNotPresent.*Never/],
      ['an empty image repository', { image: { repository: '' } }, "at '/image/repository'", /minLength/],
      ['a misspelt key', { controller: { replica: 3 } }, "at '/controller'", /additional properties 'replica'/],
      ['an app namespace without serviceAccounts', { appNamespaces: [{ name: 'shop', secrets: ['openai'] }] }, "at '/appNamespaces/0'", /serviceAccounts/],
      ['an empty Secret name', { appNamespaces: [{ name: 'shop', serviceAccounts: ['app'], secrets: [''] }] }, "at '/appNamespaces/0/secrets/0'", /minLength/],
      ['an empty ServiceAccount list', { appNamespaces: [{ name: 'shop', serviceAccounts: [] }] }, "at '/appNamespaces/0/serviceAccounts'", /minItems/],
      ['a namespace name with capitals', { appNamespaces: [{ name: 'Shop', serviceAccounts: ['app'] }] }, "at '/appNamespaces/0/name'", /pattern/],
      ['a webhook timeout above 30 s', { webhook: { timeoutSeconds: 31 } }, "at '/webhook/timeoutSeconds'", /maximum/],
      ['a sidecar env entry without a name', { sidecar: { env: [{ value: 'x' }] } }, "at '/sidecar/env/0'", /name/],
    ])('%s', async (_what, values, path, detail) => {
      const res = await helmTemplate(helm, values);
      expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain("values don't meet the specifications of the schema");
      expect(res.stderr).toContain(path);
      expect(res.stderr).toMatch(detail);
    });
  });

  it('helm template --include-crds carries the CRD of crds/ unchanged', async () => {
    const objects = await renderChart(helm, {}, { includeCrds: true });
    expect(one(objects, 'CustomResourceDefinition')).toEqual(parse(readFileSync(CRD_FILE, 'utf8')));
    const plain = await renderChart(helm, {});
    expect(plain.some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
  });

  it('the rendered PrometheusRule passes promtool check rules and the promtool tests of files/alerts.test.yaml', async () => {
    const rule = one(await renderChart(helm, {}, { valuesFiles: [FULL] }), 'PrometheusRule');
    expect(rule.metadata.labels).toMatchObject({ release: 'prometheus' });
    const dir = mkdtempSync(join(tmpdir(), 'breakwater-rules-'));
    try {
      // the rules file as Prometheus would get it from the operator, next to the promtool tests
      // (which read `alerts.yaml` from their own directory)
      writeFileSync(join(dir, 'alerts.yaml'), stringify(rule.spec));
      copyFileSync(join(CHART_DIR, 'files', 'alerts.test.yaml'), join(dir, 'alerts.test.yaml'));
      const check = promtool('check', 'rules', join(dir, 'alerts.yaml'));
      expect(check.status, check.output).toBe(0);
      expect(check.output).toMatch(/SUCCESS: 7 rules found/);
      const tests = promtool('test', 'rules', join(dir, 'alerts.test.yaml'));
      expect(tests.status, tests.output).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Prometheus Operator objects render only when enabled', async () => {
    const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind);
    expect(kinds(await renderChart(helm, {})).filter((k) => k === 'PodMonitor' || k === 'ServiceMonitor' || k === 'PrometheusRule')).toEqual([]);
    const full = await renderChart(helm, {}, { valuesFiles: [FULL] });
    expect(kinds(full).filter((k) => k === 'PodMonitor' || k === 'PrometheusRule').sort()).toEqual(['PodMonitor', 'PodMonitor', 'PrometheusRule']);
    const sidecars = one(full, 'PodMonitor', `${RELEASE}-sidecars`).spec as { selector: { matchLabels: Record<string, string> }; namespaceSelector: object; podMetricsEndpoints: object[] };
    expect(sidecars.selector.matchLabels).toEqual({ 'breakwater.dev/inject': 'enabled' });
    expect(sidecars.namespaceSelector).toEqual({ any: true });
    // the admin port by the name the injector gives it, or by number
    expect(sidecars.podMetricsEndpoints).toEqual([{ path: '/metrics', interval: '30s', port: 'bw-admin' }]);
    const byNumber = await renderChart(helm, { monitoring: { podMonitor: { enabled: true, portName: '' } }, sidecar: { adminPort: 9100 } });
    expect((one(byNumber, 'PodMonitor').spec as { podMetricsEndpoints: object[] }).podMetricsEndpoints).toEqual([
      { path: '/metrics', interval: '30s', relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_container_port_number'], regex: '9100', action: 'keep' }] },
    ]);
    const controller = one(full, 'PodMonitor', `${RELEASE}-controller`).spec as { podMetricsEndpoints: object[] };
    expect(controller.podMetricsEndpoints).toEqual([{ port: 'admin', path: '/metrics', interval: '30s' }]);
  });

  describe('RBAC', () => {
    const rulesWithNames = (objects: K8sObject[]) => objects.filter((o) => RBAC_KINDS.has(o.kind)).flatMap((o) => (o.rules ?? []).filter((r) => r.resourceNames !== undefined).map((r) => ({ role: `${o.metadata.namespace ?? ''}/${o.metadata.name}`, rule: r })));

    it.each([
      ['the default values', {}, []],
      ['ci/full-values.yaml', {}, [FULL]],
      ['ci/cert-manager-values.yaml', {}, [CERT_MANAGER]],
      ['namespaces with secrets absent, empty and listed', { appNamespaces: [{ name: 'a', serviceAccounts: ['x'] }, { name: 'b', serviceAccounts: ['x'], secrets: [] }, { name: 'c', serviceAccounts: ['x'], secrets: ['k'] }] }, []],
    ] as const)('never renders an empty resourceNames (%s)', async (_name, values, files) => {
      const objects = await renderChart(helm, values, { valuesFiles: files });
      for (const { role, rule } of rulesWithNames(objects)) expect(rule.resourceNames, role).not.toHaveLength(0);
      // and every Secret rule outside the release namespace is limited by name
      for (const o of objects.filter((x) => x.kind === 'Role' && x.metadata.namespace !== RELEASE_NAMESPACE)) {
        for (const rule of o.rules ?? []) if (rule.resources?.includes('secrets')) expect(rule.resourceNames?.length, o.metadata.name).toBeGreaterThan(0);
      }
    });

    it('an app namespace without Secrets gets no Secret rule and no controller Secret Role; one with Secrets gets both, with the same names', async () => {
      const objects = await renderChart(helm, { appNamespaces: [{ name: 'a', serviceAccounts: ['x'] }, { name: 'c', serviceAccounts: ['x', 'y'], secrets: ['k1', 'k2'] }] });
      const inNs = (ns: string) => objects.filter((o) => o.metadata.namespace === ns);
      expect(inNs('a').map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([`Role/${RELEASE}-sidecar`, `RoleBinding/${RELEASE}-sidecar`]);
      expect(one(inNs('a'), 'Role').rules?.flatMap((r) => r.resources)).toEqual(['llmupstreams', 'events']);
      const sidecarRole = one(inNs('c'), 'Role', `${RELEASE}-sidecar`);
      expect(sidecarRole.rules).toContainEqual({ apiGroups: [''], resources: ['secrets'], resourceNames: ['k1', 'k2'], verbs: ['get', 'watch'] });
      expect(one(inNs('c'), 'Role', `${RELEASE}-controller-secrets`).rules).toEqual([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['k1', 'k2'], verbs: ['get', 'watch'] }]);
      expect(one(inNs('c'), 'RoleBinding', `${RELEASE}-sidecar`).subjects).toEqual([
        { kind: 'ServiceAccount', name: 'x', namespace: 'c' },
        { kind: 'ServiceAccount', name: 'y', namespace: 'c' },
      ]);
      expect(one(inNs('c'), 'RoleBinding', `${RELEASE}-controller-secrets`).subjects).toEqual([{ kind: 'ServiceAccount', name: `${RELEASE}-controller`, namespace: RELEASE_NAMESPACE }]);
    });

    it('refuses an app namespace listed twice, naming it', async () => {
      const res = await helmTemplate(helm, { appNamespaces: [{ name: 'shop', serviceAccounts: ['a'] }, { name: 'lab', serviceAccounts: ['b'] }, { name: 'shop', serviceAccounts: ['c'] }] });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain('appNamespaces: namespace "shop" is listed twice (entries 0 and 2)');
    });

    it('the controller may patch only its own webhook configuration, and its cert Secret and Lease only by name', async () => {
      const objects = await renderChart(helm, {});
      const cluster = one(objects, 'ClusterRole', `${RELEASE}-controller`);
      expect(cluster.rules).toContainEqual({ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [`${RELEASE}-webhook`], verbs: ['get', 'patch'] });
      expect(cluster.rules?.some((r) => r.resources?.includes('secrets'))).toBe(false);
      const cert = one(objects, 'Role', `${RELEASE}-controller-webhook-cert`);
      expect(cert.metadata.namespace).toBe(RELEASE_NAMESPACE);
      expect(cert.rules).toEqual([
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        { apiGroups: [''], resources: ['secrets'], resourceNames: [`${RELEASE}-webhook-tls`], verbs: ['get', 'update'] },
      ]);
      // cert-manager writes the Secret and injects the CA: the controller needs neither permission
      const cm = await renderChart(helm, {}, { valuesFiles: [CERT_MANAGER] });
      expect(cm.some((o) => o.metadata.name === `${RELEASE}-controller-webhook-cert`)).toBe(false);
      expect(one(cm, 'ClusterRole').rules?.some((r) => r.resources?.includes('mutatingwebhookconfigurations'))).toBe(false);
    });
  });

  describe('the webhook', () => {
    it.each([
      ['breakwater-system', {}],
      ['ops', {}],
      ['ops', { webhook: { excludeNamespaces: ['monitoring', 'kube-system'] } }],
    ])('never selects kube-system or the release namespace (%s, %j)', async (namespace, values) => {
      const [webhook, ...more] = webhooksOf(await renderChart(helm, values, { namespace }));
      expect(more).toEqual([]);
      // one NotIn on the name label and nothing that could widen it again
      expect(webhook!.namespaceSelector.matchLabels).toBeUndefined();
      expect(webhook!.namespaceSelector.matchExpressions).toHaveLength(1);
      const [expr] = webhook!.namespaceSelector.matchExpressions!;
      expect(expr).toMatchObject({ key: 'kubernetes.io/metadata.name', operator: 'NotIn' });
      expect(expr!.values).toEqual(expect.arrayContaining(['kube-system', namespace]));
      expect(new Set(expr!.values).size).toBe(expr!.values.length);
    });

    it('is inject.breakwater.dev: pod CREATE, labelled pods only, Ignore by default, no side effects, 5 s, no caBundle of its own', async () => {
      const [webhook] = webhooksOf(await renderChart(helm, {}));
      expect(webhook).toMatchObject({
        name: 'inject.breakwater.dev',
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        timeoutSeconds: 5,
        admissionReviewVersions: ['v1'],
        reinvocationPolicy: 'Never',
        clientConfig: { service: { name: `${RELEASE}-webhook`, namespace: RELEASE_NAMESPACE, path: '/inject', port: 443 } },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
        objectSelector: { matchLabels: { 'breakwater.dev/inject': 'enabled' } },
      });
      // the controller (or cert-manager) fills it; Helm never sets it, so an upgrade cannot wipe it
      expect(webhook!.clientConfig.caBundle).toBeUndefined();
      const [failing] = webhooksOf(await renderChart(helm, { webhook: { failurePolicy: 'Fail' } }));
      expect(failing!.failurePolicy).toBe('Fail');
    });

    it('its Service forwards 443 to the controller webhook port', async () => {
      const objects = await renderChart(helm, {});
      const svc = one(objects, 'Service', `${RELEASE}-webhook`).spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
      expect(svc.ports).toEqual([{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
      const deployment = one(objects, 'Deployment').spec as { template: { metadata: { labels: Record<string, string> } } };
      expect(deployment.template.metadata.labels).toMatchObject(svc.selector);
      expect(podSpecOf(objects).containers[0]!.ports).toContainEqual({ name: 'webhook', containerPort: 8443, protocol: 'TCP' });
    });

    it('cert-manager mode: a Certificate for the Service names, mounted at /tls, and the inject-ca-from annotation', async () => {
      const objects = await renderChart(helm, {}, { valuesFiles: [CERT_MANAGER] });
      const mwc = one(objects, 'MutatingWebhookConfiguration');
      expect(mwc.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${RELEASE_NAMESPACE}/${RELEASE}-webhook` });
      const cert = one(objects, 'Certificate', `${RELEASE}-webhook`).spec as { secretName: string; dnsNames: string[]; issuerRef: object };
      expect(cert.dnsNames).toEqual([`${RELEASE}-webhook.${RELEASE_NAMESPACE}.svc`, `${RELEASE}-webhook.${RELEASE_NAMESPACE}.svc.cluster.local`]);
      expect(cert.issuerRef).toEqual({ kind: 'Issuer', name: `${RELEASE}-selfsigned` });
      one(objects, 'Issuer', `${RELEASE}-selfsigned`);
      const pod = podSpecOf(objects);
      const flags = flagsOf(pod.containers[0]!);
      expect(flags.get('webhook-cert-dir')).toBe('/tls');
      expect(flags.has('webhook-cert-secret')).toBe(false);
      expect(pod.volumes).toContainEqual({ name: 'webhook-tls', secret: { secretName: cert.secretName } });
      expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'webhook-tls', mountPath: '/tls', readOnly: true });
      // an issuer of the operator's own: no self-signed Issuer from the chart
      const own = await renderChart(helm, { webhook: { certManager: { enabled: true, issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } } } });
      expect(own.some((o) => o.kind === 'Issuer')).toBe(false);
      expect((one(own, 'Certificate').spec as { issuerRef: object }).issuerRef).toEqual({ kind: 'ClusterIssuer', name: 'corp-ca' });
    });
  });

  describe('the controller Deployment', () => {
    it('runs 2 replicas of `controller` with the contract flags, the pod namespace from the downward API', async () => {
      const objects = await renderChart(helm, {});
      expect((one(objects, 'Deployment').spec as { replicas: number }).replicas).toBe(2);
      const pod = podSpecOf(objects);
      expect(pod.serviceAccountName).toBe(`${RELEASE}-controller`);
      const [c, ...others] = pod.containers;
      expect(others).toEqual([]);
      expect(c!.image).toBe('localhost/breakwater:0.1.0');
      expect(c!.args[0]).toBe('controller');
      expect(Object.fromEntries(flagsOf(c!))).toEqual({
        admin: '0.0.0.0:7879',
        'webhook-listen': '0.0.0.0:8443',
        'webhook-config-name': `${RELEASE}-webhook`,
        'webhook-service': `${RELEASE}-webhook`,
        'webhook-cert-secret': `${RELEASE}-webhook-tls`,
        'injection-config': '/etc/breakwater/injection.yaml',
        'all-namespaces': 'true',
        'lease-name': `${RELEASE}-controller`,
        'log-level': 'info',
      });
      expect(c!.env).toContainEqual({ name: 'BREAKWATER_POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
      const watching = podSpecOf(await renderChart(helm, { controller: { watchNamespace: 'shop' } })).containers[0]!;
      expect(flagsOf(watching).get('namespace')).toBe('shop');
      expect(flagsOf(watching).has('all-namespaces')).toBe(false);
    });

    it('probes /livez and /readyz on the admin port and is locked down like the sidecar', async () => {
      const pod = podSpecOf(await renderChart(helm, {}));
      const c = pod.containers[0]!;
      expect(c.ports).toContainEqual({ name: 'admin', containerPort: 7879, protocol: 'TCP' });
      expect(c.startupProbe.httpGet).toEqual({ path: '/livez', port: 'admin' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'admin' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
      expect(c.securityContext).toEqual({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
      expect(pod.affinity.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
      // read-only root: /tmp is an emptyDir; the injection config comes from the ConfigMap
      expect(c.volumeMounts.map((m) => m.mountPath).sort()).toEqual(['/etc/breakwater', '/tmp']);
    });

    it('reads the sidecar block from the injection ConfigMap (image as repository:tag) and rolls when it changes', async () => {
      const objects = await renderChart(helm, {}, { valuesFiles: [FULL] });
      const cm = one(objects, 'ConfigMap', `${RELEASE}-injection`);
      expect(parse((cm.data as Record<string, string>)['injection.yaml']!)).toEqual({
        image: 'localhost/breakwater:dev',
        imagePullPolicy: 'Never',
        resources: { requests: { cpu: '25m', memory: '128Mi' }, limits: { memory: '256Mi' } },
        readiness: 'local',
        unreadyAfter: '15s',
        drain: '45s',
        logLevel: 'info',
        env: [{ name: 'BREAKWATER_WATCH_STALE_AFTER', value: '90s' }],
        proxyPort: 7878,
        adminPort: 7879,
      });
      const checksum = (o: K8sObject[]) => (one(o, 'Deployment').spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations['checksum/injection-config'];
      const defaults = await renderChart(helm, {});
      expect(parse((one(defaults, 'ConfigMap').data as Record<string, string>)['injection.yaml']!)).toMatchObject({ image: 'localhost/breakwater:0.1.0', env: [], readiness: 'breakers', unreadyAfter: '10s', drain: '30s' });
      expect(checksum(objects)).toMatch(/^[0-9a-f]{64}$/);
      expect(checksum(objects)).not.toBe(checksum(defaults));
      expect(checksum(await renderChart(helm, { controller: { logLevel: 'debug' } }))).toBe(checksum(defaults));
    });
  });

  describe('on a real API server', () => {
    let cp: ControlPlane;
    const APP_NS = ['shop', 'lab', 'monitoring'];

    beforeAll(async () => {
      cp = await startControlPlane();
      for (const ns of [RELEASE_NAMESPACE, ...APP_NS]) await kubectlOk(cp, ['create', 'namespace', ns]);
      // stand-ins for the Prometheus Operator's and cert-manager's CRDs, so their objects apply too
      const stubs = [
        stubCrd('monitoring.coreos.com', 'PrometheusRule', 'prometheusrules'),
        stubCrd('monitoring.coreos.com', 'PodMonitor', 'podmonitors'),
        stubCrd('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
        stubCrd('cert-manager.io', 'Certificate', 'certificates'),
        stubCrd('cert-manager.io', 'Issuer', 'issuers'),
      ];
      await kubectlOk(cp, ['apply', '--server-side', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: stubs }) });
      for (const stub of stubs) await waitForCrd(cp, (stub as { metadata: { name: string } }).metadata.name);
    }, CONTROL_PLANE_TIMEOUT_MS);

    afterAll(async () => {
      await cp?.stop();
    }, 60_000);

    const applyRendered = async (files: readonly string[], values: object = {}): Promise<K8sObject[]> => {
      const res = await helmTemplate(helm, values, { valuesFiles: files, includeCrds: true, kubeVersion: cp.version });
      expect(res.code, res.stderr).toBe(0);
      const applied = await cp.kubectl(['apply', '--server-side', '--field-manager=helm-template', '-f', '-'], { input: res.stdout });
      expect(applied.code, applied.stderr).toBe(0);
      return parseManifests(res.stdout);
    };

    it('accepts helm template output applied server-side (every optional part on, then cert-manager mode)', async () => {
      const objects = await applyRendered([FULL]);
      expect(objects.length).toBeGreaterThan(15);
      for (const o of objects) {
        const args = ['get', `${o.kind}.${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''), o.metadata.name, '-o', 'name'];
        const got = await cp.kubectl(o.metadata.namespace ? [...args, '-n', o.metadata.namespace] : args);
        expect(got.code, `${o.kind} ${o.metadata.name}: ${got.stderr}`).toBe(0);
      }
      await installCrd(cp); // Established: the chart's CRD is the one from crds/
      const cm = await applyRendered([CERT_MANAGER]);
      expect(cm.some((o) => o.kind === 'Certificate')).toBe(true);
    });

    it('grants the ServiceAccounts what the chart says, asked with impersonation', async () => {
      await applyRendered([FULL]);
      const canI = async (sa: string, ...args: string[]): Promise<boolean> => {
        const res = await cp.kubectl(['auth', 'can-i', `--as=system:serviceaccount:${sa}`, ...args]);
        const answer = res.stdout.trim();
        if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${res.stderr}`);
        return answer === 'yes';
      };
      const controller = `${RELEASE_NAMESPACE}:${RELEASE}-controller`;
      expect(await canI(controller, 'patch', `mutatingwebhookconfigurations/${RELEASE}-webhook`)).toBe(true);
      expect(await canI(controller, 'patch', 'mutatingwebhookconfigurations/someone-elses')).toBe(false);
      expect(await canI(controller, 'update', `secrets/${RELEASE}-webhook-tls`, '-n', RELEASE_NAMESPACE)).toBe(true);
      expect(await canI(controller, 'get', 'secrets/other', '-n', RELEASE_NAMESPACE)).toBe(false);
      expect(await canI(controller, 'patch', 'llmupstreams.breakwater.dev', '--subresource=status', '-n', 'lab')).toBe(true);
      expect(await canI(controller, 'get', 'secrets/openai', '-n', 'shop')).toBe(true);
      expect(await canI(controller, 'get', 'secrets/openai', '-n', 'lab')).toBe(false);
      for (const sa of ['shop:app', 'shop:worker']) {
        expect(await canI(sa, 'watch', 'llmupstreams.breakwater.dev', '-n', 'shop')).toBe(true);
        expect(await canI(sa, 'get', 'secrets/anthropic', '-n', 'shop')).toBe(true);
        expect(await canI(sa, 'list', 'secrets', '-n', 'shop')).toBe(false);
        expect(await canI(sa, 'create', 'events.events.k8s.io', '-n', 'shop')).toBe(true);
        expect(await canI(sa, 'patch', 'llmupstreams.breakwater.dev', '--subresource=status', '-n', 'shop')).toBe(false);
      }
      expect(await canI('shop:other', 'list', 'llmupstreams.breakwater.dev', '-n', 'shop')).toBe(false);
      expect(await canI('lab:default', 'list', 'llmupstreams.breakwater.dev', '-n', 'lab')).toBe(true);
      expect(await canI('lab:default', 'get', 'secrets/openai', '-n', 'lab')).toBe(false);
    });

    const pod = (namespace: string, name: string, labelled: boolean) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: labelled ? { 'breakwater.dev/inject': 'enabled' } : {} },
      spec: { containers: [{ name: 'app', image: 'localhost/app:dev' }] },
    });
    const create = (obj: object) => cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(obj), timeoutMs: 30_000 });

    it('with failurePolicy Fail and no controller answering, the API server calls the webhook for labelled pods in app namespaces only', async () => {
      await applyRendered([FULL]); // failurePolicy: Fail; nothing serves the webhook
      const refused = await create(pod('shop', 'labelled', true));
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/failed calling webhook "inject\.breakwater\.dev"/);
      // not selected: no label, the release namespace, kube-system, an excluded namespace
      for (const [ns, name, labelled] of [['shop', 'unlabelled', false], [RELEASE_NAMESPACE, 'own', true], ['kube-system', 'system', true], ['monitoring', 'excluded', true]] as const) {
        const res = await create(pod(ns, name, labelled));
        expect(res.code, `${ns}/${name}: ${res.stderr}`).toBe(0);
      }
    });

    it('with the default failurePolicy Ignore, a labelled pod is created while no controller answers', async () => {
      await applyRendered([FULL], { webhook: { failurePolicy: 'Ignore' } });
      const res = await create(pod('shop', 'ignored', true));
      expect(res.code, res.stderr).toBe(0);
      const got = JSON.parse(await kubectlOk(cp, ['get', 'pod', 'ignored', '-n', 'shop', '-o', 'json'])) as { spec: { initContainers?: object[] } };
      expect(got.spec.initContainers).toBeUndefined();
    });

    it('helm upgrade keeps the caBundle the controller patched in, and applies the new values', async () => {
      const release = 'upgrade-check';
      const ns = 'upgrade-system';
      const mwc = `${release}-breakwater-webhook`;
      const install = await cp.helm(['install', release, CHART_DIR, '-n', ns, '--create-namespace', '--skip-crds'], { timeoutMs: 120_000 });
      expect(install.code, install.stderr).toBe(0);
      // what the controller does at start: patch its caBundle in, as its own ServiceAccount
      const { caBundle } = await cp.mintServingCert();
      const patch = JSON.stringify([{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: caBundle }]);
      await kubectlOk(cp, ['patch', 'mutatingwebhookconfiguration', mwc, '--type=json', '-p', patch, `--as=system:serviceaccount:${ns}:${release}-breakwater-controller`]);
      const read = async () => (JSON.parse(await kubectlOk(cp, ['get', 'mutatingwebhookconfiguration', mwc, '-o', 'json'])) as { webhooks: Webhook[] }).webhooks[0]!;
      expect((await read()).clientConfig.caBundle).toBe(caBundle);
      for (const [policy, extra] of [['Fail', []], ['Ignore', ['--server-side=false']]] as const) {
        const upgrade = await cp.helm(['upgrade', release, CHART_DIR, '-n', ns, '--skip-crds', '--set', `webhook.failurePolicy=${policy}`, ...extra], { timeoutMs: 120_000 });
        expect(upgrade.code, upgrade.stderr).toBe(0);
        const after = await read();
        expect(after.failurePolicy).toBe(policy);
        expect(after.clientConfig.caBundle).toBe(caBundle);
      }
    });
  });
});
