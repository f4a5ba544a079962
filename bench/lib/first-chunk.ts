// Time to the first SSE event through each peer: requests for a streamed chat completion leave on
// a fixed schedule (open loop, a modest rate so no peer is near saturation), and the latency of
// each is taken from its scheduled send time to the first body chunk that holds a `data:` line.
// Added latency = peer − direct, per percentile. Runs in this process with undici (one keep-alive
// pool per peer); the peers are interleaved in rotating rounds like every other run.
import { Pool } from 'undici';
import { percentile, type PeerTarget } from './sweep.ts';
import { sleep } from './procs.ts';
import type { Workload } from './load.ts';

export interface FirstChunk {
  requests: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
}

async function one(pool: Pool, path: string, w: Workload, t: PeerTarget, scheduled: number): Promise<number | undefined> {
  const res = await pool.request({ method: 'POST', path, headers: { ...w.headers, ...t.headers }, body: w.body, headersTimeout: 10_000, bodyTimeout: 10_000 });
  let first: number | undefined;
  for await (const chunk of res.body) {
    if (first === undefined && (chunk as Buffer).includes('data:')) first = performance.now() - scheduled;
  }
  return res.statusCode === 200 ? first : undefined;
}

async function burst(t: PeerTarget, w: Workload, rate: number, seconds: number, into: { ms: number[]; failed: number }): Promise<void> {
  const url = new URL(t.url);
  const pool = new Pool(url.origin, { connections: 64 });
  const n = Math.round(rate * seconds);
  const t0 = performance.now() + 20;
  const pending: Array<Promise<void>> = [];
  try {
    for (let i = 0; i < n; i++) {
      const at = t0 + (i * 1000) / rate;
      const wait = at - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(
        one(pool, url.pathname, w, t, at).then(
          (ms) => (ms === undefined ? void into.failed++ : void into.ms.push(ms)),
          () => void into.failed++,
        ),
      );
    }
    await Promise.all(pending);
  } finally {
    await pool.close();
  }
}

export async function firstChunk(targets: readonly PeerTarget[], w: Workload, o: { rate: number; rounds: number; seconds: number }, log: (m: string) => void): Promise<Map<string, FirstChunk>> {
  const acc = new Map(targets.map((t) => [t.name, { ms: [] as number[], failed: 0 }]));
  for (const t of targets) await burst(t, w, o.rate, Math.min(1, o.seconds), { ms: [], failed: 0 }); // warm-up
  for (let r = 0; r < o.rounds; r++) for (let i = 0; i < targets.length; i++) {
    const t = targets[(i + r) % targets.length]!;
    await burst(t, w, o.rate, o.seconds, acc.get(t.name)!);
  }
  const out = new Map<string, FirstChunk>();
  for (const t of targets) {
    const a = acc.get(t.name)!;
    const ms = a.ms.sort((x, y) => x - y);
    const f: FirstChunk = { requests: ms.length + a.failed, failed: a.failed, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
    out.set(t.name, f);
    log(`${t.name.padEnd(12)} first SSE event at ${o.rate}/s: p50 ${f.p50Ms.toFixed(2)} p99 ${f.p99Ms.toFixed(2)} ms${f.failed ? `  ${f.failed} failed` : ''}`);
  }
  return out;
}
