// Issue 10, test 5: active health checks against real fake providers through a real proxy. An
// open endpoint whose provider recovers goes half-open on a probe (the open duration is ten
// minutes, so only a probe can explain it) while the app's traffic is served by the secondary
// and never reaches it; a closed endpoint is never probed; probes are GETs of `models` only, with
// the endpoint's own key and headers, and spend no tokens.
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../../src/fake/server.ts';
import { chatBody, post, startRig, TEST_KEY, waitFor, type Rig, type UpstreamDef } from '../support/rig.ts';

const INTERVAL_MS = 1_000;
const JITTER = 0.2; // health.ts HEALTH_JITTER
const MODELS = '/v1/models';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function upstreams([a, b]: FakeProvider[]): (UpstreamDef & { healthCheck: Record<string, unknown> })[] {
  return [
    {
      name: 'openai',
      endpoints: [
        { name: 'primary', url: `${a!.url}/v1`, headers: { 'x-org': 'shop' } },
        { name: 'secondary', url: `${b!.url}/v1`, priority: 1 },
      ],
      // ten minutes open: within this test only a probe can move the primary to half-open
      breaker: { consecutiveFailures: 3, openDuration: '10m' },
      healthCheck: { enabled: true, interval: '1s', timeout: '1s' },
    },
  ];
}

/** one app request through the proxy (no SDK retries); its status and the endpoint that answered */
async function ask(r: Rig): Promise<{ status: number; endpoint: string | null }> {
  const res = await post(`${r.base}/openai/chat/completions`, chatBody());
  return { status: res.status, endpoint: res.headers.get('x-breakwater-endpoint') };
}

const posts = (f: FakeProvider) => f.stats().recent.filter((x) => x.method === 'POST').length;
const probes = (f: FakeProvider) => f.stats().byPath[MODELS] ?? 0;

/** app requests until the primary's breaker opens; every one of them must succeed (on the secondary) */
async function openPrimary(r: Rig): Promise<{ status: number; endpoint: string | null }[]> {
  const answers = [];
  for (let i = 0; i < 20 && r.endpoint('openai', 'primary').breaker.state.kind !== 'open'; i++) answers.push(await ask(r));
  expect(r.endpoint('openai', 'primary').breaker.state.kind).toBe('open');
  return answers;
}

async function healthResults(r: Rig): Promise<Record<string, number>> {
  const { values } = await r.proxy.metrics.healthChecks.get();
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [`${String(v.labels.endpoint)}:${String(v.labels.result)}`, v.value]));
}

