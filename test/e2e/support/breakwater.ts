// Breakwater itself as child processes under the harness's process management (own process
// group, killed with the test process however it dies): `bin/breakwater proxy --kubernetes` as
// the sidecar identity and `bin/breakwater controller` as the controller identity.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, pauseProcess, resumeProcess, startProcess, stopProcess, type ManagedProcess } from '../harness/processes.ts';
import type { ControlPlane } from '../harness.ts';
import { REPO } from './cluster.ts';
import { waitUntil } from './wait.ts';

const BIN = join(REPO, 'bin', 'breakwater');

export interface Child {
  readonly proc: ManagedProcess;
  /** the whole log so far */
  log(): string;
  /** parsed JSON log lines */
  lines(): Record<string, unknown>[];
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

function child(proc: ManagedProcess): Child {
  const log = () => {
    try {
      return readFileSync(proc.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    proc,
    log,
    lines: () =>
      log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    pause: () => pauseProcess(proc),
    resume: () => resumeProcess(proc),
    stop: () => stopProcess(proc, 5_000),
  };
}

/** `env K=V ... bin/breakwater ...`: env execs, so the pid is Breakwater's own. */
async function spawnBreakwater(cp: ControlPlane, name: string, env: Record<string, string>, args: string[]): Promise<ManagedProcess> {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return startProcess(name, 'env', [...assignments, BIN, ...args], join(cp.dir, 'logs', `${name}.log`));
}

export interface Sidecar extends Child {
  port: number;
  base: string;
  /** http://127.0.0.1:ADMIN (/metrics, /readyz) */
  admin: string;
  /** the value of a metric series in /metrics, e.g. breakwater_config_watch_healthy{source="kubernetes"} */
  metric(series: string): Promise<number | undefined>;
}

export async function startSidecar(cp: ControlPlane, namespace: string, opts: { name?: string; env?: Record<string, string> } = {}): Promise<Sidecar> {
  const port = await freePort();
  const admin = await freePort();
  const name = opts.name ?? 'sidecar';
  const proc = await spawnBreakwater(
    cp,
    name,
    { KUBECONFIG: cp.kubeconfig.sidecar, BREAKWATER_LOG_LEVEL: 'debug', ...opts.env },
    ['proxy', '--kubernetes', '--namespace', namespace, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--drain', '2s'],
  );
  const c = child(proc);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(`${name} listening`, async () => {
      if (proc.hasExited()) throw new Error(`${name} exited:\n${c.log().slice(-3000)}`);
      const res = await fetch(`${base}/-/probe`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      return res !== undefined;
    }, 30_000);
  } catch (err) {
    await c.stop();
    throw err;
  }
  const adminBase = `http://127.0.0.1:${admin}`;
  const metric = async (series: string): Promise<number | undefined> => {
    const text = await (await fetch(`${adminBase}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  return { ...c, port, base, admin: adminBase, metric };
}

export interface Controller extends Child {
  /** http://127.0.0.1:ADMIN (/livez, /readyz, /metrics) */
  admin: string;
}

/**
 * `breakwater controller` as the controller identity. Its admin server gets a free loopback
 * port; the webhook is off unless `args` turn it on (--webhook-listen ...).
 */
export async function startController(
  cp: ControlPlane,
  namespace: string,
  opts: { name?: string; identity?: string; fieldManager?: string; args?: string[]; env?: Record<string, string> } = {},
): Promise<Controller> {
  const name = opts.name ?? 'controller';
  const admin = await freePort();
  const args = opts.args ?? [];
  const proc = await spawnBreakwater(cp, name, { KUBECONFIG: cp.kubeconfig.controller, ...opts.env }, [
    'controller',
    '--namespace',
    namespace,
    '--lease-namespace',
    'breakwater-system',
    '--pod-namespace',
    'breakwater-system',
    '--admin',
    `127.0.0.1:${admin}`,
    ...(args.includes('--webhook-listen') ? [] : ['--webhook-listen', 'off']),
    ...(opts.identity ? ['--identity', opts.identity] : []),
    ...(opts.fieldManager ? ['--field-manager', opts.fieldManager] : []),
    ...args,
  ]);
  const c = child(proc);
  await waitUntil(`${name} started`, async () => {
    if (proc.hasExited()) throw new Error(`${name} exited:\n${c.log().slice(-3000)}`);
    return c.log().includes('controller started');
  }, 30_000);
  return { ...c, admin: `http://127.0.0.1:${admin}` };
}
