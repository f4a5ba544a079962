// The load side of the peer comparison: every peer gets the same body, the same fake and the same
// load, interleaved round by round in rotating order (whatever else the machine does lands on all
// of them). Two kinds of run:
//   saturation  closed loop (autocannon, N keep-alive connections): requests/s and CPU per request
//               of the peer's whole process group (/proc schedstat, ns), and of the fake;
//   fixed rate  open loop (vegeta at R req/s: requests leave on schedule whatever the peer does,
//               so a slow answer delays no later request): p50/p99/p99.9 over all rounds, success
//               ratio, CPU per request. A rate above what the peer sustained closed-loop is not run
//               (it would only measure vegeta's queue) and is reported as over capacity.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupCpuNs } from './idle.ts';
import { closedLoop, openLoop, type Workload } from './load.ts';
import { run } from './procs.ts';

export interface PeerTarget {
  name: string;
  /** chat completions URL */
  url: string;
  /** extra request headers the peer needs (Portkey's config header) */
  headers: Record<string, string>;
  /** the peer's process group; undefined for direct (the fake itself is measured) */
  pgid?: number;
}

export interface LoadPlan {
  loadgenCpus: string | undefined;
  fakePgid: number;
  vegeta: string;
  dir: string;
  log: (msg: string) => void;
}

export interface Saturation {
  rps: number;
  requests: number;
  /** CPU µs per request of the peer (direct: of the fake) */
  cpuUsPerReq: number;
  cpuRoundsUs: number[];
  fakeUsPerReq: number;
  failed: number;
}

export interface AtRate {
  rate: number;
  /** false: the peer saturated below this rate closed-loop; not run */
  run: boolean;
  requests: number;
  success: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  cpuUsPerReq: number;
}

const withHeaders = (w: Workload, t: PeerTarget): Workload => ({ ...w, headers: { ...w.headers, ...t.headers } });
const rotate = <T>(xs: readonly T[], k: number): T[] => xs.map((_, i) => xs[(i + k) % xs.length]!);
const cpuNs = (t: PeerTarget, plan: LoadPlan) => groupCpuNs(t.pgid ?? plan.fakePgid);

export async function saturation(
  targets: readonly PeerTarget[],
  w: Workload,
  o: { connections: number; warmupS: number; rounds: number; seconds: number },
  plan: LoadPlan,
): Promise<Map<string, Saturation>> {
  for (const t of targets) await closedLoop(t.url, withHeaders(w, t), o.connections, o.warmupS, plan.loadgenCpus);
  const acc = new Map(targets.map((t) => [t.name, { ns: 0, fakeNs: 0, requests: 0, failed: 0, rps: [] as number[], rounds: [] as number[] }]));
  for (let r = 0; r < o.rounds; r++) {
    for (const t of rotate(targets, r)) {
      const a = acc.get(t.name)!;
      const [p0, f0] = [cpuNs(t, plan), groupCpuNs(plan.fakePgid)];
      const res = await closedLoop(t.url, withHeaders(w, t), o.connections, o.seconds, plan.loadgenCpus);
      const [p1, f1] = [cpuNs(t, plan), groupCpuNs(plan.fakePgid)];
      a.ns += p1 - p0;
      a.fakeNs += f1 - f0;
      a.requests += res.requests;
      a.failed += res.errors + res.non2xx + res.timeouts;
      a.rps.push(res.rps);
      a.rounds.push(res.requests > 0 ? (p1 - p0) / 1000 / res.requests : NaN);
    }
  }
  const out = new Map<string, Saturation>();
  for (const t of targets) {
    const a = acc.get(t.name)!;
    const s: Saturation = {
      rps: a.rps.reduce((x, y) => x + y, 0) / a.rps.length,
      requests: a.requests,
      // nothing answered (every request timed out): no per-request figure
      cpuUsPerReq: a.requests > 0 ? a.ns / 1000 / a.requests : NaN,
      cpuRoundsUs: a.rounds,
      fakeUsPerReq: a.requests > 0 ? a.fakeNs / 1000 / a.requests : NaN,
      failed: a.failed,
    };
    out.set(t.name, s);
    plan.log(`${t.name.padEnd(12)} ${w.name.padEnd(4)} saturation ${s.rps.toFixed(0).padStart(6)} req/s  ${s.cpuUsPerReq.toFixed(1)} µs CPU/req${s.failed ? `  ${s.failed} FAILED` : ''}`);
  }
  return out;
}

