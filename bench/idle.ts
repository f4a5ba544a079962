// What an idle sidecar costs: `bin/breakwater proxy --config <small file>` started with no
// traffic at all, then watched for a while. A sidecar runs in every pod, so idle CPU and
// wake-ups are paid by every replica of every app (issue 11 targets: ≤ 1 ms CPU per second,
// ≤ 15 wake-ups per second).
//
//   node_modules/.bin/node bench/idle.ts [--seconds 30] [--settle 5] [--node-options "..."]
//                                        [--env BREAKWATER_X=y ...]
//
// Measured from /proc, over every thread of the process (libuv's pool and V8's platform threads
// wake too): CPU from /proc/<pid>/task/*/schedstat (nanoseconds on CPU; utime+stime from
// /proc/<pid>/stat, 10 ms ticks, is shown beside it), wake-ups as voluntary context switches
// (a thread that sleeps and is woken: timers, epoll) from /proc/<pid>/task/*/status, also for
// the main thread alone, VmRSS at the end, and the V8 heap from the proxy's /metrics after the
// window. The config has one endpoint that is never called.
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuTicks, CLK_TCK, freePort, installCleanup, memoryKb, sleep, start, stop } from './lib/procs.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'breakwater');

const CONFIG = `apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  api: openai
  endpoints:
    - name: local
      url: http://127.0.0.1:9/v1
`;

interface ThreadCounters {
  /** ns on CPU, all threads */
  cpuNs: number;
  /** voluntary context switches, all threads */
  voluntary: number;
  involuntary: number;
  /** voluntary context switches of the main thread */
  mainVoluntary: number;
  threads: number;
}

function readThreads(pid: number): ThreadCounters {
  const c: ThreadCounters = { cpuNs: 0, voluntary: 0, involuntary: 0, mainVoluntary: 0, threads: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      c.cpuNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const v = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      c.voluntary += v;
      c.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      if (tid === String(pid)) c.mainVoluntary = v;
      c.threads++;
    } catch {
      /* a thread that ended while we read */
    }
  }
  return c;
}

async function waitReady(adminPort: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`proxy not ready on admin port ${adminPort} within ${timeoutMs} ms`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      settle: { type: 'string', default: '5' },
      'node-options': { type: 'string', default: '' },
      env: { type: 'string', multiple: true, default: [] },
    },
  });
  installCleanup();
  const seconds = Number(values.seconds);
  const settle = Number(values.settle);
  const dir = mkdtempSync(join(tmpdir(), 'bw-idle-'));
  const config = join(dir, 'upstreams.yaml');
  writeFileSync(config, CONFIG);
  const [listen, admin] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = { ...process.env, BREAKWATER_LOG_LEVEL: 'warn', NODE_OPTIONS: values['node-options'] };
  for (const kv of values.env) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const args = ['proxy', '--config', config, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`];
  const proxy = start(BIN, args, { env });
  try {
    await waitReady(admin, 20_000);
    // the readiness probe above was the last request: let start-up work (JIT, GC, the parse worker) finish
    await sleep(settle * 1000);
    const t0 = performance.now();
    const a = readThreads(proxy.pid);
    const ticks0 = cpuTicks(proxy.pid);
    await sleep(seconds * 1000);
    const b = readThreads(proxy.pid);
    const ticks1 = cpuTicks(proxy.pid);
    const elapsedS = (performance.now() - t0) / 1000;
    const { rssKb } = memoryKb(proxy.pid);
    // the V8 heap's share of it, from the proxy's own /metrics (read after the window: a scrape wakes it)
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    const perS = (n: number) => n / elapsedS;
    const result = {
      command: `${BIN} ${args.join(' ')}`,
      seconds: Math.round(elapsedS * 10) / 10,
      threads: b.threads,
      cpuMsPerS: Math.round((perS(b.cpuNs - a.cpuNs) / 1e6) * 1000) / 1000,
      cpuMsPerSFromTicks: Math.round(((perS(ticks1 - ticks0) * 1000) / CLK_TCK) * 100) / 100,
      wakeupsPerS: Math.round(perS(b.voluntary - a.voluntary) * 10) / 10,
      mainThreadWakeupsPerS: Math.round(perS(b.mainVoluntary - a.mainVoluntary) * 10) / 10,
      involuntaryPerS: Math.round(perS(b.involuntary - a.involuntary) * 10) / 10,
      rssMb: Math.round(rssKb / 102.4) / 10,
      heapUsedMb: Math.round(gauge('breakwater_nodejs_heap_size_used_bytes') / 1e5) / 10,
      heapTotalMb: Math.round(gauge('breakwater_nodejs_heap_size_total_bytes') / 1e5) / 10,
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await stop(proxy);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