describe('active health checks', () => {
  it('an open endpoint whose provider recovers is half-open within one interval + jitter, and no app request fails or reaches it meanwhile', async () => {
    rig = await startRig({ fakes: 2, upstreams });
    const [a, b] = rig.fakes as [FakeProvider, FakeProvider];
    a.setFault({ fault: '503' }); // every path: generation and models alike
    const answers = await openPrimary(rig);
    const primary = rig.endpoint('openai', 'primary');
    const opened = primary.breaker.state;
    const postsAtOpen = posts(a);

    // the app keeps going, on the secondary, while failed probes leave the breaker as it was
    while (probes(a) < 2) {
      answers.push(await ask(rig));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(primary.breaker.state).toBe(opened); // no charge, no extension
    expect(posts(a)).toBe(postsAtOpen); // no app request reached the open endpoint
    expect(answers.every((x) => x.status === 200 && x.endpoint === 'secondary')).toBe(true);
    expect(await healthResults(rig)).toEqual({ 'primary:failed': probes(a) });

    // the provider recovers: the next probe (at most interval x 1.2 away) moves the breaker
    a.setFault(null);
    const recovered = Date.now();
    await waitFor(() => primary.breaker.state.kind === 'halfOpen', 'primary half-open');
    // a generous bound that catches a hang; the ten-minute open duration is what rules out the breaker's own timer
    expect(Date.now() - recovered).toBeLessThan(INTERVAL_MS * (1 + JITTER) + 2_000);
    expect(posts(a)).toBe(postsAtOpen);
    const line = rig.logObjects().find((l) => l.msg === 'breaker half-open');
    expect(line).toMatchObject({ level: 'info', endpoint: 'primary', reason: 'health check passed (GET models: 200)' });

    // the ramp (1, 5, 10 trials) closes it on app traffic, every request answered
    const after = [];
    for (let i = 0; i < 20; i++) after.push(await ask(rig));
    expect(after.every((x) => x.status === 200)).toBe(true);
    expect(after.at(-1)!.endpoint).toBe('primary');
    expect(primary.breaker.state.kind).toBe('closed');
    expect(probes(b)).toBe(0);
  });

  it('never probes a closed endpoint', async () => {
    rig = await startRig({ fakes: 2, upstreams });
    const [a, b] = rig.fakes as [FakeProvider, FakeProvider];
    const until = Date.now() + INTERVAL_MS * 3.5;
    let n = 0;
    while (Date.now() < until) {
      expect(await ask(rig)).toEqual({ status: 200, endpoint: 'primary' });
      n++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rig.endpoint('openai', 'primary').breaker.state.kind).toBe('closed');
    expect(a.stats().byPath).toEqual({ '/v1/chat/completions': n });
    expect(b.stats().requests).toBe(0);
    expect(await healthResults(rig)).toEqual({});
  });

  it('probes spend no tokens: while open, the endpoint sees only GET models with its own key and headers, no body', async () => {
    rig = await startRig({ fakes: 2, upstreams });
    const [a] = rig.fakes as [FakeProvider, FakeProvider];
    a.setFault({ fault: '503' });
    await openPrimary(rig);
    a.resetStats();
    await waitFor(() => probes(a) >= 3, 'three probes of the open primary');
    const seen = a.stats().recent;
    expect(seen.length).toBe(probes(a));
    for (const x of seen) {
      expect(x).toMatchObject({ method: 'GET', path: MODELS, model: null, stream: false });
      expect(x.maxTokens).toBeUndefined();
      expect(x.headers).toMatchObject({ authorization: `Bearer ${TEST_KEY}`, 'x-org': 'shop' });
      expect(x.headers['content-length'] ?? '0').toBe('0');
      expect(x.headers['transfer-encoding']).toBeUndefined();
    }
    const primary = rig.endpoint('openai', 'primary');
    expect(primary.breaker.state.kind).toBe('open');
    // what /debug/state shows for it
    const now = performance.timeOrigin + performance.now();
    const view = primary.describe(now).healthCheck;
    expect(view).toMatchObject({ path: 'models', intervalMs: INTERVAL_MS, last: { result: 'failed', status: 503 } });
    expect(view!.nextProbeAt).toBeGreaterThan(now - 50);
    expect(view!.nextProbeAt).toBeLessThanOrEqual(now + INTERVAL_MS * (1 + JITTER));
  });

  it('an Anthropic endpoint opened by an operator is probed with its x-api-key and anthropic-version, and half-opens on the answer', async () => {
    rig = await startRig({
      fakes: 1,
      upstreams: ([a]) => [
        {
          name: 'claude',
          api: 'anthropic',
          endpoints: [{ name: 'only', url: `${a!.url}/v1`, auth: { env: 'BREAKWATER_TEST_KEY', header: 'x-api-key' } }],
          breaker: { openDuration: '10m' },
          healthCheck: { enabled: true, interval: '1s', timeout: '1s' },
        } as UpstreamDef,
      ],
    });
    const [a] = rig.fakes as [FakeProvider];
    const only = rig.endpoint('claude', 'only');
    only.breaker.forceOpen(); // what POST /admin/upstreams/claude/endpoints/only/open does
    await waitFor(() => only.breaker.state.kind === 'halfOpen', 'half-open after a probe');
    const [probe, ...more] = a.stats().recent;
    expect(more).toEqual([]);
    expect(probe).toMatchObject({ method: 'GET', path: MODELS, fault: 'none' });
    expect(probe!.headers).toMatchObject({ 'x-api-key': TEST_KEY, 'anthropic-version': '2023-06-01' });
    expect(probe!.headers.authorization).toBeUndefined();
  });
});
