// One flag table for every command (`proxy`, `controller`), each flag with its environment
// twin (BREAKWATER_<FLAG_UPPER_SNAKE>), and the sidecar container spec built from the same
// table. The injector, the README's plain pod-spec snippet and the chart's expectations all
// come from sidecarContainer(), so the three cannot drift apart.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { parseDuration } from './config/duration.ts';
import { DEFAULT_EDGE_LIMITS } from './proxy/limits.ts';
import type { EnvVar, SidecarValues } from './sidecar.ts';

export type Command = 'proxy' | 'controller';

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** repeatable; the env twin (and each flag value) may also be a comma list */
  readonly multiple?: true;
  readonly default?: string;
  readonly commands: readonly Command[];
  readonly help: string;
}

const BOTH = ['proxy', 'controller'] as const;

export const FLAGS = {
  config: { type: 'string', commands: ['proxy'], help: 'YAML file of LLMUpstreams (watched)' },
  kubernetes: { type: 'boolean', commands: ['proxy'], help: 'watch LLMUpstreams in --namespace instead of a file' },
  namespace: { type: 'string', commands: BOTH, help: 'namespace to watch (default: the ServiceAccount\'s)' },
  'all-namespaces': { type: 'boolean', commands: ['controller'], help: 'watch LLMUpstreams in every namespace' },
  kubeconfig: { type: 'string', commands: BOTH, help: 'kubeconfig file (default: KUBECONFIG, else the in-cluster ServiceAccount)' },
  listen: { type: 'string', default: '127.0.0.1:7878', commands: ['proxy'], help: 'proxy listener' },
  admin: { type: 'string', default: '0.0.0.0:7879', commands: BOTH, help: '/livez, /readyz, /metrics' },
  readiness: { type: 'string', default: 'breakers', commands: ['proxy'], help: 'breakers | local' },
  'unready-after': { type: 'string', default: '10s', commands: ['proxy'], help: 'unready after every endpoint of a required upstream was unavailable this long' },
  drain: { type: 'string', default: '30s', commands: ['proxy'], help: 'on SIGTERM, let in-flight requests finish this long' },
  'max-connections': { type: 'string', default: String(DEFAULT_EDGE_LIMITS.maxConnections), commands: ['proxy'], help: 'open connections from the app at most' },
  'max-buffered-bytes': { type: 'string', default: String(64 * 1024 * 1024), commands: ['proxy'], help: 'request and response bytes held in memory at once, at most' },
  'log-level': { type: 'string', default: 'info', commands: BOTH, help: 'fatal | error | warn | info | debug | trace | silent' },
  'event-loop-metrics': { type: 'boolean', commands: BOTH, help: 'also export breakwater_nodejs_eventloop_lag_* (a 10 ms sampling timer: ~100 wake-ups a second)' },
  'lease-namespace': { type: 'string', commands: ['controller'], help: 'namespace of the Lease (default: --pod-namespace)' },
  'lease-name': { type: 'string', default: 'breakwater-controller', commands: ['controller'], help: 'name of the Lease' },
  identity: { type: 'string', commands: ['controller'], help: 'this replica in the Lease (default: hostname + random)' },
  'field-manager': { type: 'string', default: 'breakwater-controller', commands: ['controller'], help: 'field manager of status writes' },
  'lease-duration': { type: 'string', default: '15s', commands: ['controller'], help: 'how long a Lease holds without renewal' },
  'renew-deadline': { type: 'string', default: '10s', commands: ['controller'], help: 'the holder stops writing when its last renewal is older' },
  'retry-period': { type: 'string', default: '2s', commands: ['controller'], help: 'between acquire/renew attempts' },
  resync: { type: 'string', default: '5m', commands: ['controller'], help: 'recompute every status this often' },
  'pod-namespace': { type: 'string', commands: ['controller'], help: 'the controller\'s own namespace (default: the ServiceAccount\'s)' },
  'webhook-listen': { type: 'string', default: '0.0.0.0:8443', commands: ['controller'], help: 'HTTPS injection webhook (/inject), or off' },
  'webhook-config-name': { type: 'string', default: 'breakwater-webhook', commands: ['controller'], help: 'MutatingWebhookConfiguration whose caBundle the controller fills' },
  'webhook-service': { type: 'string', default: 'breakwater-webhook', commands: ['controller'], help: 'Service in front of the webhook (its DNS names go in the certificate)' },
  'webhook-extra-san': { type: 'string', multiple: true, commands: ['controller'], help: 'more names or IPs for the serving certificate' },
  'webhook-cert-secret': { type: 'string', default: 'breakwater-webhook-tls', commands: ['controller'], help: 'kubernetes.io/tls Secret holding the webhook CA and serving certificate' },
  'webhook-cert-dir': { type: 'string', commands: ['controller'], help: 'cert-manager mode: tls.crt/tls.key from this directory; no Secret, no caBundle patch' },
  'webhook-recheck': { type: 'string', default: '10s', commands: ['controller'], help: 'how often the certificate Secret and the caBundle are checked' },
  'shutdown-delay': { type: 'string', default: '3s', commands: ['controller'], help: 'on SIGTERM, keep answering the webhook this long while /readyz is 503' },
  'injection-config': { type: 'string', commands: ['controller'], help: 'YAML of the sidecar values (the chart\'s sidecar: block)' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;
type Spec<K extends FlagName> = (typeof FLAGS)[K];
type FlagValue<K extends FlagName> = Spec<K> extends { type: 'boolean' }
  ? boolean
  : Spec<K> extends { multiple: true }
    ? string[]
    : Spec<K> extends { default: string }
      ? string
      : string | undefined;
export type FlagsOf<C extends Command> = { [K in FlagName as C extends Spec<K>['commands'][number] ? K : never]: FlagValue<K> };

/** A bad flag: main.ts prints it as one line and exits non-zero. */
export class UsageError extends Error {
  readonly code = 'BREAKWATER_USAGE';
}

export function envName(flag: FlagName): string {
  return `BREAKWATER_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function flagsFor(command: Command): FlagName[] {
  return (Object.keys(FLAGS) as FlagName[]).filter((name) => (FLAGS[name].commands as readonly Command[]).includes(command));
}

/** --flag, else BREAKWATER_FLAG, else the default. */
export function parseFlags<C extends Command>(command: C, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): FlagsOf<C> {
  const names = flagsFor(command);
  const options: ParseArgsOptionsConfig = {};
  for (const name of names) {
    const spec: FlagSpec = FLAGS[name];
    options[name] = spec.multiple ? { type: 'string', multiple: true } : { type: spec.type };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
  const out: Record<string, string | boolean | string[] | undefined> = {};
  for (const name of names) {
    const spec: FlagSpec = FLAGS[name];
    const given = values[name];
    const fromEnv = env[envName(name)];
    if (spec.type === 'boolean') {
      out[name] = given !== undefined ? given === true : fromEnv === 'true' || fromEnv === '1';
    } else if (spec.multiple) {
      const raw = given !== undefined ? (given as string[]) : fromEnv !== undefined ? [fromEnv] : [];
      out[name] = raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
    } else {
      out[name] = given !== undefined ? String(given) : (fromEnv ?? spec.default);
    }
  }
  return out as FlagsOf<C>;
}

export function parseHostPort(value: string, flag: FlagName): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--${flag}: "${value}" is not HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function durationFlag(value: string, flag: FlagName): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`--${flag}: "${value}" is not a duration (e.g. 10s)`);
  }
}

export function countFlag(value: string, flag: FlagName): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1) throw new UsageError(`--${flag}: "${value}" is not a whole number >= 1`);
  return n;
}

/** In a pod, the namespace comes from the mounted ServiceAccount. */
export function serviceAccountNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function usage(): string {
  const lines = (command: Command) => {
    const rows = flagsFor(command).map((name) => {
      const spec: FlagSpec = FLAGS[name];
      const value = spec.type === 'boolean' ? '' : ` ${spec.default ?? 'VALUE'}`;
      return [`--${name}${value}${spec.multiple ? ' ...' : ''}`, spec.help] as const;
    });
    const width = Math.max(...rows.map(([flag]) => flag.length));
    return rows.map(([flag, help]) => `    ${flag.padEnd(width)}  ${help}`).join('\n');
  };
  return `usage:
  breakwater proxy (--config FILE | --kubernetes) [flags]
${lines('proxy')}
  breakwater controller [flags]
${lines('controller')}
  breakwater fake [--listen 127.0.0.1:8081] [--name NAME]
Every flag has an environment twin: --unready-after is BREAKWATER_UNREADY_AFTER (a repeatable
flag's twin is a comma list).`;
}

// ---- the sidecar container ------------------------------------------------------------------

/** The injected init container's name; its presence marks a pod as injected. */
export const SIDECAR_NAME = 'breakwater';
export const PROXY_PORT_NAME = 'bw-proxy';
export const ADMIN_PORT_NAME = 'bw-admin';

type ProxyFlag = keyof FlagsOf<'proxy'>;

interface Probe {
  httpGet: { path: string; port: number };
  periodSeconds: number;
  timeoutSeconds?: number;
  failureThreshold: number;
}

/** The fields of a core/v1 Container that the sidecar sets. */
export interface SidecarContainer {
  name: string;
  image: string;
  imagePullPolicy: string;
  restartPolicy: 'Always';
  args: string[];
  env: (EnvVar | { name: string; valueFrom: { fieldRef: { fieldPath: string } } })[];
  ports: { name: string; containerPort: number; protocol: 'TCP' }[];
  startupProbe: Probe;
  readinessProbe: Probe;
  livenessProbe: Probe;
  resources: SidecarValues['resources'];
  securityContext: {
    runAsNonRoot: true;
    runAsUser: number;
    runAsGroup: number;
    readOnlyRootFilesystem: true;
    allowPrivilegeEscalation: false;
    capabilities: { drop: ['ALL'] };
    seccompProfile: { type: 'RuntimeDefault' };
  };
  terminationMessagePolicy: 'FallbackToLogsOnError';
}

/** The uid/gid the sidecar runs as (numeric, so the kubelet can check runAsNonRoot). */
export const SIDECAR_UID = 65532;

/**
 * The native sidecar (an init container with restartPolicy Always, Kubernetes >= 1.29):
 * `breakwater proxy --kubernetes` with every setting as a flag from the shared table, the
 * pod's namespace from the downward API, probes on the admin port, locked down.
 */
export function sidecarContainer(values: SidecarValues): SidecarContainer {
  const flags: [ProxyFlag, string][] = [
    ['listen', `127.0.0.1:${values.proxyPort}`],
    ['admin', `0.0.0.0:${values.adminPort}`],
    ['readiness', values.readiness],
    ['unready-after', values.unreadyAfter],
    ['drain', values.drain],
    ['log-level', values.logLevel],
  ];
  const probe = (path: string, periodSeconds: number, failureThreshold: number, timeoutSeconds?: number): Probe => ({
    httpGet: { path, port: values.adminPort },
    periodSeconds,
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
    failureThreshold,
  });
  return {
    name: SIDECAR_NAME,
    image: values.image,
    imagePullPolicy: values.imagePullPolicy,
    restartPolicy: 'Always',
    args: ['proxy', '--kubernetes', ...flags.flatMap(([name, value]) => [`--${name}`, value])],
    env: [{ name: envName('namespace'), valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }, ...values.env],
    ports: [
      { name: PROXY_PORT_NAME, containerPort: values.proxyPort, protocol: 'TCP' },
      { name: ADMIN_PORT_NAME, containerPort: values.adminPort, protocol: 'TCP' },
    ],
    startupProbe: probe('/readyz', 1, 60),
    readinessProbe: probe('/readyz', 5, 1),
    livenessProbe: probe('/livez', 10, 3, 3),
    resources: values.resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}
