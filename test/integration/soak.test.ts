// The soak of issue 10: every traffic-shaping feature on at once (bulkhead, priority queue, rate
// limits, cache, health checks, leastLatency, hedging, fallbacks) under rotating provider faults,
// with streaming, cached, prioritised and abandoned requests mixed. Five minutes of phases are
// scaled down to SOAK_SECONDS (default 20): each phase lasts a tenth of the run. It checks what a
// long run would show: no request hangs, every answer is whole (a stream ends, an error has
// Breakwater's request id), the shared provider is used sparingly, and after a forced GC the
// heap and every in-flight count are back where they were.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider, FaultRule } from '../../src/fake/server.ts';
import { seeded } from '../support/random.ts';
import { startRig, type Rig, type UpstreamDef } from '../support/rig.ts';
import { waitFor } from '../support/wait.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SECONDS = Number(process.env.SOAK_SECONDS ?? 20);
const PHASES = 10;
const USERS = 12;
/** the app's deadline for each request (x-breakwater-timeout) */
const DEADLINE_MS = 3_000;
/** past this a request counts as hung: its deadline plus a generous margin */
const HANG_MS = DEADLINE_MS + 5_000;

/** what A and B suffer phase by phase; C (the lower priority) stays mostly healthy */
const PHASE_FAULTS: readonly (readonly [FaultRule | null, FaultRule | null])[] = [
  [null, null],
  [{ fault: '503' }, null],
  [{ fault: '429', retryAfter: 1 }, { fault: 'slow', delayMs: 400 }],
  [{ fault: 'hang' }, { fault: 'reset-mid-stream' }],
  [{ fault: 'stall' }, { fault: 'empty-choices' }],
  [null, { fault: '503' }],
  [{ fault: 'reset-before-headers' }, { fault: 'hang' }],
  [{ fault: 'slow', delayMs: 300 }, { fault: '529' }],
  [{ fault: 'error-mid-stream' }, null],
  [null, null],
];

function upstreams(fakes: FakeProvider[]): UpstreamDef[] {
  const [a, b, c] = fakes as [FakeProvider, FakeProvider, FakeProvider];
  return [
    {
      name: 'chat',
      required: true,
      endpoints: [
        { name: 'a', url: `${a.url}/v1`, maxConcurrent: 6, rateLimit: { requestsPerMinute: 6000, tokensPerMinute: 6_000_000 } },
        { name: 'b', url: `${b.url}/v1`, maxConcurrent: 6 },
        { name: 'c', url: `${c.url}/v1`, priority: 1, maxConcurrent: 8 },
      ],
      breaker: { volumeThreshold: 4, consecutiveFailures: 3, openDuration: '1s', rollingWindow: '5s' },
      retry: { maxAttempts: 3, backoff: { initial: '50ms', max: '300ms' }, maxRetryAfter: '2s' },
      timeouts: { connect: '500ms', firstByte: '800ms', response: '1500ms', idle: '500ms', total: '5s' },
      fallbacks: [{ model: 'gpt-4.1', chain: [{ model: 'gpt-4.1-mini', maxTokens: 256 }] }],
      queue: { maxSize: 16, maxWait: '1s' },
      cache: { enabled: true, ttl: '5s', maxEntries: 200, maxBytes: 262144 },
      healthCheck: { enabled: true, interval: '1s', timeout: '500ms' },
      balance: 'leastLatency',
      hedge: { after: '400ms', maxExtra: 1 },
    } as UpstreamDef,
  ];
}

type Kind = 'cached' | 'stream' | 'json' | 'embeddings' | 'abandoned';

interface Tally {
  sent: number;
  hung: number;
  ok: number;
  errors: number;
  abandoned: number;
  /** answers without Breakwater's request id, or streams that ended without a terminal event or error event */
  broken: string[];
}

