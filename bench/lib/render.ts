// docs/bench.md and docs/bench/*.svg from one run's results (results.ts): the tables, the charts
// (svg.ts) and the text around them. Used at the end of `make bench` and by `--render-only`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCENARIOS, type ScenarioName, type ScenarioResult } from './failure.ts';
import { PROMPT_PEERS, type FailureCell, type PeerInfo, type Results, type Row } from './results.ts';
import { barChart, lineChart } from './svg.ts';

export const CHARTS = {
  cpu: 'cpu-per-request.svg',
  latency: (p: string) => `latency-${p}.svg`,
  memory: 'memory.svg',
  failure: 'failure-amplification.svg',
} as const;

const f = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const mb = (kb: number | undefined) => (kb === undefined || !Number.isFinite(kb) ? '—' : (kb / 1024).toFixed(0));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(1)}×` : '—');
const signed = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(2)}` : '—');
const isResult = (c: FailureCell | undefined): c is ScenarioResult => c !== undefined && !('unsupported' in c);

function table(head: string[], rows: string[][], align: string[] = []): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => align[i] ?? (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderCharts(r: Results): Record<string, string> {
  const proxies = r.peers.filter((p) => p.name !== 'direct');
  const labels = (ps: PeerInfo[]) => ps.map((p) => SHORT[p.name]);
  const note = `${r.env.quick ? 'QUICK smoke run, ' : ''}${r.env.date.slice(0, 16).replace('T', ' ')} UTC, ${r.env.cpu.split(' × ')[0]} shared vCPUs, load average ${r.env.loadAverageBefore.split(' ')[0]}: noisy, compare within one run`;
  const charts: Record<string, string> = {};
  charts[CHARTS.cpu] = barChart({
    title: 'CPU per proxied request at saturation (closed loop, 32 connections)',
    yLabel: 'CPU µs per request',
    categories: labels(proxies),
    series: [
      { name: 'JSON completion', values: proxies.map((p) => r.saturation.json[p.name]?.cpuUsPerReq) },
      { name: 'SSE, 50 events', values: proxies.map((p) => r.saturation.sse[p.name]?.cpuUsPerReq) },
    ],
    log: true,
    note,
  });
  for (const [key, pick, name] of [
    ['p50', (a: { p50Ms: number }) => a.p50Ms, 'p50'],
    ['p99', (a: { p99Ms: number }) => a.p99Ms, 'p99'],
    ['p999', (a: { p999Ms: number }) => a.p999Ms, 'p99.9'],
  ] as const) {
    charts[CHARTS.latency(key)] = lineChart({
      title: `${name} latency of a JSON completion at fixed open-loop rates`,
      yLabel: `${name} ms (from scheduled send)`,
      xLabel: 'requests per second (n/a: above what the peer sustains)',
      categories: r.rates.map((x) => `${x}/s`),
      series: r.peers.map((p) => ({ name: SHORT[p.name], values: r.rates.map((rate) => (r.atRate[p.name] ?? []).find((a) => a.rate === rate && a.run)).map((a) => (a ? pick(a) : undefined)) })),
      log: true,
      note,
    });
  }
  charts[CHARTS.memory] = barChart({
    title: 'Resident memory (VmRSS idle, VmHWM after the load)',
    yLabel: 'MB',
    categories: labels(proxies),
    series: [
      { name: 'idle RSS', values: proxies.map((p) => (r.memory[p.name]?.idleRssKb ?? NaN) / 1024) },
      { name: 'peak (VmHWM)', values: proxies.map((p) => (r.memory[p.name]?.peakHwmKb ?? NaN) / 1024) },
    ],
    format: (v) => v.toFixed(0),
    note,
  });
  const scenarios = Object.keys(SCENARIOS) as ScenarioName[];
  charts[CHARTS.failure] = barChart({
    title: 'Failure amplification: provider attempts per app call (openai SDK defaults)',
    yLabel: 'provider attempts per app call',
    categories: labels(r.peers),
    series: scenarios.map((s) => ({
      name: s === 'throttle' ? 'primary 429' : s === 'outage' ? 'total outage' : '10 s outage',
      values: r.peers.map((p) => {
        const c = r.failure[s]?.[p.name];
        return isResult(c) ? c.attemptsPerCall : undefined;
      }),
    })),
    format: (v) => v.toFixed(2),
    note,
  });
  return charts;
}

export function renderMarkdown(r: Results): string {
  const e = r.env;
  const proxies = r.peers.filter((p) => p.name !== 'direct');
  const nginxJson = r.saturation.json.nginx?.cpuUsPerReq;
  const nginxSse = r.saturation.sse.nginx?.cpuUsPerReq;
  const out: string[] = [];
  out.push(`# Benchmark: Breakwater next to its peers

\`\`\`sh
make bench                                              # installs the peers, runs everything (≤ 20 min), rewrites this page
node_modules/.bin/node bench/compare.ts --quick         # smoke run, about 3 minutes (writes this page too: do not commit it)
node_modules/.bin/node bench/compare.ts --render-only   # redraw this page and the charts from docs/bench/results.json
\`\`\`

Other options: \`--peers breakwater,nginx\` (a subset), \`--no-failures\`, \`--no-pin\`.

${e.quick ? '> **This is a `--quick` smoke run**: one short round of everything; the numbers are rough.\n\n' : ''}> **Noise.** ${e.cpu} (a shared VM: up to 8 engineers' builds and tests run on the same 2 cores). Load average
> ${e.loadAverageBefore} before the run and ${e.loadAverageAfter} after it (1, 5, 15 min). Numbers move by 10–30 % between
> runs; compare peers **within** this run (they were loaded alternately, round by round), not against another run.

Run: ${e.date.slice(0, 16).replace('T', ' ')} UTC, commit \`${e.commit}\`, \`${e.command}\`, ${e.totalSeconds.toFixed(0)} s. Node ${e.node}; vegeta ${e.tools.vegeta}, autocannon ${e.tools.autocannon}, openai SDK ${e.tools.openai}. ${e.pinning[0]!.toUpperCase()}${e.pinning.slice(1)}.

![CPU per request](bench/${CHARTS.cpu})

## Peers

Each is installed by \`make bench\` itself (\`bench/peers/install.sh\`, pinned versions, cached in \`~/.cache/breakwater/bench\`),
started on 127.0.0.1 with a generated config pointing at the same fake provider (\`bin/breakwater fake\`), a primary and a
secondary, everything else at the peer's defaults.

${table(
  ['peer', 'version', 'installed from', 'fails over to the secondary by'],
  r.peers.map((p) => [p.label, p.version, INSTALLED[p.name], p.failover ?? (p.name === 'direct' ? '— (the app calls the primary fake)' : '**cannot** (one upstream, errors passed through)')]),
  ['---', '---', '---', '---'],
)}
`);

  out.push(`## Footprint: memory and idle

Idle: CPU time of every thread of the peer's process group (\`/proc/<pid>/task/*/schedstat\`) and wake-ups (voluntary +
nonvoluntary context switches of every thread, \`/proc/<pid>/task/*/status\`) over ${f(r.idle.breakwater?.seconds ?? Object.values(r.idle)[0]?.seconds, 0)} s with no traffic, after start-up
and two check requests. Memory: VmRSS at that point and VmHWM (peak) after all the load below, summed over the group.

${table(
  ['peer', 'idle RSS (MB)', 'peak RSS, VmHWM (MB)', 'idle CPU (ms/s)', 'wake-ups/s'],
  proxies.map((p) => [p.label, mb(r.memory[p.name]?.idleRssKb), mb(r.memory[p.name]?.peakHwmKb), f(r.idle[p.name]?.cpuMsPerS, 2), f(r.idle[p.name]?.wakeupsPerS, 1)]),
)}

![Memory](bench/${CHARTS.memory})
`);

  out.push(`## CPU per request at saturation

Closed loop (autocannon, 32 keep-alive connections; ${roundsText(e)}), a small JSON chat completion and a 50-event SSE stream
(50 events and 50 completion tokens, set on the fakes by a control-API rule, as Portkey and LiteLLM do not forward the
\`x-fake-events\` header). CPU is the peer's whole process group (\`schedstat\`, ns) divided by the requests it served; for direct,
the fake's own.

${table(
  ['peer', 'JSON: req/s', 'JSON: CPU µs/req', '× nginx', 'SSE: req/s', 'SSE: CPU µs/req', '× nginx', "fake's CPU µs/req (JSON)", 'failed'],
  r.peers.map((p) => {
    const j = r.saturation.json[p.name];
    const s = r.saturation.sse[p.name];
    return [p.label, f(j?.rps, 0), f(j?.cpuUsPerReq), p.name === 'direct' ? '' : ratio(j?.cpuUsPerReq, nginxJson), f(s?.rps, 0), f(s?.cpuUsPerReq), p.name === 'direct' ? '' : ratio(s?.cpuUsPerReq, nginxSse), f(j?.fakeUsPerReq), String((j?.failed ?? 0) + (s?.failed ?? 0))];
  }),
)}
`);

  if (r.promptSize) {
    const small = r.promptSize['1k'];
    const large = r.promptSize['100k'];
    const delta = (row: Row) => (large[row]?.cpuUsPerReq ?? NaN) - (small[row]?.cpuUsPerReq ?? NaN);
    const rows = PROMPT_PEERS.filter((row) => small[row] || large[row]);
    const label = (row: Row) => r.peers.find((p) => p.name === row)?.label ?? row;
    out.push(`## Prompt size: 1 KB against 100 KB

The same closed loop with a chat completion whose body is 1 KB and then 100 KB (one long user message), to see whether a
large prompt costs a proxy more than the bytes it moves (issue 11: a proxy that parses a whole body to read \`model\` pays
about 40 µs per 100 KB). Extra = 100 KB − 1 KB; above the minimal Node proxy = the peer's extra minus the minimal proxy's
(what reading, writing and buffering 99 KB more costs any Node proxy), the part that is the peer's own.

${table(
  ['peer', '1 KB: req/s', '1 KB: CPU µs/req', '100 KB: req/s', '100 KB: CPU µs/req', 'extra µs/req', 'extra above the minimal proxy (µs)'],
  rows.map((row) => [
    label(row),
    f(small[row]?.rps, 0),
    f(small[row]?.cpuUsPerReq),
    f(large[row]?.rps, 0),
    f(large[row]?.cpuUsPerReq),
    f(delta(row)),
    row === 'direct' || row === 'minimal' ? '' : f(delta(row) - delta('minimal')),
  ]),
)}
`);
  }

  const direct = r.atRate.direct ?? [];
  out.push(`## Latency at fixed rates

Open loop (vegeta: requests leave on a fixed schedule whatever the peer does, so latency counts from the scheduled send
time and a stall delays no later request), JSON chat completion. A rate above what the peer sustained in the closed loop
is not run (it would measure vegeta's queue, not the peer): marked "over capacity". Added = peer − direct at the same rate.

${r.rates
  .map((rate) => {
    const d = direct.find((a) => a.rate === rate);
    return `### ${rate} req/s\n\n${table(
      ['peer', 'p50 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'added p99 (ms)', 'added p99.9 (ms)', 'CPU µs/req', 'success'],
      r.peers.map((p) => {
        const a = (r.atRate[p.name] ?? []).find((x) => x.rate === rate);
        if (!a || !a.run) return [p.label, `over capacity (saturates at ${f(r.saturation.json[p.name]?.rps, 0)} req/s)`, '', '', '', '', '', ''];
        return [p.label, f(a.p50Ms, 2), f(a.p99Ms, 2), f(a.p999Ms, 2), p.name === 'direct' || !d?.run ? '' : signed(a.p99Ms - d.p99Ms), p.name === 'direct' || !d?.run ? '' : signed(a.p999Ms - d.p999Ms), f(a.cpuUsPerReq), `${(a.success * 100).toFixed(2)} %`];
      }),
    )}\n`;
  })
  .join('\n')}
![p50](bench/${CHARTS.latency('p50')})
![p99](bench/${CHARTS.latency('p99')})
![p99.9](bench/${CHARTS.latency('p999')})
`);

  const fcd = r.firstChunk.direct;
  out.push(`## Time to the first SSE event

${r.firstChunkRate} streamed requests per second (open loop, undici, a 50-event stream), from the scheduled send to the first body
chunk holding a \`data:\` line.

${table(
  ['peer', 'p50 (ms)', 'p99 (ms)', 'added p50 (ms)', 'added p99 (ms)', 'failed'],
  r.peers.map((p) => {
    const c = r.firstChunk[p.name];
    return [p.label, f(c?.p50Ms, 2), f(c?.p99Ms, 2), p.name === 'direct' || !c || !fcd ? '' : signed(c.p50Ms - fcd.p50Ms), p.name === 'direct' || !c || !fcd ? '' : signed(c.p99Ms - fcd.p99Ms), String(c?.failed ?? '—')];
  }),
)}
`);

  const fp = e.plan as { fail?: { rate: number; seconds: number; blipBeforeS: number; blipOutageS: number; blipAfterS: number } };
  const fail = fp.fail;
  out.push(`## Failure scenarios

An app using the official \`openai\` SDK at its defaults (2 retries with exponential backoff, honouring \`retry-after\` and
\`x-should-retry\`) sends ${fail?.rate ?? '?'} chat completions per second on a fixed schedule through each peer${e.quick ? ' (quick run: the perf processes are reused in scenario order, so breaker state carries over)' : ', started fresh for each scenario'}.
The fakes count every request they receive (\`GET /_fake/stats\`): **attempts per call** = (primary + secondary requests) ÷ app
calls, the amplification an outage causes. **Recovery** (10 s outage only): seconds from the primary's fault being cleared to
the first answer the primary serves again. A peer that cannot fail over still runs each scenario; what its app sees is
what it gets.

${(Object.keys(SCENARIOS) as ScenarioName[])
  .filter((s) => r.failure[s])
  .map((s) => {
    const dur = !fail ? '' : s === 'blip' ? ` (${fail.blipBeforeS} s healthy, ${fail.blipOutageS} s outage, ${fail.blipAfterS} s healthy)` : ` (${fail.seconds} s)`;
    const head = ['peer', 'fails over', 'app errors', 'attempts per call', 'primary + secondary attempts', 'app p50 / p99 (ms)'];
    if (s === 'blip') head.push('primary serves again after (s)', 'last app error after the clear (s)');
    return `### ${SCENARIOS[s]}${dur}\n\n${table(
      head,
      r.peers.map((p) => {
        const c = r.failure[s]?.[p.name];
        if (!isResult(c)) return [p.label, c ? c.unsupported : 'not run', '', '', '', ''];
        const row = [p.label, p.failover ? 'yes' : p.name === 'direct' ? '—' : '**no**', `${c.errors} / ${c.calls}${c.hung ? ` (${c.hung} hung)` : ''}`, c.attemptsPerCall.toFixed(2), `${c.primaryAttempts} + ${c.secondaryAttempts}`, `${f(c.p50Ms, 0)} / ${f(c.p99Ms, 0)}`];
        if (s === 'blip') row.push(c.recoveryS === undefined ? 'not within the run' : c.recoveryS.toFixed(1), c.lastErrorAfterClearS === undefined ? 'no errors' : c.lastErrorAfterClearS.toFixed(1));
        return row;
      }),
    )}\n`;
  })
  .join('\n')}
![Failure amplification](bench/${CHARTS.failure})
`);

  out.push(`## How it is measured

- **One fake, one body, one load for all.** \`bin/breakwater fake\` (the project's fault-injecting provider) is the primary
  for every peer; a second fake is the secondary. The JSON body is a small chat completion for \`gpt-4.1-mini\`; the stream
  has 50 content events. Every peer answers one JSON and one SSE request correctly before anything is measured.
- **Interleaved.** Peers are loaded one after the other in rounds whose order rotates, so a burst of other work on the
  machine lands on all of them.
- **Pinned.** With two CPUs, the fakes and the peers share CPU 1, the load generators (autocannon, vegeta, the SDK app) and
  the driver CPU 0 (\`taskset\`). CPU per request is the peer's own; the fake's is shown separately.
- **Bounded.** Everything listens on 127.0.0.1 (the Portkey gateway, which binds every interface, gets a preloaded
  \`listen()\` wrapper, \`bench/peers/loopback.ts\`); every child runs in its own process group and is killed by its id on exit,
  failure, Ctrl-C or the watchdog (${(e.plan as { limitS?: number }).limitS ?? '?'} s); the temp dir is removed.
- **Node peers** (Breakwater, the minimal proxy, Portkey) run on the pinned Node 24; Breakwater and the minimal proxy
  from TypeScript sources by type stripping, which costs about 25 MB of their idle RSS (issue 11: compiled JS).
- **Portkey** 1.15.2 pulls \`@hono/node-server\` through a caret range; from 1.14 on, every streamed answer fails in its
  relay ("TypeError: immutable", answered as HTTP 500), so the bench pins 1.13.8 with npm \`overrides\` in Portkey's own prefix.
  The gateway takes its routing config per request, in the \`x-portkey-config\` header (as its SDK sends it); every request here
  carries it. Its SSE reader sleeps 25 ms before relaying a stream's first chunk (a \`setTimeout(…, 25)\` in the gateway's
  build), which the first-event table shows; it proxies through \`fetch()\` and web streams.
- **LiteLLM**: the install tries the newest \`litellm[proxy]\` first and falls back to older releases until one installs
  (here the newest ones need extras not on this machine's index); it runs with one worker, the packaged cost map
  (\`LITELLM_LOCAL_MODEL_COST_MAP\`, no fetch at start-up) and a throwaway master key (it refuses to start without one).

## Other benchmark tools

- \`bench/run.ts\`: Breakwater alone next to nginx and direct, with log-level/metrics variants and, when an aim is missed, a
  CPU profile and an allocation profile (\`bench/results/latest.md\`).
- \`bench/ab.sh OLD NEW [ROUNDS]\`: two checkouts' proxies head to head, CPU per JSON request; fairer than two runs of
  \`make bench\` for a ±5 % change.
- \`bench/scanner.ts\`: the SSE scanner alone, CPU per event.
- \`make bench-features\` (\`bench/features.sh N\`): each traffic-shaping feature on alone, CPU per request against the plain
  config, then each feature's own code as a share of a CPU profile's busy samples (\`bench/feature-shares.ts\`).
- \`bench/cache-miss.ts\`, \`bench/cache-profile.sh\`: the cache's miss path in process, and profiled in a proxy.
- \`bench/idle.ts\`: an idle sidecar's CPU, wake-ups and RSS; \`bench/footprint.ts\`: idle and peak RSS by start-up flags.
`);
  return out.join('\n');
}

