// The official openai SDK parses everything the fake sends in the OpenAI dialect.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';

let fake: FakeProvider;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFake({ name: 'oa' });
  client = new OpenAI({ apiKey: 'sk-test-key', baseURL: `${fake.url}/v1`, maxRetries: 0, timeout: 5000 });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.setFault(null);
  fake.resetStats();
});

const messages = [{ role: 'user' as const, content: 'hi' }];

describe('openai SDK against the fake', () => {
  it('chat completion JSON echoes the model, reports usage, and the key reaches the provider', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4.1', messages });
    expect(r.model).toBe('gpt-4.1');
    expect(r.choices[0]!.message.content).toBe('Hello from the Breakwater fake');
    expect(r.usage!.completion_tokens).toBe(5);
    const rec = fake.stats().recent.at(-1)!;
    expect(rec.headers.authorization).toBe('Bearer sk-test-key');
    expect(rec).toMatchObject({ path: '/v1/chat/completions', model: 'gpt-4.1', fault: 'none', stream: false });
  });

  it('chat completion stream: N content chunks, finish reason, usage chunk, [DONE]', async () => {
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-fake-events': '7' } },
    );
    let text = '';
    let contentChunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.model).toBe('gpt-4o-mini');
      const c = chunk.choices[0];
      if (c?.delta.content) {
        text += c.delta.content;
        contentChunks++;
      }
      if (c?.finish_reason) finish = c.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(contentChunks).toBe(7);
    expect(text).toBe('Hello from the Breakwater fake provider. The');
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBe(7);
  });

  it('chat stream helper accumulates the final completion', async () => {
    const runner = client.chat.completions.stream({ model: 'gpt-4.1', messages });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]!.message.content).toBe('Hello from the Breakwater fake');
  });

  it('Responses API JSON and streaming (create stream:true and responses.stream)', async () => {
    const r = await client.responses.create({ model: 'gpt-4.1', input: 'hi' });
    expect(r.output_text).toBe('Hello from the Breakwater fake');
    expect(r.usage!.output_tokens).toBe(5);

    const events: string[] = [];
    let deltas = '';
    const stream = await client.responses.create({ model: 'gpt-4.1', input: 'hi', stream: true });
    for await (const ev of stream) {
      events.push(ev.type);
      if (ev.type === 'response.output_text.delta') deltas += ev.delta;
      if (ev.type === 'response.completed') expect(ev.response.usage!.total_tokens).toBeGreaterThan(5);
    }
    expect(events[0]).toBe('response.created');
    expect(events.at(-1)).toBe('response.completed');
    expect(deltas).toBe('Hello from the Breakwater fake');

    const helper = client.responses.stream({ model: 'gpt-4.1-mini', input: 'hi' });
    const final = await helper.finalResponse();
    expect(final.output_text).toBe('Hello from the Breakwater fake');
    expect(final.model).toBe('gpt-4.1-mini');
  });

  it('gzip-compressed streams and JSON parse', async () => {
    const gz = { headers: { 'x-fake-gzip': '1' } };
    const stream = await client.chat.completions.create({ model: 'gpt-4.1', messages, stream: true }, gz);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from the Breakwater fake');

    const { data, response } = await client.chat.completions.create({ model: 'gpt-4.1', messages }, gz).withResponse();
    expect(response.headers.get('content-encoding')).toBe('gzip');
    expect(data.choices[0]!.message.content).toBe('Hello from the Breakwater fake');

    const rs = await client.responses.create({ model: 'gpt-4.1', input: 'x', stream: true }, gz);
    let done = false;
    for await (const ev of rs) if (ev.type === 'response.completed') done = true;
    expect(done).toBe(true);
  });

  it('embeddings (default base64 decoding and floats), models, moderations, legacy completions', async () => {
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[1]!.index).toBe(1);
    expect(Array.from(e.data[0]!.embedding)).toHaveLength(8);
    expect(e.data[0]!.embedding[0]).toBeCloseTo(0.0123, 4);
    const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'a', encoding_format: 'float' });
    expect(f.data[0]!.embedding).toHaveLength(8);

    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toContain('gpt-4.1');

    const mod = await client.moderations.create({ model: 'omni-moderation-latest', input: 'hi' });
    expect(mod.results[0]!.flagged).toBe(false);

    const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'hi' });
    expect(c.choices[0]!.text).toBe('Hello from the Breakwater fake');
  });

  it('faults surface as the SDK errors they stand for', async () => {
    const withFault = (fault: string, extra: Record<string, string> = {}) => ({
      headers: { 'x-fake-fault': fault, ...extra },
    });
    const err = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

    const rl = await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('429', { 'x-fake-retry-after': '2' })));
    expect(rl).toBeInstanceOf(OpenAI.RateLimitError);
    expect((rl as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
    expect((rl as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('2');

    const quota = await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('429-quota')));
    expect((quota as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');

    const ctx = await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('400-context')));
    expect(ctx).toBeInstanceOf(OpenAI.BadRequestError);
    expect((ctx as InstanceType<typeof OpenAI.APIError>).code).toBe('context_length_exceeded');

    expect(await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('status:401')))).toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    expect(await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('503')))).toBeInstanceOf(
      OpenAI.InternalServerError,
    );

    const in200 = await err(
      (async () => {
        const s = await client.chat.completions.create({ model: 'gpt-4.1', messages, stream: true }, withFault('error-in-200'));
        for await (const _ of s) void _;
      })(),
    );
    expect(in200).toBeInstanceOf(OpenAI.APIError);

    const respErr = await err(
      (async () => {
        const s = await client.responses.create({ model: 'gpt-4.1', input: 'x', stream: true }, withFault('error-in-200'));
        for await (const _ of s) void _;
      })(),
    );
    expect(respErr).toBeInstanceOf(OpenAI.APIError);

    const bad = await err(client.chat.completions.create({ model: 'gpt-4.1', messages }, withFault('malformed-json')));
    expect(bad).toBeInstanceOf(Error);
  });
});
