// Test 1 of issue 5: readiness follows a scripted outage through the real proxy, a
// non-required upstream never affects it, and /livez stays up throughout but fails when the
// event loop is blocked.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startProxy } from '../../../src/app.ts';
import { compileConfig } from '../../../src/config/compile.ts';
import { envOrFileAuth, parseYamlStream } from '../../../src/config/sources/file.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { breakerStates, chat, getJson, post, scrape, series, startStack, waitFor, type Stack } from './helpers.ts';

const UNREADY_AFTER_MS = 1000;

function outageYaml(u: Record<string, string>): string {
  return `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: primary }
spec:
  required: true
  endpoints:
    - { name: p1, url: "${u.a}/v1" }
    - { name: p2, url: "${u.b}/v1", priority: 1 }
  breaker: { volumeThreshold: 1, errorThresholdPercentage: 10, rollingWindow: 30s, openDuration: 4s, halfOpenRamp: [1] }
  retry: { maxAttempts: 2, backoff: { initial: 1ms, max: 1ms, jitter: none }, budget: { ratio: 1, minPerSecond: 100 } }
  fallbacks:
    - { model: big, chain: [ { model: small } ] }
---
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: extra }
spec:
  required: false
  endpoints:
    - { name: x1, url: "${u.c}/v1" }
  breaker: { volumeThreshold: 1, openDuration: 60s }
  retry: { maxAttempts: 1 }
`;
}

const stacks: Stack[] = [];
afterAll(async () => {
  await Promise.all(stacks.map((s) => s.close()));
});

async function readyz(stack: Stack) {
  return getJson(`${stack.adminUrl}/readyz`);
}

async function livez(stack: Stack) {
  const res = await fetch(`${stack.adminUrl}/livez`);
  await res.body?.cancel();
  return res.status;
}

describe('readiness under the breakers policy', () => {
  it('follows a scripted outage: ready -> all endpoints of a required upstream open -> unready after --unready-after -> one half-open -> ready', async () => {
    const stack = await startStack({ fakes: ['a', 'b', 'c'], yaml: outageYaml, unreadyAfterMs: UNREADY_AFTER_MS });
    stacks.push(stack);
    const livezStatuses: number[] = [];
    const probeLivez = async () => livezStatuses.push(await livez(stack));

    // healthy
    expect((await readyz(stack)).status).toBe(200);
    await probeLivez();
    expect((await chat(stack, 'primary', 'big')).status).toBe(200);

    // the non-required upstream goes down and stays down well past --unready-after: still ready
    stack.fakes.c!.setFault({ fault: '503' });
    const extra = await chat(stack, 'extra', 'big');
    expect(extra.status).toBe(503);
    await waitFor('extra/x1 open', async () => (await breakerStates(stack))['extra/x1'] === 'open');
    await new Promise((r) => setTimeout(r, UNREADY_AFTER_MS + 500));
    const stillReady = await readyz(stack);
    expect(stillReady.status).toBe(200);
    expect(stillReady.body.upstreams.find((u: { name: string }) => u.name === 'extra')).toMatchObject({ required: false, available: false, blocking: false });
    await probeLivez();

    // the required upstream loses every endpoint: p1 opens for openDuration (4s), p2 for its
    // provider's Retry-After (60s); the fallback model runs on the same endpoints, so it is out too
    stack.fakes.a!.setFault({ fault: '503' });
    stack.fakes.b!.setFault({ fault: '503', retryAfter: 60 });
    const outageStart = Date.now();
    const failed = await chat(stack, 'primary', 'big', { 'x-breakwater-timeout': '2s' });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const states = await breakerStates(stack);
    expect(states['primary/p1']).toBe('open');
    expect(states['primary/p2']).toBe('open');
    // while every endpoint is open, requests are refused without an attempt
    const sent = stack.fakes.a!.stats().requests + stack.fakes.b!.stats().requests;
    const refused = await chat(stack, 'primary', 'small', { 'x-breakwater-timeout': '2s' });
    expect(refused.status).toBe(503);
    expect(stack.fakes.a!.stats().requests + stack.fakes.b!.stats().requests).toBe(sent);

    // unready, but never sooner than --unready-after after the outage began
    const unready = await waitFor('/readyz 503', async () => {
      await probeLivez();
      const r = await readyz(stack);
      return r.status === 503 ? { at: Date.now(), ...r } : undefined;
    }, 10_000, 50);
    expect(unready.at - outageStart).toBeGreaterThanOrEqual(UNREADY_AFTER_MS);
    expect(unready.body.status).toBe('unready');
    expect(unready.body.reason).toMatch(/required upstream "primary" has had no available endpoint/);
    expect(unready.body.reason).not.toMatch(/extra/);
    expect(unready.body.upstreams.find((u: { name: string }) => u.name === 'primary')).toMatchObject({ blocking: true, availableEndpoints: 0 });
    const gauge = series(await scrape(stack), 'breakwater_ready');
    expect(gauge['']).toBe(0);
    const available = series(await scrape(stack), 'breakwater_upstream_available_endpoints');
    expect(available).toMatchObject({ 'upstream=primary': 0, 'upstream=extra': 0 });

    // p1's open duration passes: it turns half-open (p2 is still open), and the pod is ready again
    const ready = await waitFor('/readyz 200 again', async () => {
      await probeLivez();
      const r = await readyz(stack);
      return r.status === 200 ? { at: Date.now(), ...r } : undefined;
    }, 15_000, 50);
    expect(ready.at - outageStart).toBeGreaterThanOrEqual(4000);
    const after = await breakerStates(stack);
    expect(after['primary/p1']).toBe('halfOpen');
    expect(after['primary/p2']).toBe('open');
    expect(after['extra/x1']).toBe('open');
    expect(series(await scrape(stack), 'breakwater_ready')['']).toBe(1);

    // the provider recovers: the half-open trial succeeds and p1 closes
    stack.fakes.a!.setFault(null);
    const recovered = await chat(stack, 'primary', 'big');
    expect(recovered.status).toBe(200);
    expect(recovered.headers.get('x-breakwater-endpoint')).toBe('p1');
    expect((await breakerStates(stack))['primary/p1']).toBe('closed');
    expect((await readyz(stack)).status).toBe(200);

    // liveness never looked at providers
    await probeLivez();
    expect(livezStatuses.length).toBeGreaterThan(5);
    expect(new Set(livezStatuses)).toEqual(new Set([200]));
  });

  it('answers 503 before the first config is applied, then 200', async () => {
    const proxy = await startProxy({
      source: { kind: 'none' },
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      drainMs: 500,
      log: silentLogger,
    });
    try {
      const admin = `http://127.0.0.1:${proxy.adminPort}`;
      const before = await getJson(`${admin}/readyz`);
      expect(before.status).toBe(503);
      expect(before.body.reason).toBe('no config loaded yet');
      expect((await fetch(`${admin}/livez`)).status).toBe(200);
      const yaml = 'apiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: { name: u }\nspec:\n  required: true\n  endpoints: [ { name: e, url: "http://127.0.0.1:9/v1" } ]\n';
      const config = compileConfig(parseYamlStream(yaml, 'inline.yaml'), envOrFileAuth, 'test:inline', 0);
      proxy.runtime.apply([...config.upstreams.values()], 'test:inline');
      const after = await getJson(`${admin}/readyz`);
      expect(after.status).toBe(200);
    } finally {
      await proxy.shutdown();
    }
  });

  it('turns unready while shutting down', async () => {
    const stack = await startStack({ fakes: ['a', 'b', 'c'], yaml: outageYaml, unreadyAfterMs: UNREADY_AFTER_MS });
    stacks.push(stack);
    expect((await readyz(stack)).status).toBe(200);
    stack.proxy.admin!.shutdown();
    const r = await readyz(stack);
    expect(r.status).toBe(503);
    expect(r.body.reason).toMatch(/shutting down/);
  });
});

