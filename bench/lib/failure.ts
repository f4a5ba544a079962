// Failure scenarios, driven the way an app drives a provider: the official openai SDK at its
// defaults (2 retries with backoff, honouring retry-after and x-should-retry), requests leaving on
// a fixed schedule (steady traffic), a primary and a secondary fake behind the peer. Every peer
// is started fresh for every scenario (no breaker state carried over). Counted:
//   app errors        calls the SDK finally threw on (after its own retries)
//   attempts per call provider requests (both fakes' counters, /_fake/stats) ÷ app calls
//   recovery          (the 10 s primary outage) seconds from the primary's fault being cleared to
//                     the first answer the primary serves again, polled every 100 ms; and the
//                     last app error relative to the clear
// A peer without failover still runs (its app sees the primary's errors, amplified or not by its
// own behaviour and the SDK's retries); the report says it cannot fail over.
import OpenAI from 'openai';
import { BENCH_MODEL } from './peer-configs.ts';
import { percentile } from './sweep.ts';
import { sleep } from './procs.ts';

export type ScenarioName = 'throttle' | 'outage' | 'blip';

export const SCENARIOS: Record<ScenarioName, string> = {
  throttle: 'primary throttles every call (429), secondary healthy',
  outage: 'total outage: primary and secondary answer 503',
  blip: 'primary answers 503 for 10 s in steady traffic, secondary healthy',
};

export interface ScenarioPlan {
  /** app calls per second */
  rate: number;
  /** throttle / outage: seconds of traffic */
  seconds: number;
  /** blip: seconds of healthy traffic before the outage and after it */
  blipBeforeS: number;
  blipOutageS: number;
  blipAfterS: number;
  /** calls still running this long after the schedule ends are counted as hung */
  graceS: number;
}

export interface ScenarioResult {
  calls: number;
  errors: number;
  hung: number;
  primaryAttempts: number;
  secondaryAttempts: number;
  attemptsPerCall: number;
  p50Ms: number;
  p99Ms: number;
  /** blip only: s from the clear to the primary's first served answer (undefined: not within the run) */
  recoveryS?: number | undefined;
  /** blip only: s from the clear to the last app error (negative: errors stopped before the clear) */
  lastErrorAfterClearS?: number | undefined;
}

export interface Fake {
  port: number;
}

async function control(f: Fake, method: 'POST' | 'DELETE' | 'GET', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${f.port}/_fake/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`fake :${f.port} ${method} ${path}: HTTP ${res.status}`);
  return res.json();
}
const setFault = (f: Fake, fault: string) => control(f, 'POST', 'faults', { fault });
const clearFaults = (f: Fake) => control(f, 'DELETE', 'faults');
const resetStats = (f: Fake) => control(f, 'POST', 'stats/reset');
const stats = async (f: Fake) => (await control(f, 'GET', 'stats')) as { requests: number; byFault: Record<string, number> };

export interface App {
  baseURL: string;
  apiKey?: string | undefined;
  headers: Record<string, string>;
}

/** Calls at `rate`/s for `seconds` (open loop), each through the SDK at its defaults. */
async function traffic(app: App, rate: number, seconds: number, graceS: number, onError: (at: number) => void): Promise<{ ms: number[]; errors: number; hung: number }> {
  const headers = Object.fromEntries(Object.entries(app.headers).filter(([k]) => k !== 'authorization'));
  const client = new OpenAI({ baseURL: app.baseURL, apiKey: app.apiKey ?? 'sk-app-not-a-real-key', defaultHeaders: headers });
  // the app gives up on calls still running after the grace period (the SDK's own timeout is
  // 10 minutes): aborted, counted as hung, and no longer retrying into the next scenario
  const giveUp = new AbortController();
  const ms: number[] = [];
  let errors = 0;
  let done = 0;
  const n = Math.round(rate * seconds);
  const t0 = performance.now();
  const calls: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const started = performance.now();
    calls.push(
      client.chat.completions
        .create({ model: BENCH_MODEL, messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 16 }, { signal: giveUp.signal })
        .then(
          () => {
            ms.push(performance.now() - started);
            done++;
          },
          () => {
            if (giveUp.signal.aborted) return;
            errors++;
            done++;
            onError(performance.now());
          },
        ),
    );
  }
  await Promise.race([Promise.allSettled(calls), sleep(graceS * 1000)]);
  const hung = n - done;
  giveUp.abort();
  await Promise.allSettled(calls);
  return { ms: ms.sort((a, b) => a - b), errors, hung };
}

/** Waits (up to 20 s) until neither fake's counter moves for a second: a peer may still be retrying
 * calls the previous app gave up on, and those attempts must not count in the next scenario. */
async function quiesce(fakes: readonly Fake[]): Promise<void> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 40 && still < 2; i++) {
    const n = (await Promise.all(fakes.map(stats))).reduce((a, s) => a + s.requests, 0);
    still = n === last ? still + 1 : 0;
    last = n;
    await sleep(500);
  }
}

export async function runScenario(name: ScenarioName, app: App, primary: Fake, secondary: Fake, plan: ScenarioPlan): Promise<ScenarioResult> {
  await quiesce([primary, secondary]);
  for (const f of [primary, secondary]) {
    await clearFaults(f);
    await resetStats(f);
  }
  let recoveryS: number | undefined;
  let lastErrorAt = -Infinity;
  let clearedAt: number | undefined;
  let seconds = plan.seconds;
  let poller: Promise<void> | undefined;
  let stopPoll = false;
  if (name === 'throttle') await setFault(primary, '429');
  if (name === 'outage') for (const f of [primary, secondary]) await setFault(f, '503');
  if (name === 'blip') {
    seconds = plan.blipBeforeS + plan.blipOutageS + plan.blipAfterS;
    poller = (async () => {
      await sleep(plan.blipBeforeS * 1000);
      await setFault(primary, '503');
      await sleep(plan.blipOutageS * 1000);
      const servedBefore = (await stats(primary)).byFault.none ?? 0;
      await clearFaults(primary);
      clearedAt = performance.now();
      while (!stopPoll) {
        await sleep(100);
        if (((await stats(primary)).byFault.none ?? 0) > servedBefore) {
          recoveryS = (performance.now() - clearedAt) / 1000;
          return;
        }
      }
    })();
  }
  const t = await traffic(app, plan.rate, seconds, plan.graceS, (at) => (lastErrorAt = Math.max(lastErrorAt, at)));
  stopPoll = true;
  await poller;
  const [p, s] = [await stats(primary), await stats(secondary)];
  for (const f of [primary, secondary]) await clearFaults(f);
  const calls = Math.round(plan.rate * seconds);
  return {
    calls,
    errors: t.errors,
    hung: t.hung,
    primaryAttempts: p.requests,
    secondaryAttempts: s.requests,
    attemptsPerCall: (p.requests + s.requests) / calls,
    p50Ms: percentile(t.ms, 50),
    p99Ms: percentile(t.ms, 99),
    ...(name === 'blip' ? { recoveryS, lastErrorAfterClearS: clearedAt !== undefined && lastErrorAt > -Infinity ? (lastErrorAt - clearedAt) / 1000 : undefined } : {}),
  };
}
