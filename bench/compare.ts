// `make bench`: Breakwater next to its peers, side by side in one run, on one fake provider.
//
//   node_modules/.bin/node bench/compare.ts [--quick] [--render-only] [--no-pin] [--peers a,b,…] [--no-failures]
//
// Peers (each installed by bench/peers/install.sh at a pinned version, cached outside the repo):
// nginx (Debian), the Portkey gateway (npm), the LiteLLM proxy (PyPI, venv), a minimal Node proxy
// (bench/peers/minimal.ts, the floor), and Breakwater; plus "direct" (the app calling the fake).
// Every peer is configured with a primary and a secondary fake (as it would be deployed) and
// gets the same body and the same load:
//   idle        CPU ms/s and wake-ups/s over a quiet window, VmRSS (idle.ts)
//   saturation  closed loop, JSON and a 50-event SSE stream: req/s, CPU µs per request (sweep.ts)
//   fixed rate  open loop at 300, 1000, 3000 req/s (JSON): p50/p99/p99.9, CPU per request
//   first event SSE time to first event at a modest fixed rate (first-chunk.ts)
//   memory      VmHWM after all of that
//   failures    throttling primary, total outage, a 10 s primary outage in steady traffic, driven
//               by the openai SDK at its defaults (failure.ts)
// Servers run on CPU 1, load generators and this script on CPU 0 (taskset), everything on
// 127.0.0.1, every child in its own process group killed by its id, a watchdog bounds the run
// (20 min; --quick: about 3 min, 6 min hard limit). Writes docs/bench.md, docs/bench/*.svg and
// docs/bench/results.json; --render-only redraws the first two from the third.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus as osCpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, SCENARIOS, type Fake, type ScenarioName, type ScenarioPlan } from './lib/failure.ts';
import { firstChunk } from './lib/first-chunk.ts';
import { groupMemoryKb, measureIdle } from './lib/idle.ts';
import { ensureVegeta, PROMPT_WORKLOADS, VEGETA_MODULE, WORKLOADS, type Workload } from './lib/load.ts';
import { peerDefs, startPeer, type Manifest, type PeerDef, type RunningPeer } from './lib/peers.ts';
import { freePort, installCleanup, killAll, loadAverage, run, sleep, start, stop, which, type Spawned } from './lib/procs.ts';
import { renderAll } from './lib/render.ts';
import { PROMPT_PEERS, type FailureCell, type Results, type Row } from './lib/results.ts';
import { fixedRate, saturation, type LoadPlan, type PeerTarget } from './lib/sweep.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'breakwater');
const DOCS = join(ROOT, 'docs');
const RESULTS_JSON = join(DOCS, 'bench', 'results.json');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'render-only': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    'no-failures': { type: 'boolean', default: false },
    peers: { type: 'string', default: 'breakwater,nginx,portkey,litellm,minimal' },
  },
  strict: true,
});
const QUICK = flags.quick!;
const RATES = [300, 1000, 3000];
const FIRST_CHUNK_RATE = 10;
const P = QUICK
  ? {
      limitS: 360,
      idleS: 3,
      sat: { connections: 32, warmupS: 1, rounds: 1, seconds: 2 },
      rate: { warmupS: 0.5, rounds: 1, seconds: 1.5 },
      first: { rate: FIRST_CHUNK_RATE, rounds: 1, seconds: 2 },
      fail: { rate: 20, seconds: 2, blipBeforeS: 1, blipOutageS: 4, blipAfterS: 2, graceS: 10 } satisfies ScenarioPlan,
    }
  : {
      limitS: 1200,
      idleS: 10,
      // Node peers take 10–15 s of saturating load to reach their steady CPU per request (V8's
      // tiering and its GC threads' early work: 2–3× the steady figure in the first seconds)
      sat: { connections: 32, warmupS: 12, rounds: 2, seconds: 3 },
      rate: { warmupS: 1, rounds: 2, seconds: 2 },
      first: { rate: FIRST_CHUNK_RATE, rounds: 2, seconds: 3 },
      // 25 s after the clear: long enough to see a breaker's 30 s open state end in half-open
      fail: { rate: 20, seconds: 10, blipBeforeS: 5, blipOutageS: 10, blipAfterS: 25, graceS: 20 } satisfies ScenarioPlan,
    };

