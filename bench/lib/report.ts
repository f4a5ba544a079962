// The benchmark's verdicts and its markdown report.
import { profileMarkdown, type ProfileSummary } from './cpuprofile.ts';
import { allocationMarkdown, type AllocationSummary } from './inspect.ts';
import { WORKLOADS } from './load.ts';
import type { Measured } from './measure.ts';

export interface Memory {
  /** right after start, before any load */
  idleRssKb: number;
  /** after the main runs */
  rssKb: number;
  hwmKb: number;
}

export interface Aim {
  aim: string;
  measured: string;
  met: boolean | undefined;
}

export interface Env {
  command: string;
  date: string;
  node: string;
  nginx: string;
  vegeta: string;
  autocannon: string;
  cpu: string;
  pinning: string;
  loadAverageBefore: string;
  loadAverageAfter: string;
  totalSeconds: number;
  rate: number;
  connections: number;
  main: { warmupS: number; closedRounds: number; closedS: number; openRounds: number; openS: number };
  variants: { warmupS: number; closedRounds: number; closedS: number; openRounds: number; openS: number };
  metricsSwitch: boolean;
}

export interface Report {
  env: Env;
  main: Measured[];
  variants: Array<Measured & { hwmKb: number }>;
  memory: Memory;
  aims: Aim[];
  profiles: Array<{ workload: string; summary: ProfileSummary; seconds: number; allocation: AllocationSummary }>;
}

export function computeAims(main: Measured[], mem: Memory, rate: number, variants: Measured[] = []): Aim[] {
  const get = (label: string, w: string) => main.find((r) => r.label === label && r.workload === w);
  const aims: Aim[] = [];
  for (const w of WORKLOADS) {
    const n = get('nginx', w.name);
    const b = get('breakwater', w.name);
    const d = get('direct', w.name);
    if (n && b) {
      const ratio = b.closed.cpuMsPerReq / n.closed.cpuMsPerReq;
      const ratioOpen = b.open.cpuMsPerReq / n.open.cpuMsPerReq;
      aims.push({ aim: `CPU per request ≤ 3× nginx (${w.name})`, measured: `${ratio.toFixed(1)}× in the closed loop; ${ratioOpen.toFixed(1)}× at ${rate}/s`, met: ratio <= 3 && ratioOpen <= 3 });
    }
    if (d && b) {
      const added = (b.open.p50Us - d.open.p50Us) / 1000;
      aims.push({ aim: `added p50 < 0.3 ms at ${rate} req/s (${w.name})`, measured: `${added.toFixed(3)} ms (p99 ${((b.open.p99Us - d.open.p99Us) / 1000).toFixed(3)} ms)`, met: added < 0.3 });
    }
  }
  // issue 5: what metrics add, from the fresh warn process against the fresh silent one with metrics off
  for (const w of WORKLOADS) {
    const on = variants.find((m) => m.workload === w.name && m.label === 'log warn');
    const off = variants.find((m) => m.workload === w.name && m.label === 'silent, metrics off');
    if (!on || !off) continue;
    const closed = (100 * (on.closed.cpuMsPerReq - off.closed.cpuMsPerReq)) / off.closed.cpuMsPerReq;
    const open = (100 * (on.open.cpuMsPerReq - off.open.cpuMsPerReq)) / off.open.cpuMsPerReq;
    // separate processes differ by up to ±10 % from run to run: when the closed loop and the fixed
    // rate disagree about the 10 % line, say so instead of guessing
    const disagree = closed > 10 !== open > 10;
    aims.push({
      aim: `metrics cost ≤ 10 % of CPU per request (${w.name})`,
      measured: `${closed >= 0 ? '+' : ''}${closed.toFixed(0)} % in the closed loop; ${open >= 0 ? '+' : ''}${open.toFixed(0)} % at ${rate}/s${disagree ? ' (they disagree: within noise, re-run)' : ''}`,
      met: disagree ? undefined : closed <= 10,
    });
  }
  const peak = mem.hwmKb / 1024;
  aims.push({
    aim: 'RSS < 80 MB',
    measured: `${(mem.idleRssKb / 1024).toFixed(0)} MB idle after start; ${(mem.rssKb / 1024).toFixed(0)} MB after the runs; peak (VmHWM) ${peak.toFixed(0)} MB`,
    met: peak < 80,
  });
  return aims;
}