describe('readiness under the local policy', () => {
  it('ignores breaker state: every endpoint of a required upstream open for longer than --unready-after stays ready', async () => {
    const stack = await startStack({ fakes: ['a', 'b', 'c'], yaml: outageYaml, readiness: 'local', unreadyAfterMs: UNREADY_AFTER_MS });
    stacks.push(stack);
    for (const e of ['p1', 'p2']) expect((await post(`${stack.adminUrl}/admin/upstreams/primary/endpoints/${e}/open`)).status).toBe(200);
    const states = await breakerStates(stack);
    expect([states['primary/p1'], states['primary/p2']]).toEqual(['open', 'open']);
    await new Promise((r) => setTimeout(r, UNREADY_AFTER_MS + 500));
    const r = await readyz(stack);
    expect(r.status).toBe(200);
    expect(r.body.policy).toBe('local');
    expect(r.body.reason).toMatch(/readiness=local/);
    expect(series(await scrape(stack), 'breakwater_ready')['']).toBe(1);
  });
});

describe('liveness', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fails while the event loop is blocked (a busy loop in the process under test) and recovers after', async () => {
    dir = mkdtempSync(join(tmpdir(), 'breakwater-livez-'));
    const config = join(dir, 'upstreams.yaml');
    writeFileSync(config, 'apiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: { name: u }\nspec:\n  endpoints: [ { name: e, url: "http://127.0.0.1:9/v1" } ]\n');
    child = fork(join(import.meta.dirname, 'fixtures', 'blockable-proxy.ts'), [config], { execArgv: [], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const lines = createInterface({ input: child.stdout! });
    const queue: string[] = [];
    const waiters: ((line: string) => void)[] = [];
    lines.on('line', (line) => {
      const w = waiters.shift();
      if (w) w(line);
      else queue.push(line);
    });
    const nextLine = () => new Promise<string>((resolve, reject) => {
      const queued = queue.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error('child said nothing for 20 s')), 20_000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
    const { adminPort } = JSON.parse(await nextLine()) as { adminPort: number };
    const admin = `http://127.0.0.1:${adminPort}`;
    const live = async () => {
      const res = await fetch(`${admin}/livez`, { signal: AbortSignal.timeout(20_000) });
      return { status: res.status, body: (await res.json()) as { reason: string; maxDelayMs: number } };
    };
    expect((await live()).status).toBe(200);

    child.send({ block: 3500 });
    expect(await nextLine()).toBe('blocking');
    // sent while the loop is wedged: answered only after it turns again, and then it fails
    const during = await live();
    expect(await nextLine()).toBe('unblocked');
    expect(during.status).toBe(503);
    expect(during.body.reason).toMatch(/event loop stalled/);
    expect(during.body.maxDelayMs).toBeGreaterThan(2000);

    // once the stall is out of the window, it is live again
    await waitFor('/livez 200 after the stall', async () => (await live()).status === 200, 15_000, 200);
    child.send({ exit: true });
  });
});
