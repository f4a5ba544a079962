// Behaviour at the edges a review found: slow and stuck app readers, `Expect: 100-continue`, a 401 that arrives after a key rotation, upload time vs firstByte,
// and a YAML alias typo in a hot-reloaded edit.
import { request } from 'node:http';
import { appendFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, TEST_KEY_ENV, waitFor, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function oneEndpoint(extra: Record<string, unknown> = {}) {
  return startRig({
    fakes: 1,
    upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1` }], breaker: { volumeThreshold: 1000 }, ...extra }],
  });
}

/** A raw HTTP client that stops reading after the headers (the socket stays open). */
function stuckReader(url: string, body: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-events': '20000', 'x-fake-delay-ms': '0' } }, (res) => {
      res.pause();
      resolve(() => req.destroy());
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('edge cases', () => {
  it('a slow app reader is not a provider timeout: the idle timer pauses while the app socket is full', async () => {
    rig = await oneEndpoint({ timeouts: { idle: '300ms' } });
    const chunks: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request(`${rig!.base}/openai/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-events': '100000' } }, (res) => {
        res.pause();
        setTimeout(() => {
          res.on('data', (c: Buffer) => chunks.push(c.toString()));
          res.on('end', () => resolve());
          res.resume();
        }, 1_000); // longer than timeouts.idle
      });
      req.on('error', reject);
      req.end(chatBody('gpt-4.1', { stream: true }));
    });
    const text = chunks.join('');
    expect(text).toContain('data: [DONE]');
    expect(text).not.toContain('event: error');
    expect(rig.endpoint('openai', 'a').breaker.window().failures).toBe(0);
  });

  it('an app that stops reading is cut at its deadline and frees the endpoint without charging it', async () => {
    rig = await oneEndpoint({ timeouts: { total: '1s', idle: '300ms' } });
    const close = await stuckReader(`${rig.base}/openai/chat/completions`, chatBody('gpt-4.1', { stream: true }));
    try {
      const endpoint = rig.endpoint('openai', 'a');
      await waitFor(() => endpoint.inflight === 0, 'the stuck stream to be cut at its deadline', 5_000);
      expect(endpoint.breaker.window().failures).toBe(0);
      expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).status).toBe(200);
    } finally {
      close();
    }
  });

  it('a request with Expect: 100-continue is forwarded, not failed locally', async () => {
    rig = await oneEndpoint();
    const r = await post(`${rig.base}/openai/chat/completions`, chatBody(), { expect: '100-continue' }).catch((e: unknown) => e);
    // fetch refuses to send Expect itself, so use a raw request when it does
    const status =
      r instanceof Error
        ? await new Promise<number>((resolve, reject) => {
            const req = request(`${rig!.base}/openai/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', expect: '100-continue' } }, (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            });
            req.on('continue', () => req.end(chatBody()));
            req.on('error', reject);
          })
        : (r as { status: number }).status;
    expect(status).toBe(200);
    expect(rig.fakes[0]!.stats().requests).toBe(1);
    expect(rig.endpoint('openai', 'a').breaker.window().failures).toBe(0);
  });

  it('a 401 that arrives after the key was rotated does not hold the endpoint', async () => {
    rig = await startRig({
      fakes: 2,
      upstreams: ([a, b]) => [
        {
          name: 'openai',
          endpoints: [
            { name: 'a', url: `${a!.url}/v1` },
            { name: 'b', url: `${b!.url}/v1`, priority: 1 },
          ],
        },
      ],
    });
    const [a] = rig.fakes;
    a!.setFault({ fault: 'status:401', delayMs: 500, times: 1 });
    const late = post(`${rig.base}/openai/chat/completions`, chatBody());
    await waitFor(() => a!.stats().inflight === 1, 'the slow 401 to be in flight');
    const generation = rig.proxy.runtime.snapshot!.generation;
    process.env[TEST_KEY_ENV] = 'sk-rotated-key';
    rig.proxy.source!.reload();
    await rig.waitForGeneration(generation);
    expect((await late).status).toBe(200); // failed over to b
    const next = await post(`${rig.base}/openai/chat/completions`, chatBody());
    expect(next.headers.get('x-breakwater-endpoint')).toBe('a');
    expect(a!.stats().recent.at(-1)!.headers.authorization).toBe('Bearer sk-rotated-key');
  });

  it('upload time does not count against firstByte', async () => {
    rig = await oneEndpoint({ timeouts: { firstByte: '300ms' } });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${rig!.base}/openai/files`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('part one;');
      setTimeout(() => req.end('part two'), 800); // a slow upload, longer than firstByte
    });
    expect(status).toBe(200);
    expect(rig.endpoint('openai', 'a').breaker.window().failures).toBe(0);
  });

  it('a YAML alias typo in an edit is rejected, not fatal', async () => {
    rig = await oneEndpoint();
    appendFileSync(rig.configPath, '---\napiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: *typo\n');
    await waitFor(() => rig!.logs.some((l) => l.includes('config rejected')), 'the rejection');
    expect(rig.logs.find((l) => l.includes('config rejected'))).toContain('document 2');
    expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).status).toBe(200);
  });
});
