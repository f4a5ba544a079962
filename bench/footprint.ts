// Breakwater's memory footprint by how it is started: type-stripped sources or the compiled
// build, and V8 young-generation sizes. The figures behind the image's NODE_OPTIONS and the
// README's resource recommendation (README, "Footprint").
//
//   node_modules/.bin/node bench/footprint.ts [--seconds 8] [--connections 32] [--rounds 1]
//                                             [--variant 'label=src|dist:[NAME=value ...] NODE FLAGS' ...]
//
// Needs build/dist (`make build`). One fake provider (`bin/breakwater fake`); for each variant,
// one after the other, `node <flags> <entry> proxy --config` with exactly those flags and no
// NODE_OPTIONS (no flags: V8's defaults; flags allowed in NODE_OPTIONS act the same there) and a one-endpoint config; after /readyz and 3 s of quiet its VmRSS is the idle
// figure, then autocannon drives a JSON chat completion and a 50-event SSE stream, closed loop
// at --connections for --seconds each, and VmHWM is the peak. CPU per request is the proxy's
// utime+stime over the requests of both runs. With two or more CPUs the servers run on CPU 1
// and autocannon on CPU 0 (taskset), as in `make bench`. Prints a markdown table.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop, WORKLOADS } from './lib/load.ts';
import { CLK_TCK, cpuTicks, freePort, installCleanup, loadAverage, memoryKb, sleep, start, stop, type Spawned } from './lib/procs.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const ENTRIES = { src: join(ROOT, 'src', 'main.ts'), dist: join(ROOT, 'build', 'dist', 'main.js') } as const;

interface Variant {
  label: string;
  entry: keyof typeof ENTRIES;
  flags: string;
}

const DEFAULT_VARIANTS = [
  'sources, V8 defaults=src:',
  'compiled, V8 defaults=dist:',
  'compiled, semi-space 1 MB=dist:--max-semi-space-size=1',
  'compiled, semi-space 2 MB=dist:--max-semi-space-size=2',
  'compiled, semi-space 4 MB=dist:--max-semi-space-size=4',
  'compiled, semi-space 8 MB=dist:--max-semi-space-size=8',
  'compiled, semi-space 16 MB=dist:--max-semi-space-size=16',
];

function parseVariant(spec: string): Variant {
  const m = /^([^=]+)=(src|dist):(.*)$/.exec(spec);
  if (!m) throw new Error(`--variant "${spec}": expected 'label=src|dist:NODE FLAGS'`);
  return { label: m[1]!, entry: m[2] as Variant['entry'], flags: m[3]!.trim() };
}

async function waitReady(url: string, p: Spawned): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode}:\n${p.output().slice(-2000)}`);
    const ok = await fetch(url).then((r) => r.status === 200, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} not ready after 30 s:\n${p.output().slice(-2000)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      connections: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '1' },
      variant: { type: 'string', multiple: true },
    },
  });
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const rounds = Number(values.rounds);
  const variants = (values.variant ?? DEFAULT_VARIANTS).map(parseVariant);
  installCleanup();
  const pinned = cpus().length >= 2;
  const serverCpus = pinned ? '1' : undefined;
  const loadCpus = pinned ? '0' : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-footprint-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const loadBefore = loadAverage();

  const fakePort = await freePort();
  const fake = start(join(ROOT, 'bin', 'breakwater'), ['fake', '--listen', `127.0.0.1:${fakePort}`, '--name', 'footprint'], { cpus: serverCpus, logFile: join(dir, 'fake.log') });
  await waitReady(`http://127.0.0.1:${fakePort}/_fake/health`, fake);
  const config = join(dir, 'upstreams.yaml');
  writeFileSync(
    config,
    `apiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: { name: openai }\nspec:\n  api: openai\n  endpoints:\n    - name: fake\n      url: http://127.0.0.1:${fakePort}/v1\n`,
  );

  const rows: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const v of variants) {
      const port = await freePort();
      const admin = await freePort();
      // NAME=value words are the process's environment (e.g. MALLOC_ARENA_MAX=2), the rest node's flags
      const words = v.flags ? v.flags.split(/\s+/) : [];
      const assignments = words.filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]);
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', ...Object.fromEntries(assignments) };
      const p = start(NODE, [...words.filter((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w)), ENTRIES[v.entry], 'proxy', '--config', config, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn', '--drain', '1s'], {
        cpus: serverCpus,
        env,
        logFile: join(dir, 'proxy.log'),
      });
      await waitReady(`http://127.0.0.1:${admin}/readyz`, p);
      await sleep(3000);
      const idle = memoryKb(p.pid).rssKb;
      const ticks = cpuTicks(p.pid);
      let requests = 0;
      let failed = 0;
      const rps: string[] = [];
      const p99: string[] = [];
      for (const w of WORKLOADS) {
        const r = await closedLoop(`http://127.0.0.1:${port}/openai/chat/completions`, w, connections, seconds, loadCpus);
        requests += r.requests;
        failed += r.errors + r.non2xx + r.timeouts;
        rps.push(r.rps.toFixed(0));
        p99.push(String(r.latencyP99Ms));
      }
      const cpuUs = ((cpuTicks(p.pid) - ticks) / CLK_TCK / requests) * 1e6;
      const { rssKb, hwmKb } = memoryKb(p.pid);
      await stop(p);
      const mb = (kb: number) => (kb / 1024).toFixed(0);
      const row = `| ${v.label} | \`${v.flags || '(none)'}\` | ${mb(idle)} | ${mb(hwmKb)} | ${mb(rssKb)} | ${rps.join(' / ')} | ${p99.join(' / ')} | ${cpuUs.toFixed(1)} | ${failed} |`;
      rows.push(row);
      console.error(row);
    }
  }
  await stop(fake);
  console.log(
    [
      `Node ${process.version}, ${cpus().length} CPUs${pinned ? ' (servers on CPU 1, autocannon on CPU 0)' : ''}; load average before ${loadBefore}, after ${loadAverage()}; ${connections} connections, ${seconds} s JSON + ${seconds} s SSE per variant.`,
      '',
      '| variant | node flags | idle RSS MB | peak RSS (VmHWM) MB | RSS after MB | req/s JSON / SSE | p99 ms JSON / SSE | CPU µs per request | failed |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|',
      ...rows,
    ].join('\n'),
  );
}

await main();
