// Entrypoint: `breakwater proxy|controller|fake`. Flags have environment twins
// (BREAKWATER_CONFIG, BREAKWATER_LISTEN, ...). A bad flag or an invalid config at start exits
// non-zero with one line that names the problem.
import { countFlag, durationFlag, parseFlags, parseHostPort, serviceAccountNamespace, usage, UsageError } from './cli.ts';
import { startProxy, type SourceOptions } from './app.ts';
import { ConfigError } from './config/errors.ts';
import { createLogger } from './telemetry/log.ts';

async function proxy(argv: string[]): Promise<void> {
  const flags = parseFlags('proxy', argv);
  const log = createLogger({ level: flags['log-level'] });
  if (!flags.config && !flags.kubernetes) throw new UsageError('proxy needs --config FILE or --kubernetes');
  const readiness = flags.readiness;
  if (readiness !== 'breakers' && readiness !== 'local') throw new UsageError(`--readiness: "${readiness}" is not breakers or local`);
  const listen = parseHostPort(flags.listen, 'listen');
  const drainMs = durationFlag(flags.drain, 'drain');
  const unreadyAfterMs = durationFlag(flags['unready-after'], 'unready-after');
  const admin = parseHostPort(flags.admin, 'admin');
  const maxBufferedBytes = Number(flags['max-buffered-bytes']);
  if (!Number.isSafeInteger(maxBufferedBytes) || maxBufferedBytes < 1024 * 1024) {
    throw new UsageError(`--max-buffered-bytes: "${flags['max-buffered-bytes']}" is not a byte count of at least 1048576`);
  }
  const maxConnections = countFlag(flags['max-connections'], 'max-connections');

  const source: SourceOptions = flags.kubernetes
    ? { kind: 'kubernetes', namespace: flags.namespace ?? serviceAccountNamespace() ?? 'default', kubeconfig: flags.kubeconfig ?? process.env.KUBECONFIG }
    : { kind: 'file', path: String(flags.config) };
  const eventLoopMetrics = flags['event-loop-metrics'];
  const running = await startProxy({ source, listen, drainMs, log, admin, readiness, unreadyAfterMs, maxBufferedBytes, limits: { maxConnections }, eventLoopMetrics });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, drainMs, inflight: running.server.inflight }, 'shutting down: no new requests, draining in-flight ones');
    const { drained } = await running.shutdown();
    log.info({ drained }, drained ? 'drained; exiting' : 'drain time over; closed the remaining connections');
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => running.source?.reload());
}

async function controller(argv: string[]): Promise<void> {
  const { runController } = await import('./controller/main.ts');
  await runController(argv);
}

async function fake(argv: string[]): Promise<void> {
  const { fakeCli } = await import('./fake/server.ts');
  await fakeCli(argv);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'proxy':
      return proxy(rest);
    case 'fake':
      return fake(rest);
    case 'controller':
      return controller(rest);
    case undefined:
    case '-h':
    case '--help':
      console.log(usage());
      return;
    default:
      throw new UsageError(`unknown command "${command}"\n${usage()}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`breakwater: invalid config: ${err.message}`);
  } else if ((err as { code?: string }).code === 'BREAKWATER_SIDECAR_VALUES') {
    // sidecar.ts's SidecarValuesError, told by its code: importing it would load TypeBox into every proxy
    console.error(`breakwater: invalid --injection-config: ${(err as Error).message}`);
  } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`breakwater: ${(err as Error).message}`);
  } else {
    console.error(`breakwater: ${(err as Error).stack ?? String(err)}`);
  }
  process.exit(2);
});
