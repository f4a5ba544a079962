// Breakwater's overhead next to a direct call and next to nginx, in one run (`make bench` runs the
// peer comparison, bench/compare.ts; this is the Breakwater-only deep dive with variants and profiles).
//
//   node_modules/.bin/node bench/run.ts [--quick] [--profile auto|always|never] [--no-variants]
//                                       [--no-pin] [--rate 600] [--connections 32]
//                                       [--node-options "--max-semi-space-size=4"]
//
// Starts, each as its own process on 127.0.0.1 ephemeral ports: the fake provider
// (`bin/breakwater fake`), nginx (generated config in a temp dir: upstream keep-alive,
// proxy_buffering off) and Breakwater (`bin/breakwater proxy`, generated config whose one
// endpoint is the fake, log level warn). For a small JSON chat completion and a 50-event SSE
// stream, and for each path (direct to the fake, via nginx, via Breakwater), it measures
//   (a) CPU per request of the proxy process (utime+stime from /proc/<pid>/stat around each
//       run; for direct, the fake's own CPU), and the fake's CPU for reference;
//   (b) requests/s at 32 keep-alive connections, closed loop (autocannon);
//   (c) p50/p99 at a constant open-loop 600 req/s (vegeta, time to last byte) and the latency
//       added over direct at the same rate;
//   (d) Breakwater's VmRSS/VmHWM.
// Then (issue 5) Breakwater at log levels warn, info, debug and silent (+ BREAKWATER_METRICS=off;
// whether the proxy has that switch is checked and reported) side by side, and, when an aim is
// missed (or with --profile always), a CPU profile of Breakwater under load.
// With two or more CPUs, load generators and this script run on CPU 0, all servers on CPU 1
// (taskset). The run is bounded by a watchdog and kills every child it started, by pid.
// Writes bench/results/latest.md and latest.json (+ profiles/), and prints the markdown.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus as osCpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summariseProfile } from './lib/cpuprofile.ts';
import { allocationProfile } from './lib/inspect.ts';
import { closedLoop, ensureVegeta, VEGETA_MODULE, WORKLOADS, type Workload } from './lib/load.ts';
import { measure, type Measured, type Plan, type Target } from './lib/measure.ts';
import { findNginx, startNginx } from './lib/nginx.ts';
import { freePort, installCleanup, killAll, loadAverage, memoryKb, sleep, start, stop, which, type Spawned } from './lib/procs.ts';
import { computeAims, renderMarkdown, type Env, type Report } from './lib/report.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'breakwater');
const RESULTS = join(ROOT, 'bench', 'results');
const TIME_LIMIT_MS = 295_000;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'string', default: 'auto' },
    'no-pin': { type: 'boolean', default: false },
    'no-variants': { type: 'boolean', default: false },
    rate: { type: 'string', default: '600' },
    connections: { type: 'string', default: '32' },
    /** extra Node flags for every Breakwater process, e.g. "--max-semi-space-size=4" (GC tuning experiments) */
    'node-options': { type: 'string', default: '' },
  },
  strict: true,
});
if (!['auto', 'always', 'never'].includes(flags.profile!)) throw new Error('--profile is auto, always or never');
const RATE = Number(flags.rate);
const CONNECTIONS = Number(flags.connections);
const QUICK = flags.quick!;
// durations in seconds; the full run takes about 4 minutes (--quick: about 1.5)
const MAIN = QUICK ? { warmupS: 1, closedRounds: 1, closedS: 3, openRounds: 1, openS: 3 } : { warmupS: 2, closedRounds: 3, closedS: 3, openRounds: 3, openS: 2 };
const VARIANTS = QUICK ? { warmupS: 1, closedRounds: 1, closedS: 2, openRounds: 1, openS: 2 } : { warmupS: 2, closedRounds: 3, closedS: 2, openRounds: 2, openS: 2 };
const PROFILE_S = QUICK ? 3 : 5;
const ALLOC_S = 2;

