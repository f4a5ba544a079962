// `breakwater controller [--namespace NS | --all-namespaces] [--kubeconfig FILE]`: the one
// writer of LLMUpstream status. Every replica watches LLMUpstreams and the Secrets they name;
// only the holder of the coordination.k8s.io Lease writes, and it checks that it still holds
// an unexpired lease right before each write (fencing).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/duration.ts';
import type { UpstreamStatus } from '../config/schema.ts';
import { staleAfterFromEnv, watchTimeoutSeconds, type UpstreamObject } from '../config/sources/kubernetes.ts';
import { KubeClient, loadKubeConfig, paths } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { WorkQueue } from '../kube/queue.ts';
import { SecretStore, secretRefsOf } from '../kube/secrets.ts';
import { createLogger, type Logger } from '../telemetry/log.ts';
import { LeaderElector } from '../kube/lease.ts';
import { desiredStatus, patchStatus, sameStatus } from './status.ts';

const FLAGS = {
  namespace: { type: 'string' },
  'all-namespaces': { type: 'boolean' },
  kubeconfig: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string', default: 'breakwater-controller' },
  identity: { type: 'string' },
  'field-manager': { type: 'string', default: 'breakwater-controller' },
  'lease-duration': { type: 'string', default: '15s' },
  'renew-deadline': { type: 'string', default: '10s' },
  'retry-period': { type: 'string', default: '2s' },
  resync: { type: 'string', default: '5m' },
  'log-level': { type: 'string', default: 'info' },
} as const;

type Flags = { [K in keyof typeof FLAGS]: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean | undefined : string | undefined };

/** A bad flag. Its code is node:util parseArgs' own, so main.ts prints it as one usage line. */
export class ControllerUsageError extends Error {
  readonly code = 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE';
}

/** --flag, else BREAKWATER_FLAG, else the default (as for `breakwater proxy`). */
export function parseControllerFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): Flags {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  const out: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(FLAGS)) {
    const fromEnv = env[`BREAKWATER_${name.toUpperCase().replace(/-/g, '_')}`];
    const explicit = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    const given = (values as Record<string, string | boolean | undefined>)[name];
    out[name] = explicit || fromEnv === undefined ? given : spec.type === 'boolean' ? fromEnv === 'true' || fromEnv === '1' : fromEnv;
  }
  return out as Flags;
}

function duration(flags: Flags, name: 'lease-duration' | 'renew-deadline' | 'retry-period' | 'resync'): number {
  try {
    return parseDuration(String(flags[name]));
  } catch {
    throw new ControllerUsageError(`--${name}: "${String(flags[name])}" is not a duration (e.g. 15s)`);
  }
}

function serviceAccountNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface RunningController {
  stop(): Promise<void>;
}

export async function startController(flags: Flags, log: Logger): Promise<RunningController> {
  if (flags.namespace && flags['all-namespaces']) throw new ControllerUsageError('give --namespace or --all-namespaces, not both');
  const namespace = flags['all-namespaces'] ? undefined : (flags.namespace ?? serviceAccountNamespace() ?? 'default');
  const leaseNamespace = flags['lease-namespace'] ?? flags.namespace ?? serviceAccountNamespace() ?? 'default';
  const identity = flags.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  const fieldManager = String(flags['field-manager']);
  const resyncMs = duration(flags, 'resync');
  const leaseDurationMs = duration(flags, 'lease-duration');
  const renewDeadlineMs = duration(flags, 'renew-deadline');
  const retryPeriodMs = duration(flags, 'retry-period');
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new ControllerUsageError('--retry-period < --renew-deadline < --lease-duration is required (fencing: the holder stops writing before another replica may take over)');
  }
  const timeoutSeconds = watchTimeoutSeconds(staleAfterFromEnv());
  const client = new KubeClient(loadKubeConfig(flags.kubeconfig ?? process.env.KUBECONFIG));

  const keyOf = (o: UpstreamObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;
  const enqueueAll = (): void => {
    for (const o of upstreams.list()) queue.add(keyOf(o));
  };
  /** every replica keeps the Secrets warm, so a new leader has them at once */
  const watchSecrets = (): void => secrets.want(upstreams.list().flatMap((o) => secretRefsOf(o)));

  const sync = async (key: string): Promise<void> => {
    if (!elector.holds()) return; // followers keep caches warm and write nothing
    const slash = key.indexOf('/');
    const obj = upstreams.get(key.slice(slash + 1), key.slice(0, slash));
    if (!obj) return;
    const refs = secretRefsOf(obj);
    await secrets.settled(refs, 5_000);
    const current = (obj as { status?: UpstreamStatus }).status;
    // throws SecretPendingError while a Secret has not answered: retried with backoff
    const desired = desiredStatus(obj, secrets.resolver(), current);
    if (sameStatus(current, desired)) return;
    // Fencing: the lease must still be ours, now, right before the write.
    if (!elector.holds()) {
      log.info({ upstream: key }, 'not writing status: the lease is no longer held');
      return;
    }
    await patchStatus(client, obj, desired, fieldManager);
    const accepted = desired.conditions?.find((c) => c.type === 'Accepted');
    const refsCondition = desired.conditions?.find((c) => c.type === 'ResolvedRefs');
    log.info(
      { upstream: key, generation: desired.observedGeneration, accepted: `${accepted?.status}/${accepted?.reason}`, resolvedRefs: `${refsCondition?.status}/${refsCondition?.reason}` },
      'status written',
    );
  };

  const queue = new WorkQueue(sync, log);
  const secrets = new SecretStore({
    client,
    log,
    watchTimeoutSeconds: timeoutSeconds,
    onChange: (ref) => {
      for (const o of upstreams.list()) if (secretRefsOf(o).some((r) => r.namespace === ref.namespace && r.name === ref.name)) queue.add(keyOf(o));
    },
  });
  const upstreams = new Informer<UpstreamObject>({
    client,
    path: paths.upstreams(namespace),
    watchTimeoutSeconds: timeoutSeconds,
    log,
    what: namespace ? `llmupstreams in ${namespace}` : 'llmupstreams in all namespaces',
    onEvent: (_kind, obj) => {
      watchSecrets();
      queue.add(keyOf(obj));
    },
    onSynced: () => {
      watchSecrets();
      enqueueAll();
    },
  });
  const elector = new LeaderElector({
    client,
    namespace: leaseNamespace,
    name: String(flags['lease-name']),
    identity,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    log,
    onStartedLeading: enqueueAll,
    onStoppedLeading: () => undefined,
  });

  upstreams.start();
  elector.start();
  const resync = setInterval(enqueueAll, resyncMs);
  resync.unref();
  log.info({ scope: namespace ?? '(all namespaces)', lease: `${leaseNamespace}/${String(flags['lease-name'])}`, identity, fieldManager }, 'controller started');

  return {
    async stop() {
      clearInterval(resync);
      queue.stop();
      await elector.stop();
      await upstreams.stop();
      await secrets.close();
    },
  };
}

export async function runController(argv: string[]): Promise<void> {
  const flags = parseControllerFlags(argv);
  const log = createLogger({ level: String(flags['log-level']) });
  const running = await startController(flags, log);
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'controller stopping');
    await running.stop();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
