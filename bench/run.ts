// `make bench`: Breakwater's overhead next to a direct call and next to nginx, in one run.
//
//   node_modules/.bin/node bench/run.ts [--quick] [--profile auto|always|never] [--no-pin]
//                                       [--no-variants] [--rate 600] [--connections 32]
//
// Starts, each as its own process on 127.0.0.1 ephemeral ports: the fake provider
// (`bin/breakwater fake`), nginx (generated config: upstream keep-alive, proxy_buffering off)
// and Breakwater (`bin/breakwater proxy`, generated config with one endpoint: the fake, log
// level warn). For each workload (a small JSON chat completion, a 50-event SSE stream) and each
// path (direct to the fake, via nginx, via Breakwater) it measures:
//   (a) CPU per request of the proxy process (utime+stime from /proc/<pid>/stat, whole process
//       group, around the closed-loop run; for direct, the fake's own CPU) and of the fake;
//   (b) requests/s with 32 keep-alive connections, closed loop (autocannon);
//   (c) p50/p99 at a fixed open-loop rate of 600 req/s (vegeta; time to last byte), and the
//       latency added over direct at the same rate;
//   (d) Breakwater's VmRSS/VmHWM after the runs.
// Then (issue 5) Breakwater again with logging at info, at debug (a log line per request) and
// silent with BREAKWATER_METRICS=off (whether the proxy has that switch is checked and reported),
// and, when an aim is missed (or --profile always), a CPU profile of Breakwater under load.
// With two or more CPUs, load generators (and this script) run on CPU 0 and all servers on
// CPU 1 (taskset). The whole run is bounded (watchdog) and kills every child it started.
// Writes bench/results/latest.md and latest.json, and prints the markdown.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus as osCpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { profileMarkdown, summariseProfile, type ProfileSummary } from './lib/cpuprofile.ts';
import { closedLoop, ensureVegeta, openLoop, WORKLOADS, type ClosedResult, type OpenResult, type Workload } from './lib/load.ts';
import { findNginx, startNginx } from './lib/nginx.ts';
import {
  CLK_TCK, childTicks, cpuTicks, freePort, groupTicks, installCleanup, killAll, loadAverage, machineTicks, memoryKb, sleep, start, stop, which, type Spawned,
} from './lib/procs.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'breakwater');
const RESULTS = join(ROOT, 'bench', 'results');
const TIME_LIMIT_MS = 295_000;

// ---------- options ----------
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'string', default: 'auto' },
    'no-pin': { type: 'boolean', default: false },
    'no-variants': { type: 'boolean', default: false },
    rate: { type: 'string', default: '600' },
    connections: { type: 'string', default: '32' },
  },
  strict: true,
});
const quick = flags.quick!;
const RATE = Number(flags.rate);
const CONNECTIONS = Number(flags.connections);
const T = quick
  ? { warmup: 1, closed: 3, open: 3, variantClosed: 3, variantOpen: 3, profile: 3 }
  : { warmup: 2, closed: 8, open: 8, variantClosed: 6, variantOpen: 6, profile: 8 };
if (!['auto', 'always', 'never'].includes(flags.profile!)) throw new Error('--profile is auto, always or never');

// ---------- types ----------
type PathName = 'direct' | 'nginx' | 'breakwater';
interface CpuWindow {
  /** CPU ms per request of the process under test (the proxy; for direct, the fake) */
  proxyMsPerReq: number;
  fakeMsPerReq: number;
  /** % of one core */
  loadgenPct: number;
  /** % of one core used by processes that are not part of the benchmark */
  backgroundPct: number;
  seconds: number;
}
interface PhaseResult {
  path: string;
  workload: Workload['name'];
  closed: ClosedResult & { cpu: CpuWindow };
  open: OpenResult & { cpu: CpuWindow };
}

// ---------- measurement ----------
interface Snap {
  proxy: number;
  fake: number;
  machine: number;
  children: number;
  self: number;
  at: number;
}