/** Percentile (nearest rank) of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  // the epsilon keeps 99.9 % of 1000 at rank 999 (0.999 * 1000 is 999.0000000000001 in binary)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length - 1e-9) - 1))]!;
}

/** Latencies (ms, ascending) and success count of vegeta result files, via `vegeta encode --to=json`. */
async function vegetaLatencies(vegeta: string, files: string[], out: string): Promise<{ ms: number[]; ok: number }> {
  const r = await run(vegeta, ['encode', '--to=json', `--output=${out}`, ...files], 60_000);
  if (r.code !== 0) throw new Error(`vegeta encode failed: ${r.output.slice(-1000)}`);
  const ms: number[] = [];
  let ok = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (!line) continue;
    const j = JSON.parse(line) as { code: number; latency: number };
    ms.push(j.latency / 1e6);
    if (j.code >= 200 && j.code < 300) ok++;
  }
  return { ms: ms.sort((a, b) => a - b), ok };
}

export async function fixedRate(
  targets: readonly PeerTarget[],
  w: Workload,
  rate: number,
  o: { warmupS: number; rounds: number; seconds: number; capacity: ReadonlyMap<string, number> },
  plan: LoadPlan,
): Promise<Map<string, AtRate>> {
  const able = targets.filter((t) => (o.capacity.get(t.name) ?? Infinity) >= rate);
  const tag = (t: PeerTarget, r: number | string) => `${t.name}-${w.name}-${rate}-${r}`.replace(/[^a-z0-9-]+/gi, '_');
  for (const t of able) await openLoop(plan.vegeta, plan.dir, t.url, withHeaders(w, t), rate, o.warmupS, plan.loadgenCpus, tag(t, 'warmup'));
  const acc = new Map(able.map((t) => [t.name, { ns: 0, files: [] as string[] }]));
  for (let r = 0; r < o.rounds; r++) {
    for (const t of rotate(able, r)) {
      const a = acc.get(t.name)!;
      const p0 = cpuNs(t, plan);
      a.files.push(await openLoop(plan.vegeta, plan.dir, t.url, withHeaders(w, t), rate, o.seconds, plan.loadgenCpus, tag(t, r)));
      a.ns += cpuNs(t, plan) - p0;
    }
  }
  const out = new Map<string, AtRate>();
  for (const t of targets) {
    const a = acc.get(t.name);
    if (!a) {
      out.set(t.name, { rate, run: false, requests: 0, success: NaN, p50Ms: NaN, p99Ms: NaN, p999Ms: NaN, cpuUsPerReq: NaN });
      plan.log(`${t.name.padEnd(12)} ${w.name.padEnd(4)} ${rate}/s skipped: saturates at ${(o.capacity.get(t.name) ?? 0).toFixed(0)} req/s`);
      continue;
    }
    const { ms, ok } = await vegetaLatencies(plan.vegeta, a.files, join(plan.dir, `${tag(t, 'all')}.jsonl`));
    const res: AtRate = {
      rate,
      run: true,
      requests: ms.length,
      success: ok / Math.max(1, ms.length),
      p50Ms: percentile(ms, 50),
      p99Ms: percentile(ms, 99),
      p999Ms: percentile(ms, 99.9),
      cpuUsPerReq: a.ns / 1000 / Math.max(1, ms.length),
    };
    out.set(t.name, res);
    plan.log(
      `${t.name.padEnd(12)} ${w.name.padEnd(4)} ${String(rate).padStart(4)}/s  p50 ${res.p50Ms.toFixed(2)}  p99 ${res.p99Ms.toFixed(2)}  p99.9 ${res.p999Ms.toFixed(2)} ms  ${res.cpuUsPerReq.toFixed(1)} µs CPU/req${res.success < 1 ? `  success ${(res.success * 100).toFixed(1)} %` : ''}`,
    );
  }
  return out;
}
