// The sidecar watching LLMUpstreams on a real API server: apply, Secret keys, printer columns,
// Secret rotation, delete and recreate, and live edits under traffic (issue 4, items 1, 3, 4, 5).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { startController, startSidecar, type Child, type Sidecar } from './support/breakwater.ts';
import { applyJson, kubectlOk, llmUpstream, secret, setupCluster } from './support/cluster.ts';
import { chat, Traffic } from './support/traffic.ts';
import { sleep, waitUntil } from './support/wait.ts';

const NS = 'shop';
const KEY_ONE = 'sk-e2e-watch-0001';
const KEY_TWO = 'sk-e2e-watch-0002';

describe('sidecar: LLMUpstreams watched live', () => {
  let cp: ControlPlane;
  let sidecar: Sidecar;
  let controller: Child;
  const fakes: Record<'a' | 'b' | 'c', FakeProvider> = {} as never;

  const chatSpec = () => ({
    required: true,
    endpoints: [{ name: 'primary', url: `${fakes.a.url}/v1`, auth: { secretRef: { name: 'openai', key: 'apiKey' } } }],
  });

  beforeAll(async () => {
    cp = await startControlPlane();
    for (const name of ['a', 'b', 'c'] as const) fakes[name] = await startFake({ name });
    await setupCluster(cp, NS, ['openai']);
    sidecar = await startSidecar(cp, NS);
    controller = await startController(cp, NS);
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await sidecar?.stop();
    await controller?.stop();
    for (const f of Object.values(fakes)) await f.close();
    await cp?.stop();
  }, 60_000);

  it('applies a valid LLMUpstream and its Secret: requests carry the key; kubectl get llmu shows Accepted=True', async () => {
    await applyJson(cp, [secret(NS, 'openai', { apiKey: KEY_ONE }), llmUpstream(NS, 'chat', chatSpec())]);
    const started = Date.now();
    await waitUntil('the chat route to serve', async () => (await chat(sidecar.base, 'chat')).ok, 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    const last = fakes.a.stats().recent.at(-1);
    expect(last?.headers.authorization).toBe(`Bearer ${KEY_ONE}`);

    await waitUntil('Accepted=True in kubectl get llmu', async () => /\bTrue\b/.test(await kubectlOk(cp, ['get', 'llmu', 'chat', '-n', NS])), 15_000);
    const table = await kubectlOk(cp, ['get', 'llmu', '-n', NS]);
    const [header, row] = table.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'ENDPOINTS', 'REQUIRED', 'ACCEPTED', 'AGE']);
    expect(row!.split(/\s+/).slice(0, 4)).toEqual(['chat', '1', 'true', 'True']);
    const wide = await kubectlOk(cp, ['get', 'llmupstreams.breakwater.dev', 'chat', '-n', NS, '-o', 'wide']);
    expect(wide.split('\n')[0]).toContain('REASON');
    expect(wide.split('\n')[1]).toMatch(/\bValid\b/);
  });

  it('takes a rotated Secret without a restart: new requests carry the new key', async () => {
    const pid = sidecar.proc.pid;
    await applyJson(cp, [secret(NS, 'openai', { apiKey: KEY_TWO })]);
    await waitUntil('the new key on new requests', async () => {
      await chat(sidecar.base, 'chat');
      return fakes.a.stats().recent.at(-1)?.headers.authorization === `Bearer ${KEY_TWO}`;
    }, 10_000);
    for (let i = 0; i < 5; i++) expect((await chat(sidecar.base, 'chat')).ok).toBe(true);
    expect(fakes.a.stats().recent.slice(-5).map((r) => r.headers.authorization)).toEqual(Array(5).fill(`Bearer ${KEY_TWO}`));
    expect(sidecar.proc.pid).toBe(pid);
    expect(sidecar.proc.hasExited()).toBe(false);
  });

  it('removes the route when the resource is deleted (404) and serves again when it is recreated', async () => {
    await kubectlOk(cp, ['delete', 'llmu', 'chat', '-n', NS]);
    await waitUntil('the chat route to be gone', async () => (await chat(sidecar.base, 'chat')).status === 404, 10_000);
    const gone = await chat(sidecar.base, 'chat');
    expect((JSON.parse(gone.body) as { error: { message: string } }).error.message).toContain('no upstream named "chat"');

    await applyJson(cp, [llmUpstream(NS, 'chat', chatSpec())]);
    await waitUntil('the chat route to serve again', async () => (await chat(sidecar.base, 'chat')).ok, 10_000);
    expect(fakes.a.stats().recent.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_TWO}`);
  });

  it('applies live edits under traffic with zero failed requests; the unchanged endpoint\'s open breaker stays open', async () => {
    // a (priority 0) always fails, so its breaker opens; b serves; c arrives and leaves by edits.
    fakes.a.setFault({ fault: '500' });
    const endpoint = (name: 'a' | 'b' | 'c', priority: number) => ({ name, url: `${fakes[name].url}/v1`, priority });
    const spec = (endpoints: object[], breaker: object, maxAttempts: number) => ({
      endpoints,
      breaker: { volumeThreshold: 3, openDuration: '5m', ...breaker },
      retry: { maxAttempts, backoff: { initial: '10ms', max: '50ms' }, budget: { ratio: 1, minPerSecond: 100 } },
    });
    await applyJson(cp, [llmUpstream(NS, 'edit', spec([endpoint('a', 0), endpoint('b', 1)], { errorThresholdPercentage: 50 }, 3))]);
    await waitUntil('the edit route to serve', async () => (await chat(sidecar.base, 'edit')).ok, 10_000);
    // open a's breaker: its failures fail over to b, so the app sees only successes
    for (let i = 0; i < 6; i++) expect((await chat(sidecar.base, 'edit')).ok).toBe(true);
    const aBefore = fakes.a.stats().requests;
    for (let i = 0; i < 5; i++) expect((await chat(sidecar.base, 'edit')).ok).toBe(true);
    expect(fakes.a.stats().requests, 'a\'s breaker should be open: no more requests reach a').toBe(aBefore);
    const openSeries = 'breakwater_breaker_state{upstream="edit",endpoint="a",state="open"}';
    expect(await sidecar.metric(openSeries)).toBe(1);

    const traffic = new Traffic(sidecar.base, 'edit', { concurrency: 6, streamHeaders: { 'x-fake-delay-ms': '40', 'x-fake-events': '6' } });
    try {
      await sleep(1_000);
      // edit 1: a new endpoint c and new thresholds
      await applyJson(cp, [llmUpstream(NS, 'edit', spec([endpoint('a', 0), endpoint('b', 1), endpoint('c', 1)], { errorThresholdPercentage: 60, volumeThreshold: 4 }, 3))]);
      await waitUntil('traffic to reach c', () => fakes.c.stats().requests > 5, 10_000);
      await sleep(1_000);
      // edit 2: c leaves while its streams are open; thresholds and attempts change again
      await applyJson(cp, [llmUpstream(NS, 'edit', spec([endpoint('a', 0), endpoint('b', 1)], { errorThresholdPercentage: 70 }, 4))]);
      let cSeen = fakes.c.stats().requests;
      await waitUntil('c to receive no new requests', async () => {
        await sleep(500);
        const now = fakes.c.stats().requests;
        const still = now === cSeen;
        cSeen = now;
        return still;
      }, 10_000);
      await sleep(1_000);
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures(), traffic.describe()).toEqual([]);
    expect(traffic.results.filter((r) => r.stream).length).toBeGreaterThan(10);
    expect(traffic.results.filter((r) => !r.stream).length).toBeGreaterThan(10);
    expect(fakes.a.stats().requests, 'a\'s open breaker must stay open across both edits').toBe(aBefore);
    expect(await sidecar.metric(openSeries)).toBe(1);
    expect(fakes.c.stats().inflight).toBe(0);
  }, 90_000);
});