const f3 = (ms: number) => ms.toFixed(3);
const f4 = (ms: number) => ms.toFixed(4);
const signed = (ms: number) => (ms >= 0 ? '+' : '−') + Math.abs(ms).toFixed(3);
const range = (xs: number[]) => (xs.length > 1 ? ` (${f4(Math.min(...xs))}–${f4(Math.max(...xs))})` : '');
const pctDiff = (x: number, base: number) => {
  const d = (100 * (x - base)) / base;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(0)} %`;
};
const bg = (m: Measured) => `${m.closed.backgroundPct.toFixed(0)}/${m.open.backgroundPct.toFixed(0)}`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const hasErrors = (m: Measured) => m.closed.errors + m.closed.non2xx + m.closed.timeouts > 0 || m.open.success < 1;

export function renderMarkdown(r: Report): string {
  const e = r.env;
  const out: string[] = [];
  out.push('## Breakwater overhead benchmark', '');
  out.push(`Command: \`${e.command}\` (${e.date.slice(0, 16).replace('T', ' ')} UTC, ${e.totalSeconds.toFixed(0)} s).`, '');
  out.push(
    `Machine: ${e.cpu}; Node ${e.node}, nginx ${e.nginx}, autocannon ${e.autocannon}, vegeta ${e.vegeta}. ${e.pinning}. Load average before / after: ${e.loadAverageBefore} / ${e.loadAverageAfter}.`,
    '',
  );
  out.push(
    `Method: fake provider, nginx (1 worker, upstream keep-alive, \`proxy_buffering off\`) and Breakwater (one endpoint, log level warn) as separate processes on 127.0.0.1. ` +
      `Closed loop: autocannon, ${e.connections} keep-alive connections, ${e.main.closedRounds} rounds × ${e.main.closedS} s per path after a ${e.main.warmupS} s warm-up; req/s is the mean of the rounds. ` +
      `Open loop: vegeta at a constant ${e.rate} req/s, ${e.main.openRounds} rounds × ${e.main.openS} s per path after 1 s unmeasured at that rate; latency is time to the last byte; percentiles over all rounds (and, for p99, also the median of the rounds' p99s, less sensitive to one disturbed round); added = path − direct. ` +
      `The paths are interleaved round by round (rotating order) so background load spreads evenly. ` +
      `CPU: utime+stime of the proxy's whole process group from /proc around each run, summed, divided by requests served (range over rounds in brackets). ` +
      `For direct, the CPU columns are the fake provider's own CPU. "bg %": CPU used by other processes on the machine during the closed/open runs, in % of one core; high values mean noisy numbers.`,
    '',
  );
  const worstBg = Math.max(...r.main.map((m) => Math.max(m.closed.backgroundPct, m.open.backgroundPct)));
  if (worstBg > 25)
    out.push(`⚠ Other processes on this machine used up to ${worstBg.toFixed(0)} % of a core during these runs (column "bg %"): the numbers are noisy; re-run on a quiet machine before drawing fine conclusions.`, '');
  for (const w of WORKLOADS) {
    const rows = r.main.filter((m) => m.workload === w.name);
    const direct = rows.find((m) => m.label === 'direct');
    const nginx = rows.find((m) => m.label === 'nginx');
    out.push(`### ${w.label}`, '');
    out.push(`| path | CPU ms/req, closed loop | × nginx | CPU ms/req at ${e.rate}/s | × nginx | fake's CPU ms/req | req/s at ${e.connections} conns | p50 at ${e.rate}/s (ms) | p99 at ${e.rate}/s (ms) | added p50 (ms) | added p99 (ms) | added p99, median round (ms) | bg % |`);
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const m of rows) {
      const isDirect = m.direct;
      const x = (a: number, b: number | undefined) => (isDirect || b === undefined ? '' : `${(a / b).toFixed(1)}×`);
      const add = (a: number, b: number | undefined) => (isDirect || b === undefined ? '—' : signed((a - b) / 1000));
      out.push(
        `| ${isDirect ? 'direct (fake)' : m.label}${hasErrors(m) ? ' ⚠ errors' : ''} | ${f4(m.closed.cpuMsPerReq)}${range(m.closed.cpuRounds)} | ${x(m.closed.cpuMsPerReq, nginx?.closed.cpuMsPerReq)} | ${f4(m.open.cpuMsPerReq)} | ${x(m.open.cpuMsPerReq, nginx?.open.cpuMsPerReq)} | ${f4(m.closed.fakeMsPerReq)} | ${m.closed.rps.toFixed(0)} | ${f3(m.open.p50Us / 1000)} | ${f3(m.open.p99Us / 1000)} | ${add(m.open.p50Us, direct?.open.p50Us)} | ${add(m.open.p99Us, direct?.open.p99Us)} | ${add(median(m.open.p99RoundsUs), direct ? median(direct.open.p99RoundsUs) : undefined)} | ${bg(m)} |`,
      );
    }
    out.push('');
  }
  out.push(
    `Breakwater memory: ${(r.memory.idleRssKb / 1024).toFixed(1)} MB VmRSS idle after start, ${(r.memory.rssKb / 1024).toFixed(1)} MB VmRSS after the runs above, ${(r.memory.hwmKb / 1024).toFixed(1)} MB peak (VmHWM).`,
    '',
  );

  out.push('### Aims', '', '| aim | measured | verdict |', '|---|---|---|');
  for (const a of r.aims) out.push(`| ${a.aim} | ${a.measured} | ${a.met === undefined ? 'unclear' : a.met ? 'met' : '**missed**'} |`);
  out.push('');

  if (r.variants.length) {
    out.push('### Logging and metrics on vs off (issue 5)', '');
    if (!e.metricsSwitch)
      out.push(
        '**Breakwater has no switch to turn metrics off yet** (nothing in src/ reads `BREAKWATER_METRICS`). The "silent" row runs with `BREAKWATER_METRICS=off` and log level silent, but its metrics are still on: the rows compare logging levels only. The cost of metrics is estimated from the CPU profile below (prom-client, inclusive).',
        '',
      );
    else
      out.push(
        'At warn and silent nothing is logged on this happy path, so the "silent, metrics off" row against "log warn" isolates the cost of metrics (issue 5: at most 10 % of CPU per request).',
        '',
      );
    const v = e.variants;
    out.push(
      `Four fresh Breakwater processes side by side (log level warn, info, debug, silent), each warmed up ${v.warmupS} s per workload, then interleaved: ${v.closedRounds} rounds × ${v.closedS} s closed loop and ${v.openRounds} rounds × ${v.openS} s at ${e.rate}/s each. "vs warn" compares with the warn process in the same rounds; added latency is against the direct run above. At warn and info nothing is logged per request on this happy path; debug writes one line per request (to a file, as a container runtime would take it).`,
      '',
    );
    for (const w of WORKLOADS) {
      const rows = r.variants.filter((m) => m.workload === w.name);
      const base = rows.find((m) => m.label.endsWith('warn'));
      const direct = r.main.find((m) => m.label === 'direct' && m.workload === w.name);
      if (!base || !direct) continue;
      out.push(`#### ${w.label}`, '');
      out.push(`| Breakwater | CPU ms/req, closed loop | vs warn | CPU ms/req at ${e.rate}/s | vs warn | req/s | added p50 (ms) | added p99 (ms) | VmHWM MB | bg % |`);
      out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const m of rows)
        out.push(
          `| ${m.label}${hasErrors(m) ? ' ⚠ errors' : ''} | ${f4(m.closed.cpuMsPerReq)}${range(m.closed.cpuRounds)} | ${m === base ? '' : pctDiff(m.closed.cpuMsPerReq, base.closed.cpuMsPerReq)} | ${f4(m.open.cpuMsPerReq)} | ${m === base ? '' : pctDiff(m.open.cpuMsPerReq, base.open.cpuMsPerReq)} | ${m.closed.rps.toFixed(0)} | ${signed((m.open.p50Us - direct.open.p50Us) / 1000)} | ${signed((m.open.p99Us - direct.open.p99Us) / 1000)} | ${(m.hwmKb / 1024).toFixed(0)} | ${bg(m)} |`,
        );
      out.push('');
    }
  }

  if (r.profiles.length) {
    out.push('### Where Breakwater spends its CPU', '');
    out.push(
      `\`node --cpu-prof --cpu-prof-interval 250\` on a fresh Breakwater (log level warn, alone on CPU 1; its fake on CPU 0 with the load generator) under the closed loop (${e.connections} connections), one process per workload; start-up and warm-up samples are left out. Shares are of the main thread's busy samples. Then, in the same process, V8's sampling heap profiler (through the inspector, collected objects included) for the allocation per request.`,
      '',
    );
    for (const p of r.profiles) {
      const share = (name: string) => p.summary.packagesInclusive.find((s) => s.name === name)?.pct ?? 0;
      out.push(
        `**${p.workload}** (${p.seconds} s): prom-client (metrics) ${share('npm: prom-client').toFixed(1)} % of busy CPU, pino (logs) ${share('npm: pino').toFixed(1)} %, undici ${share('npm: undici').toFixed(1)} %, opossum ${share('npm: opossum').toFixed(1)} %, GC ${(p.summary.selfAreas.find((s) => s.name === 'GC')?.pct ?? 0).toFixed(1)} %.`,
        '',
      );
      out.push(profileMarkdown(p.workload, p.summary));
      out.push(allocationMarkdown(p.workload, p.allocation));
    }
  }
  return out.join('\n');
}
