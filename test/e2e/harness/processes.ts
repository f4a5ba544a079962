// Child processes for the e2e control plane: each runs in its own process
// group, is stopped by group, and cannot outlive the test process (an 'exit'
// hook SIGKILLs what is left, and a small watchdog shell kills the group if
// the test process dies without running its hooks).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (and been reaped). */
  readonly exited: Promise<void>;
  hasExited(): boolean;
}

interface Entry {
  proc: ManagedProcess;
  child: ChildProcess;
  watchdog: ChildProcess | undefined;
}

const live = new Map<number, Entry>();
const guardedDirs = new Map<string, ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const { proc, watchdog } of live.values()) {
      signalGroup(proc.pid, 'SIGKILL');
      if (watchdog?.pid !== undefined) signalPid(watchdog.pid, 'SIGKILL');
    }
    for (const [dir, watchdog] of guardedDirs) {
      if (watchdog.pid !== undefined) signalPid(watchdog.pid, 'SIGKILL');
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

/**
 * A detached shell that waits for this process to die (however it dies), then
 * runs `then`. It polls once a second and is killed when no longer needed.
 */
function spawnWatchdog(then: string): ChildProcess {
  const watchdog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${then}; exit 0`], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.on('error', () => {});
  watchdog.unref();
  return watchdog;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Removes `dir` when this process exits without calling the returned function
 * (an 'exit' hook, or a watchdog if the process is killed outright).
 * The returned function cancels that; removing the dir is then the caller's job.
 */
export function guardDir(dir: string): () => void {
  installExitHook();
  // The short sleep lets the process watchdogs kill their groups first.
  const watchdog = spawnWatchdog(`sleep 1; rm -rf ${shellQuote(dir)}`);
  guardedDirs.set(dir, watchdog);
  return () => {
    if (watchdog.pid !== undefined) signalPid(watchdog.pid, 'SIGKILL');
    guardedDirs.delete(dir);
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** True while a process with this pid exists (a zombie counts as gone only once reaped). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Starts `command` in a new process group, stdout and stderr appended to `logFile`. */
export async function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  logFile: string,
): Promise<ManagedProcess> {
  installExitHook();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid as number));
    child.once('error', reject);
  });
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
  });
  child.unref();

  // dash's kill takes `-9 -PGID` (not `-KILL -- -PGID`).
  const watchdog = spawnWatchdog(`kill -9 -${pid} 2>/dev/null`);

  const proc: ManagedProcess = { name, pid, logFile, exited, hasExited: () => done };
  const entry: Entry = { proc, child, watchdog };
  live.set(pid, entry);
  void exited.then(() => {
    // The group may hold nothing else, but make sure, then retire the watchdog.
    signalGroup(pid, 'SIGKILL');
    if (watchdog.pid !== undefined) signalPid(watchdog.pid, 'SIGKILL');
    live.delete(pid);
  });
  return proc;
}

/** SIGTERM to the group (SIGCONT first, in case it is paused), SIGKILL after `graceMs`. */
export async function stopProcess(proc: ManagedProcess, graceMs = 10_000): Promise<void> {
  if (!proc.hasExited()) {
    if (graceMs > 0) {
      signalGroup(proc.pid, 'SIGCONT');
      signalGroup(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs);
      await proc.exited;
      clearTimeout(timer);
    } else {
      signalGroup(proc.pid, 'SIGKILL');
      await proc.exited;
    }
  }
  const entry = live.get(proc.pid);
  if (entry?.watchdog?.pid !== undefined) signalPid(entry.watchdog.pid, 'SIGKILL');
  live.delete(proc.pid);
}

export function pauseProcess(proc: ManagedProcess): void {
  signalGroup(proc.pid, 'SIGSTOP');
}

export function resumeProcess(proc: ManagedProcess): void {
  signalGroup(proc.pid, 'SIGCONT');
}

/** The last `lines` lines of a log file, for error messages. */
export function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** Polls `check` until it returns true; fails early if `proc` exits. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; proc?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.proc?.hasExited()) {
      throw new Error(`${opts.proc.name} exited while waiting for ${what}:\n${logTail(opts.proc.logFile)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
  const tail = opts.proc ? `\n${logTail(opts.proc.logFile)}` : '';
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what} (${String(lastError)})${tail}`);
}
