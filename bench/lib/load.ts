// Load generators, each run as its own (pinned) process so it never shares an event loop or
// a core with the servers under test:
//  - closed loop: autocannon (N keep-alive connections, each sends its next request when the
//    previous answer is complete) for throughput and CPU per request;
//  - open loop: vegeta (requests start on a fixed schedule whatever the server does, latency
//    is time to the last body byte, nanosecond resolution) for latency at a fixed rate.
// autocannon's own rate option is not used for latency: it lets each connection send its
// per-second quota back to back and then waits for the next second (bursts, not a schedule),
// and its histogram has millisecond resolution, too coarse for a sub-millisecond budget.
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { run, which } from './procs.ts';

export interface Workload {
  name: 'json' | 'sse' | 'prompt-1k' | 'prompt-100k';
  label: string;
  body: string;
  headers: Record<string, string>;
}

export const WORKLOADS: Workload[] = [
  {
    name: 'json',
    label: 'JSON chat completion',
    body: JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 16 }),
    headers: { 'content-type': 'application/json' },
  },
  {
    name: 'sse',
    label: 'SSE stream, 50 events',
    body: JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 64, stream: true }),
    headers: { 'content-type': 'application/json', 'x-fake-events': '50' },
  },
];

/** A chat completion whose whole body is about `bytes` long: the prompt is one user message of filler text. */
function promptOfSize(name: Workload['name'], bytes: number): Workload {
  const shell = JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: '' }], max_tokens: 16 });
  const words = 'the quick brown fox jumps over the lazy dog; ';
  const content = words.repeat(Math.ceil(bytes / words.length)).slice(0, Math.max(0, bytes - shell.length));
  return {
    name,
    label: `JSON chat completion, ${bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MB` : `${bytes / 1024} KB`} body`,
    body: JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }], max_tokens: 16 }),
    headers: { 'content-type': 'application/json' },
  };
}

/** issue 11: a prompt of 100 KB should cost no more than one of 1 KB + 5 µs (the proxy never parses a whole body it only forwards) */
export const PROMPT_WORKLOADS: [Workload, Workload] = [promptOfSize('prompt-1k', 1024), promptOfSize('prompt-100k', 100 * 1024)];

export interface ClosedResult {
  requests: number;
  rps: number;
  errors: number;
  non2xx: number;
  timeouts: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

const NODE = process.execPath;
const AUTOCANNON = join(import.meta.dirname, '..', '..', 'node_modules', 'autocannon', 'autocannon.js');

export async function closedLoop(url: string, w: Workload, connections: number, seconds: number, cpus: string | undefined): Promise<ClosedResult> {
  const args = [AUTOCANNON, '-j', '-c', String(connections), '-d', String(seconds), '-t', '5', '-m', 'POST', '-b', w.body];
  for (const [k, v] of Object.entries(w.headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const r = await run(NODE, args, (seconds + 20) * 1000, { cpus });
  if (r.code !== 0) throw new Error(`autocannon failed (${r.code}): ${r.output.slice(-2000)}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    requests: { total: number; average: number };
    duration: number;
    errors: number;
    non2xx: number;
    timeouts: number;
    latency: { p50: number; p99: number };
  };
  return {
    requests: j.requests.total,
    rps: j.requests.total / j.duration,
    errors: j.errors,
    non2xx: j.non2xx,
    timeouts: j.timeouts,
    latencyP50Ms: j.latency.p50,
    latencyP99Ms: j.latency.p99,
  };
}

export interface OpenResult {
  rate: number;
  requests: number;
  success: number;
  statusCodes: Record<string, number>;
  errors: string[];
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
}

/** vegeta on PATH, in GOBIN/GOPATH/bin, or ~/go/bin */
export function findVegeta(): string | undefined {
  const candidates = [which('vegeta'), process.env.GOBIN && join(process.env.GOBIN, 'vegeta'), process.env.GOPATH && join(process.env.GOPATH, 'bin', 'vegeta'), join(homedir(), 'go', 'bin', 'vegeta')];
  return candidates.find((c): c is string => typeof c === 'string' && c !== '' && existsSync(c));
}

export const VEGETA_MODULE = 'github.com/tsenart/vegeta/v12@v12.13.0';

/** Builds vegeta from the Go module proxy when Go is here and vegeta is not (one time, bounded). */
export async function ensureVegeta(): Promise<string | undefined> {
  const found = findVegeta();
  if (found) return found;
  const go = which('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return undefined;
  console.error(`bench: vegeta not found; building it once: go install ${VEGETA_MODULE} (up to 3 min)`);
  const r = await run(go, ['install', VEGETA_MODULE], 180_000);
  if (r.code !== 0) {
    console.error(`bench: go install failed:\n${r.output.slice(-2000)}`);
    return undefined;
  }
  return findVegeta();
}

/** One open-loop attack; returns the file of its results (see vegetaReport). */
export async function openLoop(vegeta: string, dir: string, url: string, w: Workload, rate: number, seconds: number, cpus: string | undefined, tag: string): Promise<string> {
  const bodyFile = join(dir, `body-${w.name}.json`);
  writeFileSync(bodyFile, w.body);
  const targets = join(dir, `targets-${tag}.txt`);
  const headerLines = Object.entries(w.headers).map(([k, v]) => `${k}: ${v}`);
  writeFileSync(targets, [`POST ${url}`, ...headerLines, `@${bodyFile}`, ''].join('\n'));
  const out = join(dir, `vegeta-${tag}.bin`);
  const attack = await run(
    vegeta,
    ['attack', `-targets=${targets}`, `-rate=${rate}/s`, `-duration=${seconds}s`, '-timeout=5s', '-max-body=0', '-keepalive=true', `-output=${out}`],
    (seconds + 20) * 1000,
    { cpus },
  );
  if (attack.code !== 0) throw new Error(`vegeta attack failed (${attack.code}): ${attack.output.slice(-2000)}`);
  return out;
}

/** Percentiles over the union of the given attack result files. */
export async function vegetaReport(vegeta: string, files: string[], rate: number): Promise<OpenResult> {
  const report = await run(vegeta, ['report', '-type=json', ...files], 30_000);
  if (report.code !== 0) throw new Error(`vegeta report failed: ${report.output.slice(-2000)}`);
  const j = JSON.parse(report.stdout) as {
    latencies: Record<string, number>;
    requests: number;
    success: number;
    status_codes: Record<string, number>;
    errors: string[] | null;
  };
  const us = (ns: number | undefined) => (ns ?? NaN) / 1000;
  return {
    rate,
    requests: j.requests,
    success: j.success,
    statusCodes: j.status_codes,
    errors: j.errors ?? [],
    p50Us: us(j.latencies['50th']),
    p90Us: us(j.latencies['90th']),
    p99Us: us(j.latencies['99th']),
    meanUs: us(j.latencies.mean),
    maxUs: us(j.latencies.max),
  };
}
