// Shared helpers for the admin and observability tests: a real proxy (startProxy with a file
// source on a temp YAML file) in front of real fake providers, with the admin server on port 0.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startProxy, type RunningProxy } from '../../../src/app.ts';
import type { ReadinessPolicy } from '../../../src/admin/readiness.ts';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { createLogger, silentLogger, type Logger } from '../../../src/telemetry/log.ts';
import { waitFor as sharedWaitFor } from '../../support/wait.ts';

export interface Stack {
  proxy: RunningProxy;
  fakes: Record<string, FakeProvider>;
  proxyUrl: string;
  adminUrl: string;
  configPath: string;
  close(): Promise<void>;
}

export interface StackOptions {
  fakes: string[];
  /** the LLMUpstream YAML stream, given each fake's base url (http://127.0.0.1:PORT) */
  yaml: (urls: Record<string, string>) => string;
  readiness?: ReadinessPolicy;
  unreadyAfterMs?: number;
  log?: Logger;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-admin-'));
  const fakes: Record<string, FakeProvider> = {};
  for (const name of options.fakes) fakes[name] = await startFake({ name });
  const urls = Object.fromEntries(Object.entries(fakes).map(([name, f]) => [name, f.url]));
  const configPath = join(dir, 'upstreams.yaml');
  writeFileSync(configPath, options.yaml(urls));
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({
      source: { kind: 'file', path: configPath },
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '0.0.0.0', port: 0 },
      readiness: options.readiness,
      unreadyAfterMs: options.unreadyAfterMs,
      drainMs: 1000,
      log: options.log ?? silentLogger,
    });
  } catch (err) {
    await Promise.all(Object.values(fakes).map((f) => f.close()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    proxy,
    fakes,
    proxyUrl: `http://127.0.0.1:${proxy.port}`,
    adminUrl: `http://127.0.0.1:${proxy.adminPort}`,
    configPath,
    async close() {
      await proxy.shutdown();
      await Promise.all(Object.values(fakes).map((f) => f.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ChatResult {
  status: number;
  headers: Headers;
  body: unknown;
}

/** POST chat/completions through the proxy (plain fetch: no SDK retries to count). */
export async function chat(stack: Stack, upstream: string, model: string, headers: Record<string, string> = {}): Promise<ChatResult> {
  const res = await fetch(`${stack.proxyUrl}/${upstream}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 16 }),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body };
}

export async function getJson<T = any>(url: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, headers: res.headers };
}

/** the shared wait (test/support/wait.ts), polling every 50 ms here */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  return sharedWaitFor(what, fn, timeoutMs, intervalMs);
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough for prom-client's output). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of one metric, as "label=value,…" (sorted) -> value; zero-valued series kept. */
export function series(samples: Sample[], name: string, drop: string[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = Object.entries(s.labels)
      .filter(([k]) => !drop.includes(k))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out[key] = s.value;
  }
  return out;
}

export async function scrape(stack: Stack): Promise<Sample[]> {
  const res = await fetch(`${stack.adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** A pino logger (the real createLogger, so the real redaction) whose lines land in memory. */
export function memoryLogger(level = 'debug'): { log: Logger; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level, destination });
  const raw = () => chunks.join('');
  return {
    log,
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** The breaker state of every endpoint, from /debug/state: "upstream/endpoint" -> kind. */
export async function breakerStates(stack: Stack): Promise<Record<string, string>> {
  const { body } = await getJson(`${stack.adminUrl}/debug/state`);
  const out: Record<string, string> = {};
  for (const u of body.upstreams) for (const e of u.endpoints) out[`${u.name}/${e.name}`] = e.breaker.kind;
  return out;
}

export function post(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers });
}
