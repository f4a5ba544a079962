// What a proxy costs while nothing happens, and its memory: idle CPU (run time of every thread of
// its process group from /proc/<pid>/task/<tid>/schedstat, in ns, over a quiet window) and wake-ups per second (voluntary +
// nonvoluntary context switches, summed over every thread of every process in the group: a
// thread that sleeps in epoll and is woken by a timer counts one voluntary switch per wake-up;
// /proc/<pid>/status alone would count only the main thread), plus VmRSS / VmHWM summed over
// the group (nginx master + worker, a Python server and its worker).
import { readFileSync, readdirSync } from 'node:fs';
import { sleep } from './procs.ts';

const isPid = (name: string) => name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57;

/** pids whose process group is pgid */
export function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!isPid(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

function statusField(text: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** `read` of every thread of every process in the group, summed (a thread that is gone counts 0) */
function sumOverThreads(pgid: number, read: (taskDir: string) => number): number {
  let sum = 0;
  for (const pid of groupPids(pgid)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        sum += read(`/proc/${pid}/task/${tid}`);
      } catch {
        /* thread gone */
      }
    }
  }
  return sum;
}

/** CPU time in ns of every thread of the group (schedstat: finer than the 10 ms ticks of stat) */
export function groupCpuNs(pgid: number): number {
  return sumOverThreads(pgid, (task) => Number(readFileSync(`${task}/schedstat`, 'utf8').split(' ')[0]));
}

/** context switches of every thread of every process in the group */
export function groupSwitches(pgid: number): number {
  return sumOverThreads(pgid, (task) => {
    const s = readFileSync(`${task}/status`, 'utf8');
    return statusField(s, 'voluntary_ctxt_switches') + statusField(s, 'nonvoluntary_ctxt_switches');
  });
}

/** VmRSS and VmHWM summed over the group's processes, in kB */
export function groupMemoryKb(pgid: number): { rssKb: number; hwmKb: number } {
  let rssKb = 0;
  let hwmKb = 0;
  for (const pid of groupPids(pgid)) {
    try {
      const s = readFileSync(`/proc/${pid}/status`, 'utf8');
      rssKb += statusField(s, 'VmRSS');
      hwmKb += statusField(s, 'VmHWM');
    } catch {
      /* gone */
    }
  }
  return { rssKb, hwmKb };
}

export interface Idle {
  seconds: number;
  /** CPU ms per second of wall time */
  cpuMsPerS: number;
  wakeupsPerS: number;
  rssKb: number;
}

/** Measures several idle process groups over the same window (they are all idle at once). */
export async function measureIdle(pgids: ReadonlyMap<string, number>, seconds: number): Promise<Map<string, Idle>> {
  const before = new Map([...pgids].map(([k, g]) => [k, { ns: groupCpuNs(g), sw: groupSwitches(g) }]));
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const s = (performance.now() - t0) / 1000;
  const out = new Map<string, Idle>();
  for (const [k, g] of pgids) {
    const b = before.get(k)!;
    out.set(k, {
      seconds: s,
      cpuMsPerS: (groupCpuNs(g) - b.ns) / 1e6 / s,
      wakeupsPerS: (groupSwitches(g) - b.sw) / s,
      rssKb: groupMemoryKb(g).rssKb,
    });
  }
  return out;
}
