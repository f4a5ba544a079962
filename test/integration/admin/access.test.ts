// Test 3 of issue 5: the admin actions move traffic (open forces it away from an endpoint,
// reset brings it back), and /debug/state, /dashboard and the actions answer 403 to a real
// non-loopback peer: a network namespace this test creates (ip netns, a veth pair with 10.x
// addresses), from which a forged X-Forwarded-For: 127.0.0.1 is still refused.
// Needs root and iproute2: without them this test FAILS (it never skips).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../../../src/admin/server.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { systemClock } from '../../../src/clock.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { breakerStates, chat, getJson, post, startStack, type Stack } from './helpers.ts';

const id = process.pid % 100_000;
const NS = `bw5-${id}`;
const HOST_IF = `bwh${id}`;
const NS_IF = `bwn${id}`;
const third = id % 250;
const fourth = 4 * (Math.floor(id / 250) % 60);
const HOST_IP = `10.213.${third}.${fourth + 1}`;
const NS_IP = `10.213.${third}.${fourth + 2}`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function cleanupNamespace(): void {
  spawnSync('ip', ['link', 'del', HOST_IF], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}

const execFileAsync = promisify(execFile);

/**
 * fetch() run by a node process inside the namespace: a real peer at NS_IP. Asynchronous,
 * because the admin server under test runs in this process and must keep answering.
 */
async function fromNamespace(url: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  const script = `fetch(${JSON.stringify(url)}, ${JSON.stringify(init)}).then(async (r) => { process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })); }, (e) => { console.error(String(e.cause ?? e)); process.exit(3); });`;
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { encoding: 'utf8', timeout: 15_000 });
  return JSON.parse(stdout) as { status: number; body: string };
}

const yaml = (u: Record<string, string>) => `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  required: true
  endpoints:
    - { name: a, url: "${u.a}/v1" }
    - { name: b, url: "${u.b}/v1", priority: 1 }
  breaker: { openDuration: 5m }
`;

let stack: Stack;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root: it creates a network namespace (ip netns add) to be a real non-loopback peer');
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(`this test needs iproute2's "ip" (apt-get install -y iproute2): ${probe.error?.message ?? probe.stderr}`);
  cleanupNamespace();
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
  stack = await startStack({ fakes: ['a', 'b'], yaml });
});

afterAll(async () => {
  await stack?.close();
  cleanupNamespace();
});

describe('admin actions', () => {
  it('open forces traffic away from an endpoint, reset brings it back', async () => {
    const a = stack.fakes.a!;
    const b = stack.fakes.b!;
    const first = await chat(stack, 'chat', 'm');
    expect(first.headers.get('x-breakwater-endpoint')).toBe('a');

    const opened = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`);
    expect(opened.status).toBe(200);
    expect(((await opened.json()) as any).endpoint.breaker).toMatchObject({ kind: 'open', reason: 'opened by an operator' });
    const aBefore = a.stats().requests;
    const bBefore = b.stats().requests;
    for (let i = 0; i < 3; i++) {
      const r = await chat(stack, 'chat', 'm');
      expect(r.status).toBe(200);
      expect(r.headers.get('x-breakwater-endpoint')).toBe('b');
      expect(r.headers.get('x-breakwater-attempts')).toBe('1');
    }
    expect(a.stats().requests).toBe(aBefore);
    expect(b.stats().requests).toBe(bBefore + 3);
    expect((await breakerStates(stack))['chat/a']).toBe('open');

    const reset = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/reset`);
    expect(reset.status).toBe(200);
    expect(((await reset.json()) as any).endpoint.breaker.kind).toBe('closed');
    const back = await chat(stack, 'chat', 'm');
    expect(back.headers.get('x-breakwater-endpoint')).toBe('a');
    expect(a.stats().requests).toBe(aBefore + 1);
  });

  it('answers 404 for unknown upstreams, endpoints and actions', async () => {
    const unknownUpstream = await post(`${stack.adminUrl}/admin/upstreams/nope/endpoints/a/open`);
    expect(unknownUpstream.status).toBe(404);
    expect(((await unknownUpstream.json()) as any).error).toMatch(/no upstream named "nope"/);
    const unknownEndpoint = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/zz/reset`);
    expect(unknownEndpoint.status).toBe(404);
    expect(((await unknownEndpoint.json()) as any).error).toMatch(/no endpoint named "zz"; it has a, b/);
    expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/close`)).status).toBe(404);
    expect((await fetch(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`)).status).toBe(404);
    expect((await breakerStates(stack))['chat/a']).toBe('closed');
  });

  it('refuses an action a web page from another origin sends through a loopback browser', async () => {
    const foreign = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    const rebound = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`, { origin: `http://attacker.example:${stack.proxy.adminPort}` });
    expect(rebound.status).toBe(403);
    // another server on another loopback port of the operator's machine is a foreign page too
    const otherPort = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/open`, { origin: 'http://127.0.0.1:3000' });
    expect(otherPort.status).toBe(403);
    expect((await breakerStates(stack))['chat/a']).toBe('closed');
    // the dashboard's own page: Origin equals the Host it was loaded from
    const own = await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/a/reset`, { origin: new URL(stack.adminUrl).origin });
    expect(own.status).toBe(200);
  });
});

