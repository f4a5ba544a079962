// `bin/breakwater proxy --config FILE` as a real child process, for what only a process of its
// own can show (its resident memory, its V8 and malloc flags): the compiled build or the sources,
// whichever bin/breakwater picks. It runs under the e2e harness's process management (its own
// process group, SIGKILLed with the test process however that dies), its config and log live in
// a temp dir removed on stop (or by the harness's watchdog), and both ports are chosen by the
// kernel (127.0.0.1:0) and read back from its log, so nothing is left behind and no port races.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDir, logTail, startProcess, stopProcess } from '../e2e/harness/processes.ts';
import { waitFor } from './wait.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'breakwater');

export interface ChildProxy {
  pid: number;
  /** the proxy, http://127.0.0.1:PORT */
  base: string;
  /** the admin server, http://127.0.0.1:PORT (/metrics, /readyz) */
  admin: string;
  /** the last lines of its log, for failure messages */
  logTail(lines?: number): string;
  /** SIGTERM, SIGKILL after 5 s; then its temp dir is removed */
  stop(): Promise<void>;
}

export interface ChildProxyOptions {
  /** the LLMUpstream YAML stream for --config */
  yaml: string;
  /** added to the child's environment (e.g. the endpoints' auth env) */
  env?: Record<string, string>;
}

/** the host:port a log line with this message names in `field` */
function listening(log: string, msg: string, field: string): string | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes(`"${msg}"`)) continue;
    const value = (JSON.parse(line) as Record<string, unknown>)[field];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/** Starts the child and resolves once its config is applied and /readyz answers 200. */
export async function startChildProxy(options: ChildProxyOptions): Promise<ChildProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-child-'));
  const unguard = guardDir(dir);
  const config = join(dir, 'upstreams.yaml');
  const logFile = join(dir, 'breakwater.log');
  writeFileSync(config, options.yaml);
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  // `env` execs, and so does bin/breakwater: the pid is node's own
  const proc = await startProcess('breakwater', 'env', [...env, BIN, 'proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--drain', '2s'], logFile);
  const stop = async () => {
    await stopProcess(proc, 5_000);
    rmSync(dir, { recursive: true, force: true });
    unguard();
  };
  const log = () => readFileSync(logFile, 'utf8');
  try {
    // a child that exits while starting fails at once, not at the wait's timeout
    const exited = proc.exited.then(() => Promise.reject(new Error('bin/breakwater exited while starting')));
    exited.catch(() => {}); // once started, its later exit (stop()) is no one's error
    const [listen, admin] = await Promise.race([
      exited,
      waitFor(
        'the proxy and admin ports in the log',
        () => {
          const text = log();
          const ports = [listening(text, 'proxy listening', 'listen'), listening(text, 'admin server listening', 'admin')];
          return ports.every((p) => p !== undefined) ? (ports as [string, string]) : undefined;
        },
        30_000,
      ),
    ]);
    await Promise.race([exited, waitFor('/readyz 200', async () => (await fetch(`http://${admin}/readyz`)).status === 200, 20_000)]);
    return { pid: proc.pid, base: `http://${listen}`, admin: `http://${admin}`, logTail: (lines) => logTail(logFile, lines), stop };
  } catch (err) {
    const tail = logTail(logFile);
    await stop();
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
}