async function main(): Promise<void> {
  installCleanup();
  if (process.platform !== 'linux') throw new Error('the benchmark reads /proc: Linux only');

  // preflight, outside the watchdog: building vegeta is a one-time step
  const vegeta = await ensureVegeta();
  if (!vegeta) throw new Error(`vegeta is needed for the open-loop runs: go install ${VEGETA_MODULE} (or put vegeta on PATH)`);
  const nginxBin = findNginx();
  if (!nginxBin) console.error('bench: nginx not found (apt-get install -y nginx): the nginx rows are skipped');
  const nCpus = osCpus().length;
  const pin = !flags['no-pin'] && nCpus >= 2 && which('taskset') !== undefined;
  const LOADGEN_CPUS = pin ? '0' : undefined;
  const SERVER_CPUS = pin ? '1' : undefined;
  if (pin) spawnSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

  const startedAt = Date.now();
  const watchdog = setTimeout(() => {
    console.error(`bench: time limit (${TIME_LIMIT_MS / 1000} s) reached: stopping every child and giving up`);
    killAll();
    process.exit(3);
  }, TIME_LIMIT_MS);
  const log = (msg: string) => console.error(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${msg}`);
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-bench-'));
  // keep the servers' logs when the run fails; remove them otherwise (also on Ctrl-C)
  process.on('exit', (code) => {
    if (code === 1 || code === 3) console.error(`bench: logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });
  const loadAverageBefore = loadAverage();
  log(`temp dir ${dir}; ${pin ? 'load generators on CPU 0, servers on CPU 1' : 'not pinned'}; load average ${loadAverageBefore}`);

  // ---- servers ----
  const fakePort = await freePort();
  const fake = start(BIN, ['fake', '--listen', `127.0.0.1:${fakePort}`, '--name', 'bench'], { cpus: SERVER_CPUS, logFile: join(dir, 'fake.log') });
  await waitHttp(`http://127.0.0.1:${fakePort}/_fake/health`, 'GET', fake, 'fake provider');

  let nginx: Spawned | undefined;
  let nginxPort = 0;
  if (nginxBin) {
    nginxPort = await freePort();
    nginx = startNginx(nginxBin, dir, nginxPort, fakePort, SERVER_CPUS);
    await waitHttp(`http://127.0.0.1:${nginxPort}/_fake/health`, 'GET', nginx, 'nginx');
  }

  const configFile = join(dir, 'breakwater.yaml');
  writeFileSync(configFile, breakwaterConfig(fakePort));
  const startBreakwater = async (name: string, logLevel: string, extraEnv: Record<string, string> = {}, config = configFile) => {
    const port = await freePort();
    const p = start(BIN, ['proxy', '--config', config, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--drain', '2s', '--log-level', logLevel], {
      cpus: SERVER_CPUS,
      env: { ...process.env, ...extraEnv, NODE_OPTIONS: [process.env.NODE_OPTIONS, flags['node-options'], extraEnv.NODE_OPTIONS].filter(Boolean).join(' ') },
      logFile: join(dir, `breakwater-${name}.log`),
    });
    await waitHttp(`http://127.0.0.1:${port}/openai/chat/completions`, 'POST', p, `breakwater (${name})`);
    return { p, port, url: `http://127.0.0.1:${port}/openai/chat/completions` };
  };
  const bw = await startBreakwater('warn', 'warn');
  const idleRssKb = memoryKb(bw.p.pid).rssKb;

  const targets: Target[] = [
    { label: 'direct', url: `http://127.0.0.1:${fakePort}/v1/chat/completions` },
    ...(nginx ? [{ label: 'nginx', url: `http://127.0.0.1:${nginxPort}/v1/chat/completions`, pgid: nginx.pid }] : []),
    { label: 'breakwater', url: bw.url, pgid: bw.p.pid },
  ];
  for (const t of targets) for (const w of WORKLOADS) await sanity(t.url, w, t.label);
  log(`fake :${fakePort} (pid ${fake.pid}), nginx :${nginxPort || '-'} (pid ${nginx?.pid ?? '-'}), breakwater :${bw.port} (pid ${bw.p.pid}, ${(idleRssKb / 1024).toFixed(0)} MB idle); answers checked`);

  const plan = (p: typeof MAIN): Plan => ({ ...p, connections: CONNECTIONS, rate: RATE, loadgenCpus: LOADGEN_CPUS, vegeta, dir, fakePgid: fake.pid });

  // ---- (a)–(d): direct vs nginx vs Breakwater ----
  const main: Measured[] = [];
  for (const w of WORKLOADS) main.push(...(await measure(targets, w, plan(MAIN), log)));
  const after = memoryKb(bw.p.pid);
  const memory = { idleRssKb, rssKb: after.rssKb, hwmKb: after.hwmKb };
  log(`breakwater VmRSS ${(after.rssKb / 1024).toFixed(1)} MB, VmHWM ${(after.hwmKb / 1024).toFixed(1)} MB`);

  // ---- issue 5: logging and metrics on vs off ----
  const metricsSwitch = sourceMentions('BREAKWATER_METRICS');
  const variants: Array<Measured & { hwmKb: number }> = [];
  await stop(bw.p);
  if (!flags['no-variants']) {
    // all four fresh and warmed alike: a process that has run longer has hotter code and a larger
    // heap (fewer GCs), which would flatter it by 10-20 %
    const procs = [
      { label: 'log warn', b: await startBreakwater('v-warn', 'warn') },
      { label: 'log info', b: await startBreakwater('v-info', 'info') },
      { label: 'log debug', b: await startBreakwater('v-debug', 'debug') },
      { label: metricsSwitch ? 'silent, metrics off' : 'silent (metrics on: no switch)', b: await startBreakwater('v-silent', 'silent', { BREAKWATER_METRICS: 'off' }) },
    ];
    const vt: Target[] = procs.map((v) => ({ label: v.label, url: v.b.url, pgid: v.b.p.pid }));
    for (const w of WORKLOADS) {
      for (const m of await measure(vt, w, plan(VARIANTS), log)) {
        const pid = procs.find((v) => v.label === m.label)!.b.p.pid;
        variants.push({ ...m, hwmKb: memoryKb(pid).hwmKb });
      }
    }
    for (const v of procs) await stop(v.b.p);
  }

  const aims = computeAims(main, memory, RATE, metricsSwitch ? variants : []);

  // ---- CPU profile ----
  const profiles: Report['profiles'] = [];
  const wantProfile = flags.profile === 'always' || (flags.profile === 'auto' && aims.some((a) => a.met === false));
  const timeLeftMs = TIME_LIMIT_MS - (Date.now() - startedAt);
  if (wantProfile && timeLeftMs < 50_000) log(`skipping the CPU profile: only ${(timeLeftMs / 1000).toFixed(0)} s left of the time limit`);
  else if (wantProfile) {
    const profDir = join(RESULTS, 'profiles');
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
    // Breakwater gets CPU 1 to itself here, its own fake joins the load generator on CPU 0: the
    // profiler samples wall time, so a fake sharing the core would show up as time "in" writev
    // whenever a write wakes the fake and the scheduler switches to it.
    const profFakePort = await freePort();
    const profFake = start(BIN, ['fake', '--listen', `127.0.0.1:${profFakePort}`, '--name', 'bench-profile'], { cpus: LOADGEN_CPUS, logFile: join(dir, 'fake-profile.log') });
    await waitHttp(`http://127.0.0.1:${profFakePort}/_fake/health`, 'GET', profFake, 'fake provider (profile)');
    const profConfig = join(dir, 'breakwater-profile.yaml');
    writeFileSync(profConfig, breakwaterConfig(profFakePort));
    for (const w of WORKLOADS) {
      const name = `breakwater-${w.name}.cpuprofile`;
      const inspectPort = await freePort();
      const spawnedAt = performance.now();
      const b = await startBreakwater(`profile-${w.name}`, 'warn', {
        NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-name=${name} --cpu-prof-interval=250 --inspect=127.0.0.1:${inspectPort}`,
      }, profConfig);
      await closedLoop(b.url, w, CONNECTIONS, MAIN.warmupS, LOADGEN_CPUS);
      const fromMs = performance.now() - spawnedAt;
      await closedLoop(b.url, w, CONNECTIONS, PROFILE_S, LOADGEN_CPUS);
      const toMs = performance.now() - spawnedAt;
      // then, in the same process, what each request allocates (not inside the CPU window)
      const allocation = await allocationProfile(inspectPort, async () => (await closedLoop(b.url, w, CONNECTIONS, ALLOC_S, LOADGEN_CPUS)).requests);
      await stop(b.p, 10_000);
      const file = join(profDir, name);
      if (existsSync(file)) {
        profiles.push({ workload: w.name, summary: summariseProfile(file, fromMs, toMs), seconds: PROFILE_S, allocation });
        log(`profile: ${file}; ${(allocation.bytesPerRequest / 1024).toFixed(1)} KB allocated per request`);
      } else log(`WARNING: no profile written for ${w.name} (${readdirSync(profDir).join(', ') || 'nothing'})`);
    }
    await stop(profFake);
  }

  clearTimeout(watchdog);
  await stop(fake);
  if (nginx) await stop(nginx);

  // ---- report ----
  const env: Env = {
    command: `make bench${process.argv.length > 2 ? ` (node_modules/.bin/node bench/run.ts ${process.argv.slice(2).join(' ')})` : ''}`,
    date: new Date().toISOString(),
    node: process.version,
    nginx: nginxBin ? spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: nginx\//, '') : 'absent',
    vegeta: VEGETA_MODULE.split('@')[1]!,
    autocannon: (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version,
    cpu: `${nCpus} × ${osCpus()[0]?.model.trim() ?? '?'}`,
    pinning: pin ? 'Load generators (and bench/run.ts) pinned to CPU 0, fake + nginx + Breakwater to CPU 1 (taskset)' : 'Not pinned',
    loadAverageBefore,
    loadAverageAfter: loadAverage(),
    totalSeconds: (Date.now() - startedAt) / 1000,
    rate: RATE,
    connections: CONNECTIONS,
    main: MAIN,
    variants: VARIANTS,
    metricsSwitch,
  };
  const report: Report = { env, main, variants, memory, aims, profiles };
  const md = renderMarkdown(report);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.md'), md + '\n');
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(md);
  log(`wrote ${join(RESULTS, 'latest.md')} and latest.json`);
}

function breakwaterConfig(fakePort: number): string {
  return `# generated by bench/run.ts: one upstream, one endpoint (the fake), defaults for everything else
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  api: openai
  endpoints:
    - name: fake
      url: http://127.0.0.1:${fakePort}/v1
`;
}

async function waitHttp(url: string, method: 'GET' | 'POST', p: Spawned, what: string): Promise<void> {
  const until = Date.now() + 15_000;
  let last = '';
  while (Date.now() < until) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${what} exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output().slice(-3000)}`);
    try {
      const w = WORKLOADS[0]!;
      const res = await fetch(url, { method, signal: AbortSignal.timeout(1000), ...(method === 'POST' ? { body: w.body, headers: w.headers } : {}) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready at ${url} after 15 s (${last}):\n${p.output().slice(-3000)}`);
}

/** One request per path and workload: the answer is what the workload means. */
async function sanity(url: string, w: Workload, name: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', body: w.body, headers: w.headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${name} ${w.name}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  if (w.name === 'json') {
    const j = JSON.parse(text) as { choices?: unknown[] };
    if (!Array.isArray(j.choices) || j.choices.length === 0) throw new Error(`${name} json: no choices: ${text.slice(0, 300)}`);
  } else {
    const events = text.split('\n').filter((l) => l.startsWith('data: '));
    if (events.length < 51 || events.at(-1) !== 'data: [DONE]') throw new Error(`${name} sse: ${events.length} data events, last ${events.at(-1)}`);
  }
}

/** Does src/ mention this string (e.g. an environment switch)? */
function sourceMentions(needle: string): boolean {
  const walk = (d: string): boolean =>
    readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') && readFileSync(join(d, e.name), 'utf8').includes(needle)));
  return walk(join(ROOT, 'src'));
}

main().catch((err: unknown) => {
  console.error('bench: failed:', err instanceof Error ? err.message : err);
  killAll();
  process.exit(1);
});
