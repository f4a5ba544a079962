// The soak's traffic, written once for both soaks (the in-process one, which reads the heap, and
// the child-process one, which reads resident memory from /metrics): the upstream with every
// traffic-shaping feature on (bulkhead, priority queue, rate limits, cache, health checks,
// leastLatency, hedging, fallbacks), the phases of provider faults, and the users sending
// cached, streaming, JSON, embedding and abandoned requests at mixed priorities. Five minutes of
// phases are scaled down to SOAK_SECONDS (default 20): each phase lasts a tenth of the run.
// Every answer is checked as it arrives; checkSoakTally asserts what a long run must show.
import { expect } from 'vitest';
import type { FakeProvider, FaultRule } from '../../src/fake/server.ts';
import { seeded } from './random.ts';
import type { UpstreamDef } from './rig.ts';

export const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 20);
export const SOAK_PHASES = 10;
/** concurrent users, each sending one request after another */
export const SOAK_USERS = 12;
/** the soak's fakes: A and B at priority 0, C at priority 1 */
export const SOAK_FAKES = 3;
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

/** The upstream `chat` over the three fakes, every traffic-shaping feature on. */
export function soakUpstreams(fakes: FakeProvider[]): UpstreamDef[] {
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
    },
  ];
}

type Kind = 'cached' | 'stream' | 'json' | 'embeddings' | 'abandoned';

export interface SoakTally {
  sent: number;
  hung: number;
  ok: number;
  errors: number;
  abandoned: number;
  /** answers without Breakwater's request id, errors without x-should-retry: false, streams that ended without a terminal event or error event */
  broken: string[];
}

async function one(base: string, kind: Kind, random: () => number, tally: SoakTally): Promise<void> {
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
    const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: controller.signal });
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

async function user(base: string, seed: number, until: number, tally: SoakTally): Promise<void> {
  const random = seeded(seed);
  const kinds: Kind[] = ['cached', 'cached', 'stream', 'stream', 'stream', 'json', 'json', 'embeddings', 'abandoned', 'stream'];
  while (Date.now() < until) await one(base, kinds[Math.floor(random() * kinds.length)]!, random, tally);
}

export interface SoakRun {
  /** the proxy, http://127.0.0.1:PORT */
  base: string;
  /** the fakes soakUpstreams was given */
  fakes: FakeProvider[];
  seconds?: number;
  /** called as each phase's faults are set, before it runs */
  onPhase?: (phase: number) => void;
}

/**
 * Runs the users for `seconds` while the phases rotate the fakes' faults, then heals every fake.
 * Resolves when every user's last request has ended, with what they saw.
 */
export async function driveSoak(run: SoakRun): Promise<SoakTally> {
  const seconds = run.seconds ?? SOAK_SECONDS;
  const [a, b, c] = run.fakes as [FakeProvider, FakeProvider, FakeProvider];
  const tally: SoakTally = { sent: 0, hung: 0, ok: 0, errors: 0, abandoned: 0, broken: [] };
  const phaseMs = (seconds * 1000) / SOAK_PHASES;
  const start = Date.now();
  const users = Array.from({ length: SOAK_USERS }, (_, i) => user(run.base, 1000 + i, start + seconds * 1000, tally));
  try {
    for (let p = 0; p < SOAK_PHASES; p++) {
      const [fa, fb] = PHASE_FAULTS[p]!;
      a.setFault(fa);
      b.setFault(fb);
      c.setFault(p % 4 === 3 ? { fault: 'slow', delayMs: 150 } : null);
      run.onPhase?.(p);
      await new Promise((r) => setTimeout(r, phaseMs));
    }
    await Promise.all(users);
  } finally {
    for (const f of run.fakes) f.setFault(null);
  }
  return tally;
}

/** What every soak must show: no request hung, every answer whole, and most of them served. */
export function checkSoakTally(tally: SoakTally): void {
  expect(tally.hung, 'requests that outlived their deadline by 5 s').toBe(0);
  expect(tally.broken).toEqual([]);
  expect(tally.sent).toBeGreaterThan(SOAK_USERS * 5);
  // C stays healthy and the queue is short: failover, fallback and the cache save most requests
  const answered = tally.ok + tally.errors;
  expect(tally.ok / answered, `ok ${tally.ok} of ${answered}`).toBeGreaterThan(0.7);
}
