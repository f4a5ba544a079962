// The API server goes away under traffic: killed for 20 s, then frozen (SIGSTOP) past the
// sidecar's staleness limit. Requests keep flowing on the last good config, the watch reports
// itself unhealthy, and after the restart or resume it recovers and a new edit applies
// (issue 4, item 7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { startSidecar, type Sidecar } from './support/breakwater.ts';
import { applyJson, llmUpstream, secret, setupCluster } from './support/cluster.ts';
import { chat, Traffic } from './support/traffic.ts';
import { sleep, waitUntil } from './support/wait.ts';

const NS = 'outage';
const STALE_AFTER_S = 4;
const HEALTHY = 'breakwater_config_watch_healthy{source="kubernetes"}';

describe('the sidecar through API server outages', () => {
  let cp: ControlPlane;
  let sidecar: Sidecar;
  const fakes: Record<'a' | 'b', FakeProvider> = {} as never;
  const upstream = (to: 'a' | 'b') =>
    llmUpstream(NS, 'chat', { endpoints: [{ name: `to-${to}`, url: `${fakes[to].url}/v1`, auth: { secretRef: { name: 'openai', key: 'apiKey' } } }] });

  /** log lines from `since` (ms epoch) whose msg starts with `prefix` */
  const logged = (prefix: string, since: number) =>
    sidecar.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix) && Date.parse(String(l.time)) >= since);

  /** waits until requests land on `to` (the edit has been applied) */
  const servedBy = async (to: 'a' | 'b') => {
    const before = fakes[to].stats().requests;
    await waitUntil(`requests to reach ${to}`, async () => {
      await chat(sidecar.base, 'chat');
      return fakes[to].stats().requests > before;
    }, 20_000);
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    for (const name of ['a', 'b'] as const) fakes[name] = await startFake({ name });
    await setupCluster(cp, NS, ['openai']);
    await applyJson(cp, [secret(NS, 'openai', { apiKey: 'sk-e2e-outage-1' }), upstream('a')]);
    sidecar = await startSidecar(cp, NS, { env: { BREAKWATER_WATCH_STALE_AFTER: `${STALE_AFTER_S}s` } });
    await waitUntil('chat to serve', async () => (await chat(sidecar.base, 'chat')).ok, 10_000);
    await waitUntil('the watch to be healthy', async () => (await sidecar.metric(HEALTHY)) === 1, 10_000);
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    cp?.resumeApiServer();
    await sidecar?.stop();
    for (const f of Object.values(fakes)) await f.close();
    await cp?.stop();
  }, 60_000);

  it('keeps serving while the API server is killed for 20 s, then recovers and applies a new edit', async () => {
    const traffic = new Traffic(sidecar.base, 'chat', { concurrency: 2, pauseMs: 20 });
    try {
      await sleep(500);
      const killedAt = Date.now();
      await cp.stopApiServer({ graceful: false });
      await waitUntil('the watch to report itself unhealthy', async () => logged('kubernetes watch unhealthy', killedAt).length > 0, 10_000);
      expect(await sidecar.metric(HEALTHY)).toBe(0);
      await sleep(Math.max(0, killedAt + 20_000 - Date.now()));
      expect(cp.pids().apiServer).toBeUndefined();
      const restartedAt = Date.now();
      await cp.startApiServer();
      await waitUntil('the watch to recover', async () => logged('kubernetes watch healthy', restartedAt).length > 0, 30_000);
      expect(await sidecar.metric(HEALTHY)).toBe(1);
      await applyJson(cp, [upstream('b')]);
      await servedBy('b');
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures(), traffic.describe()).toEqual([]);
    expect(traffic.results.length).toBeGreaterThan(100);
  }, 120_000);

  it('reports a frozen watch (SIGSTOP) as unhealthy past the staleness limit, keeps serving, and recovers on resume', async () => {
    const traffic = new Traffic(sidecar.base, 'chat', { concurrency: 2, pauseMs: 20 });
    try {
      await sleep(500);
      const frozenAt = Date.now();
      cp.pauseApiServer();
      await waitUntil('the frozen watch to be reported stale', async () => logged('kubernetes watch unhealthy', frozenAt).length > 0, (STALE_AFTER_S + 6) * 1000);
      const line = logged('kubernetes watch unhealthy', frozenAt)[0]!;
      expect(String(line.why)).toMatch(/no event or bookmark for \d+s/);
      expect(Date.parse(String(line.time)) - frozenAt).toBeGreaterThanOrEqual(STALE_AFTER_S * 1000 - 1000);
      expect(await sidecar.metric(HEALTHY)).toBe(0);
      await sleep(Math.max(0, frozenAt + 2 * STALE_AFTER_S * 1000 + 2000 - Date.now()));
      expect(await sidecar.metric(HEALTHY)).toBe(0);
      const resumedAt = Date.now();
      cp.resumeApiServer();
      await waitUntil('the watch to recover', async () => logged('kubernetes watch healthy', resumedAt).length > 0, 45_000);
      expect(await sidecar.metric(HEALTHY)).toBe(1);
      await applyJson(cp, [upstream('a')]);
      await servedBy('a');
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures(), traffic.describe()).toEqual([]);
  }, 120_000);
});
