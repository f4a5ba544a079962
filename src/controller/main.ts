// `breakwater controller`: the status writer and the sidecar injector, built from runnables.
// On every replica: the admin server (/livez, /readyz, /metrics), the webhook's certificate
// keeper, the webhook server and the LLMUpstream cache. On the Lease holder only: the status
// writer, which also checks right before each write that it still holds an unexpired lease
// (fencing). SIGTERM: /readyz turns 503, the webhook keeps answering for --shutdown-delay (the
// Service stops routing here meanwhile), then everything stops in reverse order and the Lease
// is released.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { durationFlag, parseFlags, parseHostPort, serviceAccountNamespace, sidecarContainer, UsageError, type FlagsOf } from '../cli.ts';
import { systemClock } from '../clock.ts';
import { staleAfterFromEnv, watchTimeoutSeconds } from '../config/sources/kubernetes.ts';
import { KubeClient, loadKubeConfig } from '../kube/client.ts';
import { LeaderElector } from '../kube/lease.ts';
import { loadSidecarValues, sidecarValues } from '../sidecar.ts';
import { createLogger, type Logger } from '../telemetry/log.ts';
import { createControllerMetrics } from '../telemetry/metrics.ts';
import { DirCertKeeper, SecretCertKeeper } from './certkeeper.ts';
import { servingNames } from './certs.ts';
import { Manager, type Runnable } from './manager.ts';
import { ProbeServer } from './probes.ts';
import { UpstreamStatusController } from './upstreams.ts';
import { WebhookServer } from './webhook.ts';

type Flags = FlagsOf<'controller'>;

export interface RunningController {
  /** the admin server's port */
  adminPort: number;
  /** the webhook's port (0 when --webhook-listen off) */
  webhookPort: number;
  /** SIGTERM: unready first, then stop after the shutdown delay */
  stop(): Promise<void>;
}

export async function startController(flags: Flags, log: Logger): Promise<RunningController> {
  if (flags.namespace && flags['all-namespaces']) throw new UsageError('give --namespace or --all-namespaces, not both');
  const podNamespace = flags['pod-namespace'] ?? serviceAccountNamespace() ?? flags.namespace ?? 'default';
  const namespace = flags['all-namespaces'] ? undefined : (flags.namespace ?? serviceAccountNamespace() ?? 'default');
  const leaseNamespace = flags['lease-namespace'] ?? podNamespace;
  const identity = flags.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  const leaseDurationMs = durationFlag(flags['lease-duration'], 'lease-duration');
  const renewDeadlineMs = durationFlag(flags['renew-deadline'], 'renew-deadline');
  const retryPeriodMs = durationFlag(flags['retry-period'], 'retry-period');
  const recheckMs = durationFlag(flags['webhook-recheck'], 'webhook-recheck');
  const shutdownDelayMs = durationFlag(flags['shutdown-delay'], 'shutdown-delay');
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new UsageError('--retry-period < --renew-deadline < --lease-duration is required (fencing: the holder stops writing before another replica may take over)');
  }
  const admin = parseHostPort(flags.admin, 'admin');
  const webhookListen = flags['webhook-listen'] === 'off' ? undefined : parseHostPort(flags['webhook-listen'], 'webhook-listen');
  // a bad values file stops the controller here, naming the field, not at the first pod
  const values = flags['injection-config'] ? loadSidecarValues(flags['injection-config']) : sidecarValues(undefined);
  const client = new KubeClient(loadKubeConfig(flags.kubeconfig ?? process.env.KUBECONFIG));
  const metrics = createControllerMetrics(undefined, { eventLoop: flags['event-loop-metrics'] });
  const clock = systemClock;

  const manager = new Manager(log);
  const probes = new ProbeServer({ listen: admin, log, metrics });
  manager.add(probes, { needsLeader: false });

  let webhook: WebhookServer | undefined;
  if (webhookListen) {
    webhook = new WebhookServer({ listen: webhookListen, sidecar: sidecarContainer(values), excludeNamespaces: ['kube-system', podNamespace], log, metrics });
    const common = { log, clock, metrics, target: webhook, recheckMs };
    const keeper = flags['webhook-cert-dir']
      ? new DirCertKeeper({ ...common, dir: flags['webhook-cert-dir'] })
      : new SecretCertKeeper({
          ...common,
          client,
          namespace: podNamespace,
          secretName: flags['webhook-cert-secret'],
          names: servingNames(flags['webhook-service'], podNamespace, flags['webhook-extra-san']),
          webhookConfigName: flags['webhook-config-name'],
        });
    probes.addCheck({ name: 'webhook-certificate', check: () => keeper.notReady() });
    manager.add(keeper, { needsLeader: false });
    manager.add(webhook, { needsLeader: false });
  }

  const elector: LeaderElector = new LeaderElector({
    client,
    namespace: leaseNamespace,
    name: flags['lease-name'],
    identity,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    log,
    onStartedLeading: manager.startedLeading,
    onStoppedLeading: manager.stoppedLeading,
  });
  const status = new UpstreamStatusController({
    client,
    log,
    metrics,
    namespace,
    watchTimeoutSeconds: watchTimeoutSeconds(staleAfterFromEnv()),
    fieldManager: flags['field-manager'],
    resyncMs: durationFlag(flags.resync, 'resync'),
    holds: () => elector.holds(),
  });
  // With the webhook on, readiness is about answering admission requests (the Service routes
  // them only to ready replicas), not about LLMUpstreams: a slow list must not stop injection.
  if (!webhook) probes.addCheck({ name: 'llmupstreams', check: () => status.notReady() });
  manager.add(status.cache, { needsLeader: false });
  manager.add(status.writer, { needsLeader: true });
  const electorRunnable: Runnable = { name: 'lease', start: async () => elector.start(), stop: () => elector.stop() };
  manager.add(electorRunnable, { needsLeader: false });

  await manager.start();
  log.info(
    {
      scope: namespace ?? '(all namespaces)',
      lease: `${leaseNamespace}/${flags['lease-name']}`,
      identity,
      fieldManager: flags['field-manager'],
      webhook: webhook ? `${webhookListen!.host}:${webhook.port}` : 'off',
      certificates: flags['webhook-cert-dir'] ? `dir ${flags['webhook-cert-dir']}` : `Secret ${podNamespace}/${flags['webhook-cert-secret']}`,
    },
    'controller started',
  );

  let stopping: Promise<void> | undefined;
  return {
    adminPort: probes.port,
    webhookPort: webhook?.port ?? 0,
    stop() {
      stopping ??= (async () => {
        probes.shutdown();
        if (webhook && shutdownDelayMs > 0) await clock.sleep(shutdownDelayMs);
        await manager.stop();
      })();
      return stopping;
    },
  };
}

export async function runController(argv: string[]): Promise<void> {
  const flags = parseFlags('controller', argv);
  const log = createLogger({ level: flags['log-level'] });
  const running = await startController(flags, log);
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'controller stopping');
    await running.stop();
    log.info('controller stopped');
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