describe('soak: every traffic-shaping feature on, under rotating faults', () => {
  let rig: Rig;
  const tally: Tally = { sent: 0, hung: 0, ok: 0, errors: 0, abandoned: 0, broken: [] };
  let heapWarm = 0;
  let heapEnd = 0;

  beforeAll(async () => {
    rig = await startRig({ fakes: 3, upstreams, logLevel: 'warn' });
  });

  afterAll(async () => {
    await rig?.close();
  });

  async function one(kind: Kind, random: () => number): Promise<void> {
    const priority = (['high', 'normal', 'low'] as const)[Math.floor(random() * 3)]!;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-breakwater-timeout': `${DEADLINE_MS}ms`, 'x-breakwater-priority': priority };
    let path = '/chat/v1/chat/completions';
    let body: Record<string, unknown>;
    switch (kind) {
      case 'cached':
        body = { model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user', content: `question ${Math.floor(random() * 20)}` }] };
        break;
      case 'stream':
      case 'abandoned':
        body = { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'tell me a story' }] };
        break;
      case 'json':
        body = { model: 'gpt-4.1', temperature: 0.7, max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] };
        break;
      case 'embeddings':
        path = '/chat/v1/embeddings';
        body = { model: 'text-embedding-3-small', input: `text ${Math.floor(random() * 1000)}` };
        break;
    }
    const controller = new AbortController();
    const hang = setTimeout(() => controller.abort(new Error('hung')), HANG_MS);
    const abandonAfter = kind === 'abandoned' ? Math.floor(random() * 300) : undefined;
    const abandon = abandonAfter === undefined ? undefined : setTimeout(() => controller.abort(new Error('abandoned')), abandonAfter);
    tally.sent++;
    try {
      const res = await fetch(`${rig.base}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: controller.signal });
      const text = await res.text();
      if (res.headers.get('x-breakwater-request-id') === null) tally.broken.push(`${kind}: ${res.status} without x-breakwater-request-id`);
      if (res.status === 200) {
        tally.ok++;
        if (kind === 'stream' || kind === 'abandoned') {
          if (!text.includes('data: [DONE]') && !text.includes('"error"')) tally.broken.push(`${kind}: a 200 stream that ended without [DONE] or an error event`);
        }
      } else {
        tally.errors++;
        if (res.headers.get('x-should-retry') !== 'false') tally.broken.push(`${kind}: ${res.status} without x-should-retry: false`);
      }
    } catch (err) {
      const reason = (controller.signal.reason as Error | undefined)?.message;
      if (reason === 'hung') tally.hung++;
      else if (reason === 'abandoned') tally.abandoned++;
      else tally.broken.push(`${kind}: ${(err as Error).message}`);
    } finally {
      clearTimeout(hang);
      clearTimeout(abandon);
    }
  }

  async function user(seed: number, until: number): Promise<void> {
    const random = seeded(seed);
    const kinds: Kind[] = ['cached', 'cached', 'stream', 'stream', 'stream', 'json', 'json', 'embeddings', 'abandoned', 'stream'];
    while (Date.now() < until) await one(kinds[Math.floor(random() * kinds.length)]!, random);
  }

  it(
    `runs ${SECONDS} s of mixed faults: no request hangs, every answer is whole, and memory and in-flight counts return to where they were`,
    async () => {
      const [a, b, c] = rig.fakes as [FakeProvider, FakeProvider, FakeProvider];
      const phaseMs = (SECONDS * 1000) / PHASES;
      const start = Date.now();
      const users = Array.from({ length: USERS }, (_, i) => user(1000 + i, start + SECONDS * 1000));
      for (let p = 0; p < PHASES; p++) {
        const [fa, fb] = PHASE_FAULTS[p]!;
        a.setFault(fa);
        b.setFault(fb);
        c.setFault(p % 4 === 3 ? { fault: 'slow', delayMs: 150 } : null);
        if (p === 2) {
          gc();
          heapWarm = process.memoryUsage().heapUsed;
        }
        await new Promise((r) => setTimeout(r, phaseMs));
      }
      await Promise.all(users);
      for (const f of rig.fakes) f.setFault(null);

      // nothing is left in flight: no attempt, no waiter, no buffered body
      const snapshot = rig.proxy.runtime.snapshot!;
      await waitFor('every attempt to settle', () => [...snapshot.upstreams.values()].every((u) => u.endpoints.every((e) => e.inflight === 0)), 10_000);
      await waitFor('the proxy to have no request in flight', () => rig.proxy.server.inflight === 0, 10_000);
      gc();
      heapEnd = process.memoryUsage().heapUsed;

      expect(tally.hung, 'requests that outlived their deadline by 5 s').toBe(0);
      expect(tally.broken).toEqual([]);
      expect(tally.sent).toBeGreaterThan(USERS * 5);
      // C stays healthy and the queue is short: failover, fallback and the cache save most requests
      const answered = tally.ok + tally.errors;
      expect(tally.ok / answered, `ok ${tally.ok} of ${answered}`).toBeGreaterThan(0.7);
      // flat: what a long run adds after warm-up stays within a few MiB (the cache is bounded at 256 KiB)
      expect((heapEnd - heapWarm) / 1024 / 1024, `heap ${heapWarm} -> ${heapEnd}`).toBeLessThan(16);
    },
    (SECONDS + 60) * 1000,
  );
});