async function main(): Promise<void> {
  if (flags['render-only']) {
    const results = JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as Results;
    renderAll(results, DOCS);
    console.error(`bench: redrew docs/bench.md and docs/bench/*.svg from ${RESULTS_JSON}`);
    return;
  }
  installCleanup();
  if (process.platform !== 'linux') throw new Error('the benchmark reads /proc: Linux only');

  // ---- preflight, outside the watchdog (bounded by its own timeouts): peers and vegeta ----
  const install = await run('bash', [join(ROOT, 'bench', 'peers', 'install.sh')], 40 * 60_000);
  if (install.code !== 0) throw new Error(`bench/peers/install.sh failed (${install.code}):\n${install.output.slice(-3000)}`);
  const manifest = JSON.parse(install.stdout.trim().split('\n').pop()!) as Manifest;
  const vegeta = await ensureVegeta();
  if (!vegeta) throw new Error(`vegeta is needed for the open-loop runs: go install ${VEGETA_MODULE}`);
  const commit = gitCommit();
  const wanted = new Set(flags.peers!.split(',').map((s) => s.trim()));
  const defs = peerDefs(manifest, `${commit} (this checkout)`).filter((d) => wanted.has(d.name));
  for (const w of wanted) if (!defs.some((d) => d.name === w)) console.error(`bench: ${w} is not installed or unknown: its rows are skipped`);

  const pin = !flags['no-pin'] && osCpus().length >= 2 && which('taskset') !== undefined;
  const LOADGEN = pin ? '0' : undefined;
  const SERVERS = pin ? '1' : undefined;
  if (pin) spawnSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

  const startedAt = Date.now();
  const watchdog = setTimeout(() => {
    console.error(`bench: time limit (${P.limitS} s) reached: stopping every child and giving up`);
    killAll();
    process.exit(3);
  }, P.limitS * 1000);
  const log = (msg: string) => console.error(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-compare-'));
  process.on('exit', (code) => {
    if (code === 1 || code === 3) console.error(`bench: logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });
  const loadAverageBefore = loadAverage();
  log(`peers: ${defs.map((d) => `${d.name} ${d.version}`).join(', ')}; ${pin ? 'servers on CPU 1, load on CPU 0' : 'not pinned'}; load average ${loadAverageBefore}`);

  // ---- the fakes: primary (all the load) and secondary (failover target) ----
  const startFake = async (name: string): Promise<{ port: number; p: Spawned }> => {
    const port = await freePort();
    const p = start(BIN, ['fake', '--listen', `127.0.0.1:${port}`, '--name', name], { cpus: SERVERS, logFile: join(dir, `fake-${name}.log`) });
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/_fake/health`, { signal: AbortSignal.timeout(1000) })).ok) return { port, p };
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new Error(`fake ${name} did not start:\n${p.output().slice(-2000)}`);
  };
  const primary = await startFake('primary');
  const secondary = await startFake('secondary');
  // 50 events per stream (and 50 completion tokens per JSON answer) set on the fakes themselves:
  // Portkey and LiteLLM do not forward the x-fake-events request header
  for (const f of [primary, secondary]) {
    const res = await fetch(`http://127.0.0.1:${f.port}/_fake/faults`, { method: 'POST', body: JSON.stringify({ events: 50 }), signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`fake :${f.port}: could not set the stream length (HTTP ${res.status})`);
  }
  const providersFor = (d: PeerDef) => (d.failover ? [primary.port, secondary.port] : [primary.port]);

  // ---- perf: every peer started once, checked, idle, loaded ----
  const running: RunningPeer[] = [];
  for (const d of defs) {
    running.push(await startPeer(d, providersFor(d), { dir, cpus: SERVERS, tag: 'perf' }));
    log(`${d.label} ready (pid ${running.at(-1)!.proc.pid})`);
  }
  const targets: PeerTarget[] = [
    { name: 'direct', url: `http://127.0.0.1:${primary.port}/v1/chat/completions`, headers: {} },
    ...running.map((r) => ({ name: r.name, url: r.url, headers: r.headers, pgid: r.proc.pid })),
  ];
  for (const t of targets) for (const w of WORKLOADS) await sanity(t, w);
  log('every path answers a JSON and an SSE request correctly');

  const results: Results = {
    env: undefined as unknown as Results['env'],
    peers: [{ name: 'direct', label: 'direct (no proxy)', version: '—', failover: undefined }, ...defs.map((d) => ({ name: d.name, label: d.label, version: d.version, failover: d.failover }))],
    idle: {},
    memory: {},
    saturation: { json: {}, sse: {} },
    rates: RATES,
    atRate: {},
    firstChunkRate: FIRST_CHUNK_RATE,
    firstChunk: {},
    failure: {},
  };

  await sleep(2000);
  const idle = await measureIdle(new Map(running.map((r) => [r.name, r.proc.pid])), P.idleS);
  for (const [name, v] of idle) {
    results.idle[name as Row] = v;
    log(`${name.padEnd(12)} idle: ${v.cpuMsPerS.toFixed(2)} ms CPU/s, ${v.wakeupsPerS.toFixed(1)} wake-ups/s, ${(v.rssKb / 1024).toFixed(0)} MB RSS`);
  }

  const plan: LoadPlan = { loadgenCpus: LOADGEN, fakePgid: primary.p.pid, vegeta, dir, log };
  const [json, sse] = WORKLOADS as [Workload, Workload];
  const satJson = await saturation(targets, json, P.sat, plan);
  const satSse = await saturation(targets, sse, P.sat, plan);
  for (const t of targets) {
    results.saturation.json[t.name as Row] = satJson.get(t.name)!;
    results.saturation.sse[t.name as Row] = satSse.get(t.name)!;
  }
  const promptTargets = targets.filter((t) => (PROMPT_PEERS as readonly string[]).includes(t.name));
  const [prompt1k, prompt100k] = PROMPT_WORKLOADS;
  const sat1k = await saturation(promptTargets, prompt1k, { ...P.sat, warmupS: 1 }, plan);
  const sat100k = await saturation(promptTargets, prompt100k, { ...P.sat, warmupS: 1 }, plan);
  results.promptSize = { '1k': Object.fromEntries(sat1k), '100k': Object.fromEntries(sat100k) };
  const capacity = new Map([...satJson].map(([k, v]) => [k, v.rps]));
  for (const rate of RATES) {
    const r = await fixedRate(targets, json, rate, { ...P.rate, capacity }, plan);
    for (const [k, v] of r) (results.atRate[k as Row] ??= []).push(v);
  }
  const fc = await firstChunk(targets, sse, P.first, log);
  for (const [k, v] of fc) results.firstChunk[k as Row] = v;
  for (const r of running) {
    const mem = groupMemoryKb(r.proc.pid);
    results.memory[r.name] = { idleRssKb: results.idle[r.name]?.rssKb ?? NaN, peakHwmKb: mem.hwmKb };
    log(`${r.name.padEnd(12)} VmHWM after the load ${(mem.hwmKb / 1024).toFixed(0)} MB`);
  }

  // ---- failure scenarios ----
  if (!flags['no-failures']) {
    if (!QUICK) for (const r of running) await stop(r.proc);
    const fakes: [Fake, Fake] = [{ port: primary.port }, { port: secondary.port }];
    for (const s of Object.keys(SCENARIOS) as ScenarioName[]) {
      const cells: Partial<Record<Row, FailureCell>> = {};
      cells.direct = await runScenario(s, { baseURL: `http://127.0.0.1:${primary.port}/v1`, headers: {} }, ...fakes, P.fail);
      log(`${s.padEnd(8)} direct       ${describe(cells.direct)}`);
      for (const d of defs) {
        // full run: a fresh process per scenario (no breaker or cooldown state carried over);
        // --quick reuses the perf processes in scenario order
        const peer = QUICK ? running.find((r) => r.name === d.name)! : await startPeer(d, providersFor(d), { dir, cpus: SERVERS, tag: s });
        const cell = await runScenario(s, { baseURL: peer.baseURL, apiKey: peer.apiKey, headers: peer.headers }, ...fakes, P.fail);
        cells[d.name] = cell;
        log(`${s.padEnd(8)} ${d.name.padEnd(12)} ${describe(cell)}`);
        if (!QUICK) await stop(peer.proc);
      }
      results.failure[s] = cells;
    }
  }

  clearTimeout(watchdog);
  for (const r of running) await stop(r.proc);
  await stop(primary.p);
  await stop(secondary.p);

  results.env = {
    date: new Date().toISOString(),
    command: `make bench${process.argv.length > 2 ? ` (node_modules/.bin/node bench/compare.ts ${process.argv.slice(2).join(' ')})` : ''}`,
    commit,
    node: process.version,
    cpu: `${osCpus().length} × ${osCpus()[0]?.model.trim() ?? '?'}`,
    pinning: pin ? 'fakes and peers on CPU 1, load generators and the driver on CPU 0 (taskset)' : 'not pinned',
    loadAverageBefore,
    loadAverageAfter: loadAverage(),
    totalSeconds: (Date.now() - startedAt) / 1000,
    quick: QUICK,
    tools: {
      vegeta: VEGETA_MODULE.split('@')[1]!,
      autocannon: (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version,
      openai: (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'openai', 'package.json'), 'utf8')) as { version: string }).version,
    },
    plan: { ...P, rates: RATES },
  };
  mkdirSync(join(DOCS, 'bench'), { recursive: true });
  writeFileSync(RESULTS_JSON, JSON.stringify(results, null, 2) + '\n');
  renderAll(results, DOCS);
  log(`wrote docs/bench.md, docs/bench/*.svg and docs/bench/results.json (load average ${results.env.loadAverageAfter})`);
}

