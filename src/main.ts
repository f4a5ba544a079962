// Entrypoint: `breakwater proxy|controller|fake`. Flags have environment twins
// (BREAKWATER_CONFIG, BREAKWATER_LISTEN, ...). A bad flag or an invalid config at start exits
// non-zero with one line that names the problem.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { startProxy, type SourceOptions } from './app.ts';
import { ConfigError } from './config/compile.ts';
import { parseDuration } from './config/duration.ts';
import { createLogger } from './telemetry/log.ts';
import { DEFAULT_EDGE_LIMITS } from './proxy/limits.ts';

const PROXY_FLAGS = {
  config: { type: 'string' },
  kubernetes: { type: 'boolean' },
  namespace: { type: 'string' },
  listen: { type: 'string', default: '127.0.0.1:7878' },
  admin: { type: 'string', default: '0.0.0.0:7879' },
  readiness: { type: 'string', default: 'breakers' },
  'unready-after': { type: 'string', default: '10s' },
  drain: { type: 'string', default: '30s' },
  'max-connections': { type: 'string', default: String(DEFAULT_EDGE_LIMITS.maxConnections) },
  'log-level': { type: 'string', default: 'info' },
  'max-buffered-bytes': { type: 'string', default: String(256 * 1024 * 1024) },
} as const;

export class UsageError extends Error {}

/** --flag, else BREAKWATER_FLAG, else the default */
function withEnv(argv: string[], flags: Record<string, { type: string; default?: string | boolean }>) {
  const { values } = parseArgs({ args: argv, options: flags as typeof PROXY_FLAGS, strict: true, allowPositionals: false });
  const out: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(flags)) {
    const env = process.env[`BREAKWATER_${name.toUpperCase().replace(/-/g, '_')}`];
    const given = (values as Record<string, string | boolean | undefined>)[name];
    const explicit = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    out[name] = explicit ? given : env !== undefined ? (spec.type === 'boolean' ? env === 'true' || env === '1' : env) : given;
  }
  return out;
}

export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--${flag}: "${value}" is not HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function durationFlag(value: string, flag: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`--${flag}: "${value}" is not a duration (e.g. 10s)`);
  }
}

function countFlag(value: string, flag: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1) throw new UsageError(`--${flag}: "${value}" is not a whole number >= 1`);
  return n;
}

async function proxy(argv: string[]): Promise<void> {
  const flags = withEnv(argv, PROXY_FLAGS);
  const log = createLogger({ level: String(flags['log-level']) });
  if (!flags.config && !flags.kubernetes) throw new UsageError('proxy needs --config FILE or --kubernetes');
  if (flags.readiness !== 'breakers' && flags.readiness !== 'local') throw new UsageError(`--readiness: "${String(flags.readiness)}" is not breakers or local`);
  const listen = parseHostPort(String(flags.listen), 'listen');
  const drainMs = durationFlag(String(flags.drain), 'drain');
  const unreadyAfterMs = durationFlag(String(flags['unready-after']), 'unready-after');
  const admin = parseHostPort(String(flags.admin), 'admin');
  const maxBufferedBytes = Number(flags['max-buffered-bytes']);
  if (!Number.isSafeInteger(maxBufferedBytes) || maxBufferedBytes < 1024 * 1024) {
    throw new UsageError(`--max-buffered-bytes: "${String(flags['max-buffered-bytes'])}" is not a byte count of at least 1048576`);
  }
  const maxConnections = countFlag(String(flags['max-connections']), 'max-connections');

  const source: SourceOptions = flags.kubernetes
    ? { kind: 'kubernetes', namespace: String(flags.namespace ?? readServiceAccountNamespace() ?? 'default'), kubeconfig: process.env.KUBECONFIG }
    : { kind: 'file', path: String(flags.config) };
  const running = await startProxy({ source, listen, drainMs, log, admin, readiness: flags.readiness, unreadyAfterMs, maxBufferedBytes, limits: { maxConnections } });
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

/** In a pod, the namespace comes from the mounted ServiceAccount. */
function readServiceAccountNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function controller(argv: string[]): Promise<void> {
  const { runController } = await import('./controller/main.ts');
  await runController(argv);
}

async function fake(argv: string[]): Promise<void> {
  const { fakeCli } = await import('./fake/server.ts');
  await fakeCli(argv);
}

const USAGE = `usage:
  breakwater proxy --config FILE [--listen 127.0.0.1:7878] [--admin 0.0.0.0:7879] [--readiness breakers|local] [--unready-after 10s] [--drain 30s] [--max-connections 1024] [--max-buffered-bytes N] [--log-level info]
  breakwater proxy --kubernetes [--namespace NS]
  breakwater controller
  breakwater fake [--listen 127.0.0.1:8081] [--name NAME]`;

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
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`breakwater: invalid config: ${err.message}`);
  } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`breakwater: ${(err as Error).message}`);
  } else {
    console.error(`breakwater: ${(err as Error).stack ?? String(err)}`);
  }
  process.exit(2);
});