/** chart labels (the tables use the full ones) */
const SHORT: Record<Row, string> = { direct: 'direct', breakwater: 'Breakwater', nginx: 'nginx', portkey: 'Portkey', litellm: 'LiteLLM', minimal: 'minimal Node' };

const INSTALLED: Record<Row, string> = {
  direct: '—',
  breakwater: 'this checkout (`bin/breakwater proxy`)',
  nginx: 'Debian package `nginx` (apt-get when missing and root)',
  portkey: 'npm `@portkey-ai/gateway` in its own prefix, run by the pinned Node 24',
  litellm: 'PyPI `litellm[proxy]` in its own venv',
  minimal: '`bench/peers/minimal.ts`: node:http → undici `dispatch()`, keep-alive pool',
};

function roundsText(e: Results['env']): string {
  const p = e.plan as { sat?: { warmupS: number; rounds: number; seconds: number } };
  return p.sat ? `${p.sat.warmupS} s warm-up, ${p.sat.rounds} × ${p.sat.seconds} s per peer and workload` : 'rounds as planned';
}

/** Writes docs/bench.md and docs/bench/*.svg. */
export function renderAll(r: Results, docsDir: string): void {
  mkdirSync(join(docsDir, 'bench'), { recursive: true });
  for (const [name, svg] of Object.entries(renderCharts(r))) writeFileSync(join(docsDir, 'bench', name), svg);
  writeFileSync(join(docsDir, 'bench.md'), renderMarkdown(r) + '\n');
}