function describe(c: FailureCell): string {
  if ('unsupported' in c) return c.unsupported;
  const rec = c.recoveryS !== undefined ? `  recovery ${c.recoveryS.toFixed(1)} s` : '';
  return `${c.errors}/${c.calls} app errors${c.hung ? ` (${c.hung} hung)` : ''}, ${c.attemptsPerCall.toFixed(2)} attempts/call (${c.primaryAttempts}+${c.secondaryAttempts}), p50 ${c.p50Ms.toFixed(0)} ms${rec}`;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** One request per path and workload: the answer is what the workload means. */
async function sanity(t: PeerTarget, w: Workload): Promise<void> {
  const res = await fetch(t.url, { method: 'POST', body: w.body, headers: { ...w.headers, ...t.headers }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${t.name} ${w.name}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  if (w.name === 'json') {
    const j = JSON.parse(text) as { choices?: unknown[] };
    if (!Array.isArray(j.choices) || j.choices.length === 0) throw new Error(`${t.name} json: no choices: ${text.slice(0, 300)}`);
  } else {
    const events = text.split('\n').filter((l) => l.startsWith('data: '));
    if (events.length < 51 || events.at(-1)?.trim() !== 'data: [DONE]') throw new Error(`${t.name} sse: ${events.length} data events, last ${events.at(-1)}`);
  }
}

main().catch((err: unknown) => {
  console.error('bench: failed:', err instanceof Error ? err.message : err);
  killAll();
  process.exit(1);
});
