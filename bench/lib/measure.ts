// One measurement set: several targets (direct, nginx, Breakwater, or Breakwater variants) under
// one workload, interleaved in rounds (the order rotates every round) so that whatever else the
// machine is doing is spread over all of them instead of landing on one. CPU is read from /proc
// around every run and summed; open-loop percentiles are taken over the union of the rounds.
import { closedLoop, openLoop, vegetaReport, type OpenResult, type Workload } from './load.ts';
import { CLK_TCK, childTicks, cpuTicks, groupTicks, machineTicks } from './procs.ts';

export interface Target {
  label: string;
  url: string;
  /** process group of the proxy under test; undefined for direct (then the fake's CPU is reported) */
  pgid?: number;
}

export interface Plan {
  connections: number;
  rate: number;
  warmupS: number;
  closedRounds: number;
  closedS: number;
  openRounds: number;
  openS: number;
  loadgenCpus: string | undefined;
  vegeta: string;
  dir: string;
  fakePgid: number;
}

export interface Measured {
  label: string;
  workload: Workload['name'];
  direct: boolean;
  closed: {
    requests: number;
    seconds: number;
    rps: number;
    rpsRounds: number[];
    /** CPU ms per request of the proxy (direct: of the fake), all rounds */
    cpuMsPerReq: number;
    cpuRounds: number[];
    fakeMsPerReq: number;
    errors: number;
    non2xx: number;
    timeouts: number;
    /** % of one core */
    loadgenPct: number;
    backgroundPct: number;
  };
  open: OpenResult & {
    cpuMsPerReq: number;
    fakeMsPerReq: number;
    backgroundPct: number;
    p50RoundsUs: number[];
    p99RoundsUs: number[];
  };
}

interface Snap {
  proxy: number;
  fake: number;
  machine: number;
  children: number;
  self: number;
  at: number;
}

function snap(t: Target, fakePgid: number): Snap {
  return {
    proxy: t.pgid !== undefined ? groupTicks(t.pgid) : 0,
    fake: groupTicks(fakePgid),
    machine: machineTicks().busy,
    children: childTicks(),
    self: cpuTicks('self'),
    at: performance.now(),
  };
}

interface Acc {
  proxy: number;
  fake: number;
  loadgen: number;
  background: number;
  seconds: number;
}
const emptyAcc = (): Acc => ({ proxy: 0, fake: 0, loadgen: 0, background: 0, seconds: 0 });

function accumulate(acc: Acc, a: Snap, b: Snap): void {
  const proxy = b.proxy - a.proxy;
  const fake = b.fake - a.fake;
  const loadgen = b.children - a.children;
  acc.proxy += proxy;
  acc.fake += fake;
  acc.loadgen += loadgen;
  acc.background += Math.max(0, b.machine - a.machine - proxy - fake - loadgen - (b.self - a.self));
  acc.seconds += (b.at - a.at) / 1000;
}

const tickMs = (ticks: number) => (ticks * 1000) / CLK_TCK;
const pctOfCore = (ticks: number, seconds: number) => (100 * tickMs(ticks)) / 1000 / seconds;
const rotate = <T>(xs: T[], k: number): T[] => xs.map((_, i) => xs[(i + k) % xs.length]!);

