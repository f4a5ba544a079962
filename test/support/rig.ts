// A test rig: real fake providers and a real Breakwater proxy on 127.0.0.1, configured by a
// real YAML file (the file source), with every log line captured for assertions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startProxy, type RunningProxy } from '../../src/app.ts';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { createLogger } from '../../src/telemetry/log.ts';
import type { EndpointRuntime } from '../../src/proxy/endpoint.ts';
import type { EdgeLimits } from '../../src/proxy/limits.ts';
import { waitFor as sharedWaitFor } from './wait.ts';

export const TEST_KEY_ENV = 'BREAKWATER_TEST_KEY';
export const TEST_KEY = 'sk-test-0123456789';

export interface EndpointDef {
  name: string;
  url: string;
  priority?: number;
  weight?: number;
  [k: string]: unknown;
}

export interface UpstreamDef {
  name: string;
  api?: 'openai' | 'anthropic';
  required?: boolean;
  endpoints: EndpointDef[];
  breaker?: Record<string, unknown>;
  retry?: Record<string, unknown>;
  timeouts?: Record<string, unknown>;
  fallbacks?: unknown[];
  validate?: Record<string, unknown>;
  queue?: Record<string, unknown>;
  cache?: Record<string, unknown>;
  healthCheck?: Record<string, unknown>;
  balance?: string;
  hedge?: Record<string, unknown>;
}

/** The usual pair: `primary` on the first fake, `secondary` (priority 1) on the second. */
export function primaryAndSecondary(a: FakeProvider, b: FakeProvider, basePath = '/v1'): EndpointDef[] {
  return [
    { name: 'primary', url: `${a.url}${basePath}` },
    { name: 'secondary', url: `${b.url}${basePath}`, priority: 1 },
  ];
}

/** A YAML stream of LLMUpstream documents; endpoints get env auth unless they say otherwise. */
export function upstreamsYaml(defs: UpstreamDef[]): string {
  return defs
    .map((d) => {
      const { name, ...spec } = d;
      const endpoints = spec.endpoints.map((e) => ({ auth: { env: TEST_KEY_ENV }, ...e }));
      return stringify({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'LLMUpstream', metadata: { name }, spec: { ...spec, endpoints } });
    })
    .join('---\n');
}

export interface Rig {
  fakes: FakeProvider[];
  proxy: RunningProxy;
  /** http://127.0.0.1:PORT */
  base: string;
  configPath: string;
  logs: string[];
  /** parsed log lines */
  logObjects(): Record<string, unknown>[];
  writeConfig(defs: UpstreamDef[]): void;
  endpoint(upstream: string, name: string): EndpointRuntime;
  /** resolves when a config generation above `after` has been applied */
  waitForGeneration(after: number, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export interface RigOptions {
  fakes: number;
  upstreams: (fakes: FakeProvider[]) => UpstreamDef[];
  logLevel?: string;
  maxBodyBytes?: number;
  maxBufferedBytes?: number;
  /** the proxy port's timeouts and connection cap */
  limits?: Partial<EdgeLimits>;
  key?: string;
  /** the rate limits' window (the runtime's test hook; default one minute) */
  rateLimitWindowMs?: number;
}

/** `count` fake providers on 127.0.0.1, named fake-a, fake-b, … */
export async function startFakes(count: number): Promise<FakeProvider[]> {
  return await Promise.all(Array.from({ length: count }, (_, i) => startFake({ name: `fake-${String.fromCharCode(97 + i)}` })));
}

export async function startRig(options: RigOptions): Promise<Rig> {
  process.env[TEST_KEY_ENV] = options.key ?? TEST_KEY;
  const fakes = await startFakes(options.fakes);
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-test-'));
  const configPath = join(dir, 'upstreams.yaml');
  writeFileSync(configPath, upstreamsYaml(options.upstreams(fakes)));
  const logs: string[] = [];
  const log = createLogger({ level: options.logLevel ?? 'info', destination: { write: (line: string) => void logs.push(line) } });
  const proxy = await startProxy({
    source: { kind: 'file', path: configPath },
    listen: { host: '127.0.0.1', port: 0 },
    drainMs: 2_000,
    log,
    maxBodyBytes: options.maxBodyBytes,
    maxBufferedBytes: options.maxBufferedBytes,
    limits: options.limits,
    rateLimitWindowMs: options.rateLimitWindowMs,
  });
  return {
    fakes,
    proxy,
    base: `http://127.0.0.1:${proxy.port}`,
    configPath,
    logs,
    logObjects: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>),
    writeConfig(defs) {
      writeFileSync(configPath, upstreamsYaml(defs));
    },
    endpoint(upstream, name) {
      const u = proxy.runtime.snapshot?.upstreams.get(upstream);
      const e = u?.endpoints.find((x) => x.name === name);
      if (!e) throw new Error(`no endpoint ${upstream}/${name}`);
      return e;
    },
    async waitForGeneration(after, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const g = proxy.runtime.snapshot?.generation ?? 0;
        if (g > after) return g;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`config generation stayed at ${after}`);
    },
    async close() {
      await proxy.shutdown();
      await Promise.all(fakes.map((f) => f.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until fn() is true (a hang guard, not a timing assertion). */
export async function waitFor(fn: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await sharedWaitFor(what, () => fn(), timeoutMs);
}

export function chatBody(model = 'gpt-4.1', extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], ...extra });
}

/** POST JSON through the proxy with fetch (no SDK retries), reading the whole body. */
export async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
