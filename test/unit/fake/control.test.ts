// Run-time rules, the control API, stats and peak concurrency, lockstep, close() and the CLI.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseFault, RuleSet } from '../../../src/fake/faults.ts';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { chatBody, postAndCollect, rawPost, sleep, waitFor } from './helpers.ts';

let fake: FakeProvider;
let chat: string;

beforeAll(async () => {
  fake = await startFake({ name: 'ctl' });
  chat = `${fake.url}/v1/chat/completions`;
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.setFault(null);
  fake.resetStats();
});

const status = async (model = 'gpt-4.1', headers: Record<string, string> = {}, url = chat): Promise<number> =>
  (await postAndCollect(url, chatBody({ model }), headers)).status;

const ctl = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
  const res = await fetch(`${fake.url}/_fake/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
};

describe('fault specs and rules (unit)', () => {
  it('parses fixed names and status:NNN into a typed union', () => {
    expect(parseFault('503')).toEqual({ kind: 'error', name: '503', status: 503, flavor: 'server' });
    expect(parseFault('status:413')).toMatchObject({ kind: 'error', status: 413, flavor: 'too_large' });
    expect(parseFault('hang')).toEqual({ kind: 'hang', name: 'hang' });
    expect(parseFault('418')).toMatchObject({ kind: 'error', status: 418, flavor: 'invalid' });
    expect(parseFault('status:200')).toBeNull();
    expect(parseFault('bogus')).toBeNull();
  });

  it('RuleSet: first match wins, times are consumed, validation rejects junk', () => {
    const rs = new RuleSet();
    rs.replace([{ fault: '503', model: 'a', times: 1 }, { fault: '429', path: 'embeddings' }]);
    expect(rs.take('/v1/chat/completions', 'b')).toBeNull();
    expect(rs.take('/v1/chat/completions', 'a')!.spec.name).toBe('503');
    expect(rs.take('/v1/chat/completions', 'a')).toBeNull();
    expect(rs.take('/v1/embeddings', 'a')!.spec.name).toBe('429');
    expect(() => rs.replace([{ fault: 'nope' }])).toThrow(/unknown fault/);
    expect(() => rs.replace([{ fault: '503', times: 0 }])).toThrow(/times/);
    expect(() => rs.replace([{ fault: '503', colour: 'red' } as never])).toThrow(/unknown rule field/);
  });
});

describe('rules at run time', () => {
  it('times: applies to the next N requests, then reverts to none', async () => {
    fake.setFault({ fault: '503', times: 2 });
    expect([await status(), await status(), await status()]).toEqual([503, 503, 200]);
    expect(fake.stats().byFault).toEqual({ '503': 2, none: 1 });
  });

  it('model and path limit a rule; the header wins and does not consume it', async () => {
    fake.setFault({ fault: '429', model: 'gpt-4.1', times: 1 });
    expect(await status('gpt-4o-mini')).toBe(200);
    expect(await status('gpt-4.1', { 'x-fake-fault': 'none' })).toBe(200);
    expect(await status('gpt-4.1')).toBe(429);
    expect(await status('gpt-4.1')).toBe(200);

    fake.setFault({ fault: '500', path: 'embeddings' });
    expect(await status()).toBe(200);
    expect(await status('e', {}, `${fake.url}/v1/embeddings`)).toBe(500);
  });

  it('rule options: retryAfter, retryAfterMs, gzip, delayMs', async () => {
    fake.setFault({ fault: '429', retryAfter: 3, retryAfterMs: 2500 });
    const r = await postAndCollect(chat, chatBody());
    expect(r.headers.get('retry-after')).toBe('3');
    expect(r.headers.get('retry-after-ms')).toBe('2500');

    fake.setFault({ gzip: true, delayMs: 60 });
    const t0 = Date.now();
    const g = await rawPost(chat, chatBody(), { 'accept-encoding': 'gzip' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(g.headers!['content-encoding']).toBe('gzip');
  });

  it('control API: POST a rule list, GET it with remaining times, DELETE it, reject junk', async () => {
    const set = await ctl('POST', 'faults', { rules: [{ fault: '503', model: 'a', times: 2 }, { fault: '429' }] });
    expect(set.status).toBe(200);
    expect(await status('a')).toBe(503);
    expect(await status('b')).toBe(429);
    expect((await ctl('GET', 'faults')).json.rules).toEqual([{ fault: '503', model: 'a', times: 1 }, { fault: '429' }]);
    expect(await status('a')).toBe(503);
    expect(await status('a')).toBe(429);
    await ctl('DELETE', 'faults');
    expect(await status('a')).toBe(200);

    expect((await ctl('POST', 'faults', { fault: 'hang', times: 1 })).json.rules).toEqual([{ fault: 'hang', times: 1 }]);
    expect((await ctl('POST', 'faults', { fault: 'explode' })).status).toBe(400);
    expect((await ctl('POST', 'faults', { rules: 'x' })).status).toBe(400);
    // A rejected update leaves the previous rules in place.
    expect((await ctl('GET', 'faults')).json.rules).toEqual([{ fault: 'hang', times: 1 }]);
    expect((await ctl('GET', 'nope')).status).toBe(404);
  });
});

describe('stats', () => {
  it('counts provider requests by fault, model and path; control calls are not counted', async () => {
    await status('m1');
    await status('m2', { 'x-fake-fault': '503' });
    await postAndCollect(`${fake.url}/v1/messages`, { model: 'claude-x', max_tokens: 5, messages: [] });
    await ctl('GET', 'faults');
    const { json } = await ctl('GET', 'stats');
    expect(json).toMatchObject({
      name: 'ctl',
      requests: 3,
      byFault: { none: 2, '503': 1 },
      byModel: { m1: 1, m2: 1, 'claude-x': 1 },
      byPath: { '/v1/chat/completions': 2, '/v1/messages': 1 },
      inflight: 0,
    });
    expect(json.recent.map((r: { model: string }) => r.model)).toEqual(['m1', 'm2', 'claude-x']);
    expect(json.recent[1]).toMatchObject({ method: 'POST', fault: '503', headers: { 'x-fake-fault': '503' } });
    await ctl('POST', 'stats/reset');
    expect(fake.stats()).toMatchObject({ requests: 0, byFault: {}, recent: [] });
  });

  it('keeps only the last 200 requests, oldest first', async () => {
    for (let i = 0; i < 205; i += 41) {
      await Promise.all(Array.from({ length: Math.min(41, 205 - i) }, (_, k) => status(`m${i + k}`)));
    }
    const s = fake.stats();
    expect(s.requests).toBe(205);
    expect(s.recent).toHaveLength(200);
    expect(s.recent.map((r) => r.at)).toEqual([...s.recent.map((r) => r.at)].sort((a, b) => a - b));
  });

  it('peakConcurrency is the most simultaneous in-flight requests since the last reset', async () => {
    await Promise.all(Array.from({ length: 8 }, () => status('p', { 'x-fake-delay-ms': '80' })));
    expect(fake.stats().peakConcurrency).toBe(8);
    fake.resetStats();
    for (let i = 0; i < 4; i++) await status();
    expect(fake.stats().peakConcurrency).toBe(1);

    // Hung requests are in flight until the client goes away.
    fake.resetStats();
    const ac = new AbortController();
    const hung = Array.from({ length: 3 }, () =>
      fetch(chat, { method: 'POST', body: '{}', headers: { 'x-fake-fault': 'hang' }, signal: ac.signal }).catch(() => null),
    );
    await waitFor(() => fake.stats().inflight === 3);
    expect(fake.stats()).toMatchObject({ inflight: 3, peakConcurrency: 3 });
    ac.abort();
    await Promise.all(hung);
    await waitFor(() => fake.stats().inflight === 0);
    expect(fake.stats()).toMatchObject({ inflight: 0, peakConcurrency: 3 });
  });
});

describe('lockstep streaming', () => {
  async function readContent(res: Response, onEvent: (n: number) => Promise<void> | void): Promise<string[]> {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const pieces: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return pieces;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = frame.slice(frame.indexOf('data: ') + 6);
        if (data === '[DONE]') continue;
        const content = JSON.parse(data).choices[0]?.delta?.content;
        if (content) {
          pieces.push(content);
          await onEvent(pieces.length);
        }
      }
    }
  }

  it('sends content event k+1 only after event k is acked (HTTP ack and fake.ack)', async () => {
    const res = await fetch(chat, {
      method: 'POST',
      body: JSON.stringify(chatBody({ stream: true })),
      headers: { 'x-fake-lockstep': 's1', 'x-fake-events': '3' },
    });
    expect(res.headers.get('x-fake-stream-id')).toBe('s1');
    const seen: number[] = [];
    const pieces = await readContent(res, async (n) => {
      seen.push(n);
      await sleep(60); // nothing else may arrive while unacked
      expect(seen.at(-1)).toBe(n);
      if (n === 1) await fetch(`${fake.url}/_fake/ack/s1`, { method: 'POST' });
      else fake.ack('s1');
    });
    expect(pieces).toEqual(['Hello', ' from', ' the']);
  });

  it('a stream waits for its ack (a buffering reader would deadlock)', async () => {
    const ac = new AbortController();
    const res = await fetch(chat, {
      method: 'POST',
      body: JSON.stringify(chatBody({ stream: true })),
      headers: { 'x-fake-lockstep': 's-wait', 'x-fake-events': '2' },
      signal: ac.signal,
    });
    const whole = res.text().then(
      () => 'finished',
      () => 'aborted',
    );
    const outcome = await Promise.race([whole, sleep(200).then(() => 'waiting')]);
    expect(outcome).toBe('waiting');
    fake.ack('s-wait');
    expect(await whole).toBe('finished');
  });

  it('acks that arrive before the events are counted, not lost', async () => {
    fake.ack('s2');
    fake.ack('s2');
    const r = await postAndCollect(chat, chatBody({ stream: true }), { 'x-fake-lockstep': 's2', 'x-fake-events': '3' });
    expect(r.frames.at(-1)!.data).toBe('[DONE]');
  });

  it('rule lockstep:true takes the stream id from x-fake-stream-id', async () => {
    fake.setFault({ lockstep: true, events: 2 });
    const pending = postAndCollect(chat, chatBody({ stream: true }), { 'x-fake-stream-id': 'rule-1' });
    await waitFor(() => fake.stats().requests === 1);
    expect(fake.stats().recent.at(-1)!.streamId).toBe('rule-1');
    fake.ack('rule-1');
    const r = await pending;
    expect(r.headers.get('x-fake-stream-id')).toBe('rule-1');
    expect(r.frames.at(-1)!.data).toBe('[DONE]');
  });
});

describe('close() and the CLI', () => {
  it('close() ends hung and stalled requests and never hangs', async () => {
    const f = await startFake();
    const url = `${f.url}/v1/chat/completions`;
    const hung = rawPost(url, chatBody(), { 'x-fake-fault': 'hang' }, 5000);
    const stalled = rawPost(url, chatBody({ stream: true }), { 'x-fake-fault': 'stall' }, 5000);
    const lock = rawPost(url, chatBody({ stream: true }), { 'x-fake-lockstep': 'never' }, 5000);
    const slow = rawPost(url, chatBody(), { 'x-fake-delay-ms': '60000' }, 5000);
    await waitFor(() => f.stats().requests === 4);
    expect(f.stats().inflight).toBe(4);
    const t0 = Date.now();
    await f.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    const outcomes = (await Promise.all([hung, stalled, lock, slow])).map((r) => r.outcome);
    expect(outcomes.every((o) => o !== 'timeout' && o !== 'end')).toBe(true);
    expect(f.stats().inflight).toBe(0);
    await f.close(); // idempotent
  });

  it('fakeCli logs one JSON line with the url and exits on SIGTERM', async () => {
    const server = fileURLToPath(new URL('../../../src/fake/server.ts', import.meta.url));
    const child = spawn(process.execPath, [
      '--input-type=module',
      '-e',
      `import { fakeCli } from ${JSON.stringify(server)}; await fakeCli(['--listen', '127.0.0.1:0', '--name', 'cli']);`,
    ]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    while (!out.includes('\n')) await sleep(20);
    const line = JSON.parse(out.trim());
    expect(line).toMatchObject({ name: 'cli', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    const models = await fetch(`${line.url}/v1/models`);
    expect(models.status).toBe(200);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