export async function measure(targets: Target[], w: Workload, plan: Plan, log: (msg: string) => void): Promise<Measured[]> {
  for (const t of targets) await closedLoop(t.url, w, plan.connections, plan.warmupS, plan.loadgenCpus); // JIT, pools, connections

  const closed = new Map(targets.map((t) => [t.label, { acc: emptyAcc(), requests: 0, errors: 0, non2xx: 0, timeouts: 0, rps: [] as number[], cpu: [] as number[] }]));
  for (let r = 0; r < plan.closedRounds; r++) {
    for (const t of rotate(targets, r)) {
      const c = closed.get(t.label)!;
      const a = snap(t, plan.fakePgid);
      const res = await closedLoop(t.url, w, plan.connections, plan.closedS, plan.loadgenCpus);
      const b = snap(t, plan.fakePgid);
      accumulate(c.acc, a, b);
      c.requests += res.requests;
      c.errors += res.errors;
      c.non2xx += res.non2xx;
      c.timeouts += res.timeouts;
      c.rps.push(res.rps);
      c.cpu.push(tickMs(t.pgid !== undefined ? b.proxy - a.proxy : b.fake - a.fake) / res.requests);
    }
  }

  // one unmeasured second at the open-loop rate first: the closed loop leaves a large heap whose
  // clean-up (a major GC) would otherwise land in the first measured round
  for (const t of targets) await openLoop(plan.vegeta, plan.dir, t.url, w, plan.rate, 1, plan.loadgenCpus, `${t.label}-${w.name}-warmup`.replace(/[^a-z0-9-]+/gi, '_'));
  const open = new Map(targets.map((t) => [t.label, { acc: emptyAcc(), files: [] as string[] }]));
  for (let r = 0; r < plan.openRounds; r++) {
    for (const t of rotate(targets, r)) {
      const o = open.get(t.label)!;
      const a = snap(t, plan.fakePgid);
      o.files.push(await openLoop(plan.vegeta, plan.dir, t.url, w, plan.rate, plan.openS, plan.loadgenCpus, `${t.label}-${w.name}-${r}`.replace(/[^a-z0-9-]+/gi, '_')));
      const b = snap(t, plan.fakePgid);
      accumulate(o.acc, a, b);
    }
  }

  const out: Measured[] = [];
  for (const t of targets) {
    const c = closed.get(t.label)!;
    const o = open.get(t.label)!;
    const report = await vegetaReport(plan.vegeta, o.files, plan.rate);
    const p50RoundsUs: number[] = [];
    const p99RoundsUs: number[] = [];
    for (const f of o.files) {
      const one = await vegetaReport(plan.vegeta, [f], plan.rate);
      p50RoundsUs.push(one.p50Us);
      p99RoundsUs.push(one.p99Us);
    }
    const direct = t.pgid === undefined;
    const m: Measured = {
      label: t.label,
      workload: w.name,
      direct,
      closed: {
        requests: c.requests,
        seconds: c.acc.seconds,
        rps: c.rps.reduce((x, y) => x + y, 0) / c.rps.length,
        rpsRounds: c.rps,
        cpuMsPerReq: tickMs(direct ? c.acc.fake : c.acc.proxy) / c.requests,
        cpuRounds: c.cpu,
        fakeMsPerReq: tickMs(c.acc.fake) / c.requests,
        errors: c.errors,
        non2xx: c.non2xx,
        timeouts: c.timeouts,
        loadgenPct: pctOfCore(c.acc.loadgen, c.acc.seconds),
        backgroundPct: pctOfCore(c.acc.background, c.acc.seconds),
      },
      open: {
        ...report,
        cpuMsPerReq: tickMs(direct ? o.acc.fake : o.acc.proxy) / report.requests,
        fakeMsPerReq: tickMs(o.acc.fake) / report.requests,
        backgroundPct: pctOfCore(o.acc.background, o.acc.seconds),
        p50RoundsUs,
        p99RoundsUs,
      },
    };
    out.push(m);
    log(
      `${t.label.padEnd(30)} ${w.name.padEnd(4)} ${m.closed.rps.toFixed(0).padStart(6)} req/s  cpu ${m.closed.cpuMsPerReq.toFixed(4)} ms/req (${m.open.cpuMsPerReq.toFixed(4)} at ${plan.rate}/s)` +
        `  p50 ${(report.p50Us / 1000).toFixed(3)} p99 ${(report.p99Us / 1000).toFixed(3)} ms  loadgen ${m.closed.loadgenPct.toFixed(0)} %  bg ${m.closed.backgroundPct.toFixed(0)}/${m.open.backgroundPct.toFixed(0)} %`,
    );
    if (c.errors + c.non2xx + c.timeouts > 0 || report.success < 1)
      log(`  WARNING ${t.label} ${w.name}: closed ${c.errors} errors, ${c.non2xx} non-2xx, ${c.timeouts} timeouts; open success ${(report.success * 100).toFixed(2)} % ${report.errors.slice(0, 3).join('; ')}`);
  }
  return out;
}