function snap(proxyPgid: number | undefined, fakePgid: number): Snap {
  return {
    proxy: proxyPgid !== undefined ? groupTicks(proxyPgid) : 0,
    fake: groupTicks(fakePgid),
    machine: machineTicks().busy,
    children: childTicks(),
    self: cpuTicks('self'),
    at: performance.now(),
  };
}

function window(a: Snap, b: Snap, requests: number, direct: boolean): CpuWindow {
  const seconds = (b.at - a.at) / 1000;
  const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
  const proxy = b.proxy - a.proxy;
  const fake = b.fake - a.fake;
  const loadgen = b.children - a.children;
  const ours = proxy + fake + loadgen + (b.self - a.self);
  const pct = (ticks: number) => (100 * ms(ticks)) / 1000 / seconds;
  return {
    proxyMsPerReq: ms(direct ? fake : proxy) / requests,
    fakeMsPerReq: ms(fake) / requests,
    loadgenPct: pct(loadgen),
    backgroundPct: Math.max(0, pct(b.machine - a.machine - ours)),
    seconds,
  };
}

// ---------- main ----------
async function main(): Promise<void> {
  installCleanup();
  const startedAt = Date.now();
  if (process.platform !== 'linux') throw new Error('the benchmark reads /proc: Linux only');

  // preflight (not under the watchdog: building vegeta is a one-time step)
  const vegeta = await ensureVegeta();
  if (!vegeta) throw new Error('vegeta is needed for the open-loop latency runs: go install github.com/tsenart/vegeta/v12@v12.13.0 (or put vegeta on PATH)');
  const nginxBin = findNginx();
  if (!nginxBin) console.error('bench: nginx not found (apt-get install -y nginx); the nginx rows are skipped');
  const nCpus = osCpus().length;
  const pin = !flags['no-pin'] && nCpus >= 2 && which('taskset') !== undefined;
  const LOADGEN_CPUS = pin ? '0' : undefined;
  const SERVER_CPUS = pin ? '1' : undefined;
  if (pin) spawnSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

  const watchdog = setTimeout(() => {
    console.error(`bench: time limit (${TIME_LIMIT_MS / 1000} s) reached; stopping every child and giving up`);
    killAll();
    process.exit(3);
  }, TIME_LIMIT_MS);

  const dir = mkdtempSync(join(tmpdir(), 'breakwater-bench-'));
  const log = (msg: string) => console.error(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${msg}`);
  log(`temp dir ${dir}; ${pin ? 'load generators on CPU 0, servers on CPU 1' : 'not pinned'}; load average ${loadAverage()}`);
  const loadBefore = loadAverage();

  // --- servers ---
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
  const startBreakwater = async (name: string, logLevel: string, extraEnv: Record<string, string> = {}) => {
    const port = await freePort();
    const p = start(BIN, ['proxy', '--config', configFile, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--drain', '2s', '--log-level', logLevel], {
      cpus: SERVER_CPUS,
      env: { ...process.env, ...extraEnv },
      logFile: join(dir, `breakwater-${name}.log`),
    });
    await waitHttp(`http://127.0.0.1:${port}/openai/chat/completions`, 'POST', p, `breakwater (${name})`);
    return { p, port };
  };

  const bw = await startBreakwater('main', 'warn');
  const urls: Record<PathName, string | undefined> = {
    direct: `http://127.0.0.1:${fakePort}/v1/chat/completions`,
    nginx: nginx ? `http://127.0.0.1:${nginxPort}/v1/chat/completions` : undefined,
    breakwater: `http://127.0.0.1:${bw.port}/openai/chat/completions`,
  };
  for (const [name, url] of Object.entries(urls)) if (url) for (const w of WORKLOADS) await sanity(url, w, name);
  log(`fake :${fakePort} (pid ${fake.pid}), nginx :${nginxPort || '-'} (pid ${nginx?.pid ?? '-'}), breakwater :${bw.port} (pid ${bw.p.pid}); responses checked`);

  const phase = async (label: string, url: string, w: Workload, proxyPgid: number | undefined, closedS: number, openS: number): Promise<PhaseResult> => {
    const direct = proxyPgid === undefined;
    await closedLoop(url, w, CONNECTIONS, T.warmup, LOADGEN_CPUS); // JIT, pools, connections
    let a = snap(proxyPgid, fake.pid);
    const closed = await closedLoop(url, w, CONNECTIONS, closedS, LOADGEN_CPUS);
    let b = snap(proxyPgid, fake.pid);
    const closedCpu = window(a, b, closed.requests, direct);
    a = snap(proxyPgid, fake.pid);
    const report = await openLoop(vegeta, dir, url, w, RATE, openS, LOADGEN_CPUS, `${label}-${w.name}`.replace(/[^a-z0-9-]+/gi, '_'));
    b = snap(proxyPgid, fake.pid);
    const open = await report();
    const openCpu = window(a, b, open.requests, direct);
    const r: PhaseResult = { path: label, workload: w.name, closed: { ...closed, cpu: closedCpu }, open: { ...open, cpu: openCpu } };
    log(
      `${label.padEnd(34)} ${w.name.padEnd(4)} ${closed.rps.toFixed(0).padStart(6)} req/s  cpu ${closedCpu.proxyMsPerReq.toFixed(4)} ms/req` +
        `  @${RATE}/s p50 ${ms(open.p50Us)} p99 ${ms(open.p99Us)} ms  ok ${(open.success * 100).toFixed(1)} %  bg ${closedCpu.backgroundPct.toFixed(0)}/${openCpu.backgroundPct.toFixed(0)} %`,
    );
    if (closed.errors + closed.non2xx + closed.timeouts > 0 || open.success < 1) log(`  WARNING: errors: closed ${closed.errors} err, ${closed.non2xx} non-2xx, ${closed.timeouts} timeouts; open success ${open.success}, ${open.errors.slice(0, 3).join('; ')}`);
    return r;
  };

  // --- main comparison ---
  const results: PhaseResult[] = [];
  for (const w of WORKLOADS) {
    results.push(await phase('direct', urls.direct!, w, undefined, T.closed, T.open));
    if (nginx) results.push(await phase('nginx', urls.nginx!, w, nginx.pid, T.closed, T.open));
    results.push(await phase('breakwater', urls.breakwater!, w, bw.p.pid, T.closed, T.open));
  }
  const mem = memoryKb(bw.p.pid);
  log(`breakwater VmRSS ${(mem.rssKb / 1024).toFixed(1)} MB, VmHWM ${(mem.hwmKb / 1024).toFixed(1)} MB`);
  const bwLogMain = bw.p.output();
  await stop(bw.p);

  // --- issue 5: logging and metrics on vs off ---
  const metricsSwitch = sourceMentions('BREAKWATER_METRICS');
  const variants: Array<{ label: string; logLevel: string; env: Record<string, string> }> = [
    { label: 'breakwater, log info', logLevel: 'info', env: {} },
    { label: 'breakwater, log debug (line/request)', logLevel: 'debug', env: {} },
    { label: metricsSwitch ? 'breakwater, silent, metrics off' : 'breakwater, silent (metrics still on)', logLevel: 'silent', env: { BREAKWATER_METRICS: 'off' } },
  ];
  const variantResults: Array<PhaseResult & { rssKb: number; hwmKb: number }> = [];
  if (!flags['no-variants']) {
    for (const v of variants) {
      const b = await startBreakwater(v.label.replace(/[^a-z0-9]+/gi, '-'), v.logLevel, v.env);
      const url = `http://127.0.0.1:${b.port}/openai/chat/completions`;
      for (const w of WORKLOADS) {
        const r = await phase(v.label, url, w, b.p.pid, T.variantClosed, T.variantOpen);
        variantResults.push({ ...r, ...memoryKb(b.p.pid) });
      }
      await stop(b.p);
    }
  }

  // --- aims ---
  const get = (path: string, w: string) => results.find((r) => r.path === path && r.workload === w);
  const aims = computeAims(get, mem);

  // --- profile ---
  const profiles: Array<{ workload: string; summary: ProfileSummary }> = [];
  const wantProfile = flags.profile === 'always' || (flags.profile === 'auto' && aims.some((a) => a.met === false));
  if (wantProfile) {
    const profDir = join(RESULTS, 'profiles');
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
    for (const w of WORKLOADS) {
      const b = await startBreakwater(`profile-${w.name}`, 'warn', { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-name=breakwater-${w.name}.cpuprofile --cpu-prof-interval=250` });
      const url = `http://127.0.0.1:${b.port}/openai/chat/completions`;
      await closedLoop(url, w, CONNECTIONS, T.warmup, LOADGEN_CPUS);
      await closedLoop(url, w, CONNECTIONS, T.profile, LOADGEN_CPUS);
      await stop(b.p, 10_000);
      const file = join(profDir, `breakwater-${w.name}.cpuprofile`);
      if (existsSync(file)) {
        profiles.push({ workload: w.name, summary: summariseProfile(file) });
        log(`profile written: ${file}`);
      } else log(`WARNING: no profile written for ${w.name} (${readdirSync(profDir).join(', ')})`);
    }
  }

  clearTimeout(watchdog);
  await stop(fake);
  if (nginx) await stop(nginx);

  // --- report ---
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    nginx: nginxBin ? (spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '') || '?') : 'absent',
    vegeta: 'v12.13.0 (' + vegeta + ')',
    autocannon: (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version,
    cpu: `${osCpus()[0]?.model ?? '?'} × ${nCpus}`,
    pinning: pin ? 'load generators + bench/run.ts on CPU 0; fake, nginx, Breakwater on CPU 1 (taskset)' : 'none',
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAverage(),
    durations: T,
    rate: RATE,
    connections: CONNECTIONS,
    clockTicksPerSecond: CLK_TCK,
    metricsSwitch,
    totalSeconds: (Date.now() - startedAt) / 1000,
    command: `make bench   # = node_modules/.bin/node bench/run.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  };
  const md = renderMarkdown({ env, results, variantResults, mem, aims, profiles, metricsSwitch });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.md'), md);
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify({ env, results, variants: variantResults, breakwaterMemoryKb: mem, aims, profiles, breakwaterLogTail: bwLogMain.slice(-2000) }, null, 2) + '\n');
  console.log(md);
  log(`wrote ${join(RESULTS, 'latest.md')} and latest.json`);
  rmSync(dir, { recursive: true, force: true });
}

// ---------- helpers ----------
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
      const res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(1000),
        ...(method === 'POST' ? { body: WORKLOADS[0]!.body, headers: WORKLOADS[0]!.headers } : {}),
      });
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

/** does src/ mention this string anywhere (e.g. an environment switch)? */
function sourceMentions(needle: string): boolean {
  const walk = (d: string): boolean =>
    readdirSync(d, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') && readFileSync(join(d, e.name), 'utf8').includes(needle),
    );
  return walk(join(ROOT, 'src'));
}

interface Aim {
  aim: string;
  measured: string;
  met: boolean | undefined;
}

function computeAims(get: (p: string, w: string) => PhaseResult | undefined, mem: { rssKb: number; hwmKb: number }): Aim[] {
  const aims: Aim[] = [];
  for (const w of WORKLOADS) {
    const n = get('nginx', w.name);
    const b = get('breakwater', w.name);
    const d = get('direct', w.name);
    if (n && b) {
      const ratio = b.closed.cpu.proxyMsPerReq / n.closed.cpu.proxyMsPerReq;
      const ratioOpen = b.open.cpu.proxyMsPerReq / n.open.cpu.proxyMsPerReq;
      aims.push({ aim: `CPU per request ≤ 3× nginx (${w.name})`, measured: `${ratio.toFixed(1)}× closed loop; ${ratioOpen.toFixed(1)}× at ${RATE}/s`, met: ratio <= 3 });
    }
    if (d && b) {
      const added = (b.open.p50Us - d.open.p50Us) / 1000;
      aims.push({ aim: `added p50 < 0.3 ms at ${RATE} req/s (${w.name})`, measured: `${added.toFixed(3)} ms`, met: added < 0.3 });
    }
  }
  const peak = mem.hwmKb / 1024;
  aims.push({ aim: 'RSS < 80 MB', measured: `VmRSS ${(mem.rssKb / 1024).toFixed(1)} MB, peak VmHWM ${peak.toFixed(1)} MB`, met: peak < 80 });
  return aims;
}

const ms = (us: number) => (us / 1000).toFixed(3);
const signed = (x: number) => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(3);

function renderMarkdown(o: {
  env: Record<string, unknown> & { command: string; loadAverageBefore: string; loadAverageAfter: string; pinning: string; node: string; nginx: string; vegeta: string; autocannon: string; cpu: string; totalSeconds: number };
  results: PhaseResult[];
  variantResults: Array<PhaseResult & { rssKb: number; hwmKb: number }>;
  mem: { rssKb: number; hwmKb: number };
  aims: Aim[];
  profiles: Array<{ workload: string; summary: ProfileSummary }>;
  metricsSwitch: boolean;
}): string {
  const out: string[] = [];
  const e = o.env;
  out.push(`## Breakwater overhead benchmark`, '');
  out.push(`Command: \`${e.command}\` — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${e.totalSeconds.toFixed(0)} s.`);
  out.push(
    `Machine: ${e.cpu}; Node ${e.node}, nginx ${e.nginx}, autocannon ${e.autocannon}, vegeta ${e.vegeta.split(' ')[0]}. Pinning: ${e.pinning}. Load average before/after: ${e.loadAverageBefore} / ${e.loadAverageAfter}.`,
  );
  out.push(
    `Closed loop: autocannon, ${CONNECTIONS} keep-alive connections, ${T.closed} s after a ${T.warmup} s warm-up. Open loop: vegeta at a constant ${RATE} req/s for ${T.open} s, latency = time to the last byte. CPU: utime+stime of the whole process group from /proc around the run, divided by the requests served. "bg" = CPU used by other processes on the machine during the run (% of one core; high values make the numbers noisy).`,
    '',
  );
  const byW = (w: string) => o.results.filter((r) => r.workload === w);
  for (const w of WORKLOADS) {
    const rows = byW(w.name);
    const direct = rows.find((r) => r.path === 'direct');
    const nginx = rows.find((r) => r.path === 'nginx');
    out.push(`### ${w.label}`, '');
    out.push('| path | CPU ms/req (closed loop) | × nginx | CPU ms/req at ' + RATE + '/s | fake CPU ms/req | req/s, ' + CONNECTIONS + ' conns | p50 at ' + RATE + '/s (ms) | p99 at ' + RATE + '/s (ms) | added p50 (ms) | added p99 (ms) | bg % |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) out.push(row(r, direct, nginx));
    out.push('');
  }
  out.push(`For direct, the CPU columns are the fake provider's own CPU (what serving the request costs without a proxy). Breakwater: VmRSS ${(o.mem.rssKb / 1024).toFixed(1)} MB, VmHWM ${(o.mem.hwmKb / 1024).toFixed(1)} MB after the runs above.`, '');

  out.push('### Aims', '', '| aim | measured | verdict |', '|---|---|---|');
  for (const a of o.aims) out.push(`| ${a.aim} | ${a.measured} | ${a.met === undefined ? '?' : a.met ? 'met' : '**missed**'} |`);
  out.push('');

  if (o.variantResults.length) {
    out.push('### Logging and metrics on vs off (issue 5)', '');
    if (!o.metricsSwitch)
      out.push(
        '**The proxy has no switch to turn metrics off** (nothing in src/ reads `BREAKWATER_METRICS`): the "silent" rows have logging off but metrics still on, so this measures logging only. The metrics share is estimated from the CPU profile below (prom-client, inclusive).',
        '',
      );
    out.push(`Same workloads, a fresh Breakwater per row; ${T.variantClosed} s closed loop, ${T.variantOpen} s at ${RATE}/s. The first row of each workload is the main run above (log level warn). Added latency is against the direct run above.`, '');
    for (const w of WORKLOADS) {
      const main = o.results.find((r) => r.path === 'breakwater' && r.workload === w.name);
      const direct = o.results.find((r) => r.path === 'direct' && r.workload === w.name);
      const rows = o.variantResults.filter((r) => r.workload === w.name);
      if (!main || !direct) continue;
      out.push(`#### ${w.label}`, '');
      out.push('| Breakwater | CPU ms/req (closed loop) | vs warn | CPU ms/req at ' + RATE + '/s | vs warn | req/s | added p50 (ms) | added p99 (ms) | VmHWM MB | bg % |');
      out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      const line = (label: string, r: PhaseResult, hwm: number | undefined) =>
        `| ${label} | ${r.closed.cpu.proxyMsPerReq.toFixed(4)} | ${pctDiff(r.closed.cpu.proxyMsPerReq, main.closed.cpu.proxyMsPerReq)} | ${r.open.cpu.proxyMsPerReq.toFixed(4)} | ${pctDiff(r.open.cpu.proxyMsPerReq, main.open.cpu.proxyMsPerReq)} | ${r.closed.rps.toFixed(0)} | ${signed((r.open.p50Us - direct.open.p50Us) / 1000)} | ${signed((r.open.p99Us - direct.open.p99Us) / 1000)} | ${hwm === undefined ? '' : (hwm / 1024).toFixed(1)} | ${r.closed.cpu.backgroundPct.toFixed(0)}/${r.open.cpu.backgroundPct.toFixed(0)} |`;
      out.push(line('log warn (main run)', main, undefined));
      for (const r of rows) out.push(line(r.path.replace(/^breakwater, /, ''), r, r.hwmKb));
      out.push('');
    }
  }

  if (o.profiles.length) {
    out.push('### CPU profile of Breakwater under load', '');
    out.push(`\`--cpu-prof\` (250 µs sampling) on a fresh Breakwater (log warn), ${T.warmup} s warm-up + ${T.profile} s closed loop at ${CONNECTIONS} connections per workload.`, '');
    for (const p of o.profiles) {
      const prom = p.summary.packagesInclusive.find((s) => s.name === 'npm: prom-client');
      const pino = p.summary.packagesInclusive.find((s) => s.name === 'npm: pino');
      out.push(`Estimated metrics cost (${p.workload}): prom-client ${prom ? prom.pct.toFixed(1) : '0.0'} % of busy CPU; pino ${pino ? pino.pct.toFixed(1) : '0.0'} %.`, '');
      out.push(profileMarkdown(`${p.workload}`, p.summary));
    }
  }
  return out.join('\n');
}

function pctDiff(x: number, base: number): string {
  const d = (100 * (x - base)) / base;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(0)} %`;
}

function row(r: PhaseResult, direct: PhaseResult | undefined, nginx: PhaseResult | undefined): string {
  const isDirect = r.path === 'direct';
  const cpu = r.closed.cpu.proxyMsPerReq;
  const xNginx = nginx && !isDirect ? `${(cpu / nginx.closed.cpu.proxyMsPerReq).toFixed(1)}×` : '';
  const added = (x: number, d: number | undefined) => (isDirect || d === undefined ? '—' : signed((x - d) / 1000));
  const flagged = r.closed.errors + r.closed.non2xx + r.closed.timeouts > 0 || r.open.success < 1 ? ' ⚠ errors' : '';
  return `| ${isDirect ? 'direct (fake\'s CPU)' : r.path}${flagged} | ${cpu.toFixed(4)} | ${xNginx} | ${r.open.cpu.proxyMsPerReq.toFixed(4)} | ${r.closed.cpu.fakeMsPerReq.toFixed(4)} | ${r.closed.rps.toFixed(0)} | ${ms(r.open.p50Us)} | ${ms(r.open.p99Us)} | ${added(r.open.p50Us, direct?.open.p50Us)} | ${added(r.open.p99Us, direct?.open.p99Us)} | ${r.closed.cpu.backgroundPct.toFixed(0)}/${r.open.cpu.backgroundPct.toFixed(0)} |`;
}

main().catch((err: unknown) => {
  console.error('bench: failed:', err instanceof Error ? err.message : err);
  killAll();
  process.exit(1);
});
