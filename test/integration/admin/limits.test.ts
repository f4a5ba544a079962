// The admin port cannot be used to starve the process (issue 8, defect 5): it holds at most
// 128 connections, for a short time each, and a flood of refused peers cannot flood the log.
// Also: an admin action's Origin must be the page this server served (defect 6).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { startAdmin, type RunningAdmin } from '../../../src/admin/server.ts';
import { systemClock } from '../../../src/clock.ts';
import { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { createLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { openSocket, rawExchange, rawRequest } from '../../support/raw.ts';

const lines: string[] = [];
const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
const metrics = createMetrics();
const runtime = new ProxyRuntime({ clock: systemClock, log, metrics });

let fast: RunningAdmin;
let standard: RunningAdmin;
beforeAll(async () => {
  fast = await startAdmin({ runtime, metrics, log, limits: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, checkEveryMs: 100 } }, { host: '127.0.0.1', port: 0 });
  standard = await startAdmin({ runtime, metrics: createMetrics(), log }, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await fast.close();
  await standard.close();
  await runtime.close();
});

describe('the admin port', () => {
  it('closes half-sent headers after headersTimeout', async () => {
    const r = await rawExchange(fast.port, ['GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nx-partial: '], { waitMs: 8_000 });
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('closes a request whose body never finishes after requestTimeout', async () => {
    const r = await rawExchange(fast.port, ['POST /admin/upstreams/a/endpoints/b/open HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{'], { waitMs: 8_000 });
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('holds at most 128 connections: the next one is closed at once, and a freed slot serves again', async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 128; i++) held.push(await openSocket(standard.port));
      await new Promise((r) => setTimeout(r, 200));
      const over = await rawRequest(standard.port, 'GET', '/livez');
      expect(over.closed).toBe(true);
      expect(over.status).toBeUndefined();
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect((await rawRequest(standard.port, 'GET', '/livez')).status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('a flood of refused peers writes one short log line per interval, counting the rest', async () => {
    lines.length = 0;
    const longPath = `/admin/${'x'.repeat(5_000)}`;
    for (let i = 0; i < 30; i++) {
      const r = await rawRequest(standard.port, 'GET', i === 0 ? longPath : '/debug/state', { host: 'rebind.attacker.example', 'x-forwarded-for': 'y'.repeat(5_000) });
      expect(r.status).toBe(403);
    }
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'admin: refused a non-loopback peer');
    expect(refused).toHaveLength(1);
    expect(lines.join('').length).toBeLessThan(1_000);
    expect(String(refused[0]!.path).length).toBeLessThan(200);
  });

  it('refuses an action from a page on another loopback port than its own Host', async () => {
    const r = await rawRequest(standard.port, 'POST', '/admin/upstreams/a/endpoints/b/open', { host: `localhost:${standard.port}`, origin: 'http://localhost:3000' });
    expect(r.status).toBe(403);
    const own = await rawRequest(standard.port, 'POST', '/admin/upstreams/a/endpoints/b/open', { host: `localhost:${standard.port}`, origin: `http://localhost:${standard.port}` });
    expect(own.status).toBe(404); // past the Origin check: there is no upstream "a"
  });
});
