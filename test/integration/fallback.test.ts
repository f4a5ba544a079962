// Issue 3, test 6: when the requested model fails on every endpoint, the chain's model answers
// (on the same endpoint), max tokens are capped, headers say so; embeddings never fall back;
// `x-breakwater-fallback: off` is honoured.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRig, type Rig, primaryAndSecondary } from '../support/rig.ts';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({
    fakes: 2,
    upstreams: ([a, b]) => [
      {
        name: 'openai',
        endpoints: primaryAndSecondary(a!, b!),
        breaker: { volumeThreshold: 1000 },
        retry: { maxAttempts: 4, budget: { ratio: 1, minPerSecond: 100 } },
        fallbacks: [
          { model: 'gpt-4.1', chain: [{ model: 'gpt-4.1-mini', maxTokens: 100 }] },
          { model: 'text-embedding-3-large', chain: [{ model: 'text-embedding-3-small' }] },
        ],
      },
      {
        name: 'anthropic',
        api: 'anthropic',
        endpoints: [{ name: 'primary', url: a!.url }],
        breaker: { volumeThreshold: 1000 },
        retry: { budget: { ratio: 1, minPerSecond: 100 } },
        fallbacks: [{ model: 'claude-opus-4-1', chain: [{ model: 'claude-haiku-4-5', maxTokens: 256 }] }],
      },
    ],
  });
});
afterAll(async () => rig.close());
beforeEach(() => {
  for (const f of rig.fakes) {
    f.setFault(null);
    f.resetStats();
  }
});

const openai = () => new OpenAI({ baseURL: `${rig.base}/openai`, apiKey: 'sk-app', maxRetries: 2 });

describe('model fallback', () => {
  it('answers with the chain model on the same endpoint, capping max_tokens, and says so in headers', async () => {
    for (const f of rig.fakes) f.setFault({ fault: '503', model: 'gpt-4.1' });
    const { data, response } = await openai()
      .chat.completions.create({ model: 'gpt-4.1', max_tokens: 4000, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.model).toBe('gpt-4.1-mini');
    expect(response.headers.get('x-breakwater-fallback-model')).toBe('gpt-4.1-mini');
    expect(response.headers.get('x-breakwater-endpoint')).toBe('primary');
    expect(response.headers.get('x-breakwater-attempts')).toBe('3');
    const [primary, secondary] = rig.fakes;
    expect(primary!.stats().byModel).toEqual({ 'gpt-4.1': 1, 'gpt-4.1-mini': 1 });
    expect(secondary!.stats().byModel).toEqual({ 'gpt-4.1': 1 });
    const fallbackCall = primary!.stats().recent.find((r) => r.model === 'gpt-4.1-mini');
    expect(fallbackCall?.maxTokens).toBe(100);
  });

  it('caps but never injects: a request without max tokens reaches the fallback without one', async () => {
    for (const f of rig.fakes) f.setFault({ fault: '503', model: 'gpt-4.1' });
    await openai().chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] });
    const fallbackCall = rig.fakes[0]!.stats().recent.find((r) => r.model === 'gpt-4.1-mini');
    expect(fallbackCall).toBeDefined();
    expect(fallbackCall?.maxTokens).toBeUndefined();
  });

  it('falls back for anthropic too (529 overloaded on the requested model)', async () => {
    rig.fakes[0]!.setFault({ fault: '529', model: 'claude-opus-4-1' });
    const client = new Anthropic({ baseURL: `${rig.base}/anthropic`, apiKey: 'sk-ant-app' });
    const { data, response } = await client.messages
      .create({ model: 'claude-opus-4-1', max_tokens: 4096, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.model).toBe('claude-haiku-4-5');
    expect(response.headers.get('x-breakwater-fallback-model')).toBe('claude-haiku-4-5');
    expect(rig.fakes[0]!.stats().recent.find((r) => r.model === 'claude-haiku-4-5')?.maxTokens).toBe(256);
  });

  it('never falls back for embeddings', async () => {
    for (const f of rig.fakes) f.setFault({ fault: '503', model: 'text-embedding-3-large' });
    const error = await openai()
      .embeddings.create({ model: 'text-embedding-3-large', input: 'hello' })
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    for (const f of rig.fakes) expect(Object.keys(f.stats().byModel)).toEqual(['text-embedding-3-large']);
  });

  it('honours x-breakwater-fallback: off', async () => {
    for (const f of rig.fakes) f.setFault({ fault: '503', model: 'gpt-4.1' });
    const error = await openai()
      .chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-breakwater-fallback': 'off' } })
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false');
    for (const f of rig.fakes) expect(Object.keys(f.stats().byModel)).toEqual(['gpt-4.1']);
  });
});