describe('a non-loopback peer (a network namespace)', () => {
  const forged = { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' };

  it('gets the probes and the metrics', async () => {
    const base = `http://${HOST_IP}:${stack.proxy.adminPort}`;
    expect((await fromNamespace(`${base}/livez`)).status).toBe(200);
    expect((await fromNamespace(`${base}/readyz`)).status).toBe(200);
    const metrics = await fromNamespace(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('breakwater_ready 1');
  });

  it('gets 403 from /debug/state, /dashboard and the actions, with or without a forged X-Forwarded-For', async () => {
    const base = `http://${HOST_IP}:${stack.proxy.adminPort}`;
    for (const headers of [{}, forged]) {
      const state = await fromNamespace(`${base}/debug/state`, { headers });
      expect(state.status).toBe(403);
      expect(state.body).toContain(NS_IP);
      expect(state.body).not.toContain('"upstreams"');
      const dashboard = await fromNamespace(`${base}/dashboard`, { headers });
      expect(dashboard.status).toBe(403);
      expect(dashboard.body).not.toContain('<html');
      for (const action of ['open', 'reset']) {
        expect((await fromNamespace(`${base}/admin/upstreams/chat/endpoints/a/${action}`, { method: 'POST', headers })).status).toBe(403);
      }
      expect((await fromNamespace(`${base}/admin/upstreams/nope/endpoints/zz/open`, { method: 'POST', headers })).status).toBe(403);
    }
    // nothing changed, and the same routes still answer a loopback peer
    expect((await breakerStates(stack))['chat/a']).toBe('closed');
    expect((await getJson(`${stack.adminUrl}/debug/state`)).status).toBe(200);
    expect((await fetch(`${stack.adminUrl}/dashboard`)).status).toBe(200);
  });

  it('is refused as an IPv4-mapped address on a dual-stack listener, where loopback is ::ffff:127.0.0.1 or ::1', async () => {
    const metrics = createMetrics();
    const runtime = new ProxyRuntime({ clock: systemClock, log: silentLogger, metrics });
    let admin: RunningAdmin | undefined;
    try {
      admin = await startAdmin({ runtime, metrics, log: silentLogger }, { host: '::', port: 0 });
      expect((await fetch(`http://127.0.0.1:${admin.port}/debug/state`)).status).toBe(200);
      const v6 = await fetch(`http://[::1]:${admin.port}/debug/state`).then((r) => r.status, () => undefined);
      if (v6 !== undefined) expect(v6).toBe(200); // only when the machine has ::1
      const peer = await fromNamespace(`http://${HOST_IP}:${admin.port}/debug/state`, { headers: forged });
      expect(peer.status).toBe(403);
      expect(peer.body).toContain(`::ffff:${NS_IP}`);
    } finally {
      await admin?.close();
    }
  });
});
