// Issue 3, test 9: classification through the real proxy, table-driven per dialect. Each row
// puts one fault on the primary and checks how many attempts each fake saw, whether the
// primary's breaker was charged, and what the app received.
import { afterEach, describe, expect, it } from 'vitest';
import { post, startRig, type Rig } from '../support/rig.ts';

interface Row {
  fault: string;
  /** attempts the secondary saw: 1 = failed over, 0 = answered (or passed through) by the primary */
  failover: 0 | 1;
  charged: boolean;
  app: number;
}

const COMMON: Row[] = [
  { fault: 'none', failover: 0, charged: false, app: 200 },
  { fault: '429', failover: 1, charged: true, app: 200 },
  { fault: '500', failover: 1, charged: true, app: 200 },
  { fault: '502', failover: 1, charged: true, app: 200 },
  { fault: '503', failover: 1, charged: true, app: 200 },
  { fault: '504', failover: 1, charged: true, app: 200 },
  { fault: '529', failover: 1, charged: true, app: 200 },
  { fault: 'status:400', failover: 0, charged: false, app: 400 },
  { fault: '400-context', failover: 0, charged: false, app: 400 },
  { fault: 'status:401', failover: 1, charged: false, app: 200 },
  // issue 8 (defect 2): a 403 without a key failure in its body is this request's own fault: passed through, nothing held
  { fault: 'status:403', failover: 0, charged: false, app: 403 },
  { fault: 'status:404', failover: 0, charged: false, app: 404 },
  { fault: 'status:413', failover: 0, charged: false, app: 413 },
  { fault: 'status:422', failover: 0, charged: false, app: 422 },
  { fault: '429-quota', failover: 1, charged: false, app: 200 },
  { fault: 'hang', failover: 1, charged: true, app: 200 },
  { fault: 'reset-before-headers', failover: 1, charged: true, app: 200 },
  { fault: 'reset-after-headers', failover: 1, charged: true, app: 200 },
  { fault: 'reset-mid-stream', failover: 1, charged: true, app: 200 },
  { fault: 'stall', failover: 1, charged: true, app: 200 },
  { fault: 'malformed-json', failover: 1, charged: true, app: 200 },
  { fault: 'empty-choices', failover: 1, charged: true, app: 200 },
  { fault: 'error-in-200', failover: 1, charged: true, app: 200 },
];

const DIALECTS = {
  openai: { path: 'chat/completions', base: (url: string) => `${url}/v1`, body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] } },
  anthropic: { path: 'v1/messages', base: (url: string) => url, body: { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] } },
} as const;

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function rigFor(api: keyof typeof DIALECTS, primaryUrl?: string) {
  const d = DIALECTS[api];
  return startRig({
    fakes: 2,
    upstreams: ([a, b]) => [
      {
        name: 'u',
        api,
        endpoints: [
          { name: 'primary', url: primaryUrl ?? d.base(a!.url) },
          { name: 'secondary', url: d.base(b!.url), priority: 1 },
        ],
        breaker: { volumeThreshold: 5 },
        timeouts: { firstByte: '400ms', response: '400ms', connect: '1s' },
        retry: { budget: { ratio: 1, minPerSecond: 100 } },
      },
    ],
  });
}

/**
 * issue 8 (defect 17): a model-scoped throttle (OpenAI 429 rate_limit_exceeded, Anthropic 529
 * overloaded) holds only that (endpoint, model) pair and never feeds the endpoint's breaker.
 */
const MODEL_SCOPED = { openai: '429', anthropic: '529' } as const;

for (const api of ['openai', 'anthropic'] as const) {
  describe(`classification (${api})`, () => {
    for (const common of COMMON) {
      const row = common.fault === MODEL_SCOPED[api] ? { ...common, charged: false } : common;
      it(`${row.fault}: ${row.failover ? 'fails over' : 'no failover'}, breaker ${row.charged ? 'charged' : 'not charged'}, app gets ${row.app}`, async () => {
        rig = await rigFor(api);
        const [primary, secondary] = rig.fakes;
        primary!.setFault({ fault: row.fault });
        const r = await post(`${rig.base}/u/${DIALECTS[api].path}`, JSON.stringify(DIALECTS[api].body));
        expect(r.status).toBe(row.app);
        expect(primary!.stats().requests).toBe(1);
        expect(secondary!.stats().requests).toBe(row.failover);
        const window = rig.endpoint('u', 'primary').breaker.window();
        expect(window.failures).toBe(row.charged ? 1 : 0);
        if (r.status >= 400) {
          expect(r.headers.get('x-should-retry')).toBe('false');
          const body = JSON.parse(r.text) as { error?: unknown; type?: string };
          if (api === 'anthropic') expect(body.type).toBe('error');
          else expect(body.error).toBeDefined();
        } else {
          expect(r.headers.get('x-breakwater-endpoint')).toBe(row.failover ? 'secondary' : 'primary');
        }
      });
    }

    it('a refused connection fails over and charges the breaker', async () => {
      rig = await rigFor(api, 'http://127.0.0.1:9');
      const r = await post(`${rig.base}/u/${DIALECTS[api].path}`, JSON.stringify(DIALECTS[api].body));
      expect(r.status).toBe(200);
      expect(r.headers.get('x-breakwater-endpoint')).toBe('secondary');
      expect(rig.endpoint('u', 'primary').breaker.window().failures).toBe(1);
    });

    it('an account error holds the endpoint: the next request skips it without an attempt', async () => {
      rig = await rigFor(api);
      const [primary] = rig.fakes;
      primary!.setFault({ fault: 'status:401' });
      await post(`${rig.base}/u/${DIALECTS[api].path}`, JSON.stringify(DIALECTS[api].body));
      primary!.setFault(null);
      const r = await post(`${rig.base}/u/${DIALECTS[api].path}`, JSON.stringify(DIALECTS[api].body));
      expect(r.headers.get('x-breakwater-endpoint')).toBe('secondary');
      expect(primary!.stats().requests).toBe(1);
      expect(rig.logs.some((l) => l.includes('"level":"error"') && l.includes('check its API key'))).toBe(true);
    });

    it('a burst of 400s never opens a breaker', async () => {
      rig = await rigFor(api);
      rig.fakes[0]!.setFault({ fault: 'status:400' });
      const results = await Promise.all(Array.from({ length: 50 }, () => post(`${rig!.base}/u/${DIALECTS[api].path}`, JSON.stringify(DIALECTS[api].body))));
      expect(results.every((r) => r.status === 400)).toBe(true);
      expect(rig.endpoint('u', 'primary').breaker.state.kind).toBe('closed');
      expect(rig.fakes[1]!.stats().requests).toBe(0);
    });
  });
}
