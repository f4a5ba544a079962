// Issue 3, test 8: every bad input gets a clear error and nothing hangs.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, waitFor, type Rig } from '../support/rig.ts';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({
    fakes: 1,
    maxBodyBytes: 1024 * 1024,
    upstreams: ([a]) => [
      { name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }], breaker: { volumeThreshold: 1000 } },
      // a body for gpt-4.1 here may be rewritten (a fallback chain): it is parsed whole
      { name: 'chain', endpoints: [{ name: 'only', url: `${a!.url}/v1` }], breaker: { volumeThreshold: 1000 }, fallbacks: [{ model: 'gpt-4.1', chain: [{ model: 'gpt-4.1-mini' }] }] },
    ],
  });
});
afterAll(async () => rig.close());

function errorOf(text: string): { message: string; code: string } {
  return (JSON.parse(text) as { error: { message: string; code: string } }).error;
}

describe('bad input', () => {
  it('a malformed JSON body gets a 400 in the dialect\'s shape and never reaches the provider', async () => {
    rig.fakes[0]!.resetStats();
    const r = await post(`${rig.base}/openai/chat/completions`, '{"model": "gpt-4.1", "messages": [');
    expect(r.status).toBe(400);
    expect(r.headers.get('x-should-retry')).toBe('false');
    expect(r.headers.get('x-breakwater-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(errorOf(r.text).message).toContain('not valid JSON');
    expect(rig.fakes[0]!.stats().requests).toBe(0);
  });

  it('invalid JSON with a sound structure: a 400 where a rewrite needs the parse, passed to the provider as it came where nothing is rewritten', async () => {
    // brackets and strings balance, so the scan finds the fields; only a whole parse sees the bad value
    const body = '{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.x}';
    rig.fakes[0]!.resetStats();
    const rewritten = await post(`${rig.base}/chain/chat/completions`, body);
    expect(rewritten.status).toBe(400);
    expect(errorOf(rewritten.text).code).toBe('invalid_request');
    expect(errorOf(rewritten.text).message).toContain('not valid JSON');
    expect(rig.fakes[0]!.stats().requests).toBe(0);
    const passed = await post(`${rig.base}/openai/chat/completions`, body);
    expect(rig.fakes[0]!.stats().requests).toBe(1); // the provider judged it (its own 400, passed on)
    expect(passed.status).toBe(400);
    expect(passed.headers.get('x-breakwater-error')).toBeNull();
    expect(passed.headers.get('x-should-retry')).toBe('false');
  });

  it('a body over the limit gets a clean 413', async () => {
    const big = chatBody('gpt-4.1', { padding: 'x'.repeat(2 * 1024 * 1024) });
    const r = await post(`${rig.base}/openai/chat/completions`, big);
    expect(r.status).toBe(413);
    expect(errorOf(r.text).code).toBe('payload_too_large');
    expect(r.headers.get('x-should-retry')).toBe('false');
  });

  it('an unknown upstream gets a 404 naming the configured ones', async () => {
    const r = await post(`${rig.base}/nope/chat/completions`, chatBody());
    expect(r.status).toBe(404);
    expect(errorOf(r.text).message).toContain('"nope"');
    expect(errorOf(r.text).message).toContain('openai');
  });

  it('a non-idempotent path against a failing endpoint gets exactly one attempt', async () => {
    const fake = rig.fakes[0]!;
    fake.resetStats();
    fake.setFault({ fault: '503' });
    try {
      const r = await post(`${rig.base}/openai/files`, JSON.stringify({ purpose: 'batch' }));
      expect(r.status).toBe(503);
      expect(r.headers.get('x-should-retry')).toBe('false');
      expect(r.headers.get('x-breakwater-attempts')).toBe('1');
      expect(fake.stats().requests).toBe(1);
    } finally {
      fake.setFault(null);
    }
  });

  it('an invalid edit is rejected with a line naming document, field and reason; the last good config keeps serving', async () => {
    const generation = rig.proxy.runtime.snapshot!.generation;
    const good = (await post(`${rig.base}/openai/chat/completions`, chatBody())).status;
    expect(good).toBe(200);
    writeFileSync(
      rig.configPath,
      `apiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: { name: openai }\nspec:\n  endpoints:\n    - { name: only, url: "http://api.example.com/v1" }\n  breaker: { volumeThreshold: -3 }\n`,
    );
    await waitFor(() => rig.logs.some((l) => l.includes('config rejected')), 'the rejection log line');
    const line = JSON.parse(rig.logs.find((l) => l.includes('config rejected'))!) as Record<string, string>;
    expect(line.msg).toContain('document 1 (LLMUpstream "openai")');
    expect(line.path).toBe('spec.breaker.volumeThreshold');
    expect(line.msg).toMatch(/greater|>=|minimum/i);
    expect(rig.proxy.runtime.snapshot!.generation).toBe(generation);
    expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).status).toBe(200);
  });
});
