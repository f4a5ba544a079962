// Child processes for the benchmark: each runs in its own process group (so nginx's workers
// go with their master), is remembered, and is killed by its id when the benchmark ends,
// fails or is interrupted. Also the /proc readers: CPU ticks of a process group, RSS, and the
// machine's busy time (to tell when something else on the box was eating the CPU).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

const live = new Set<ChildProcess>();

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** stdout + stderr so far (capped) */
  output(): string;
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** CPU list for taskset, e.g. "1"; undefined: not pinned */
  cpus?: string;
  /** stdout and stderr go to this file (as a container runtime would take them), not to a pipe */
  logFile?: string;
}

export function start(command: string, args: string[], options: SpawnOptions = {}): Spawned {
  const argv = options.cpus !== undefined ? ['taskset', '-c', options.cpus, command, ...args] : [command, ...args];
  const fd = options.logFile !== undefined ? openSync(options.logFile, 'w') : undefined;
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true, // own process group: killed as a group, by its id
    stdio: fd !== undefined ? ['ignore', fd, fd] : ['ignore', 'pipe', 'pipe'],
  });
  if (fd !== undefined) closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  live.add(child);
  let out = '';
  const keep = (chunk: Buffer) => {
    if (out.length < 256 * 1024) out += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
    child.once('error', (err) => {
      live.delete(child);
      out += `\n${String(err)}`;
      resolve(-1);
    });
  });
  const output = () => {
    if (options.logFile === undefined) return out;
    try {
      return readFileSync(options.logFile, 'utf8').slice(-256 * 1024);
    } catch {
      return '';
    }
  };
  return { child, pid: child.pid, output, exited };
}

/** Runs a command to completion within timeoutMs (killed past it). */
export async function run(command: string, args: string[], timeoutMs: number, options: SpawnOptions = {}): Promise<{ code: number | null; output: string; stdout: string }> {
  const p = start(command, args, options);
  let stdout = '';
  p.child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const timer = setTimeout(() => killGroup(p.child, 'SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output(), stdout };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM, then SIGKILL after graceMs. */
export async function stop(p: Spawned, graceMs = 3000): Promise<void> {
  if (!live.has(p.child)) return;
  killGroup(p.child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(p.child, 'SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
  // nginx workers or anything else left in the group
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    /* group empty */
  }
}

/** Synchronous: safe inside process.on('exit'). */
export function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

let installed = false;
/** Kill every child on exit, on SIGINT/SIGTERM/SIGHUP, and on an uncaught error. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}: stopping children`);
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error('bench: failed:', err);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error('bench: failed:', err);
    killAll();
    process.exit(1);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// ---- /proc ----

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** fields after the command name: index 0 is field 3 (state) of proc(5) */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime+stime (all threads) of one process, in ticks */
export function cpuTicks(pid: number | 'self'): number {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : 0;
}

/** cutime+cstime: CPU of this process's reaped children (the load generators) */
export function childTicks(): number {
  const f = statFields('self');
  return f ? Number(f[13]) + Number(f[14]) : 0;
}

/** utime+stime summed over every live process of a process group (nginx master + workers) */
export function groupTicks(pgid: number): number {
  let sum = 0;
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const f = statFields(Number(name));
    if (f && Number(f[2]) === pgid) sum += Number(f[11]) + Number(f[12]);
  }
  return sum;
}

/** busy and total jiffies of the whole machine (/proc/stat first line) */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

export function memoryKb(pid: number): { rssKb: number; hwmKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: get('VmRSS'), hwmKb: get('VmHWM') };
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout?.trim();
  return r.status === 0 && p ? p : undefined;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
