// The official @anthropic-ai/sdk parses everything the fake sends in the Anthropic dialect.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { postAndCollect, messagesBody } from './helpers.ts';

let fake: FakeProvider;
let client: Anthropic;

beforeAll(async () => {
  fake = await startFake({ name: 'an' });
  client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0, timeout: 5000 });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.setFault(null);
  fake.resetStats();
});

const params = { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user' as const, content: 'hi' }] };
const err = (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);

describe('anthropic SDK against the fake', () => {
  it('message JSON echoes the model with usage, and x-api-key reaches the provider', async () => {
    const m = await client.messages.create(params);
    expect(m.model).toBe('claude-sonnet-4-6');
    expect(m.content[0]).toMatchObject({ type: 'text', text: 'Hello from the Breakwater fake' });
    expect(m.usage.output_tokens).toBe(5);
    expect(m.usage.input_tokens).toBeGreaterThan(0);
    const rec = fake.stats().recent.at(-1)!;
    // This SDK version sends the key as a bearer token; older ones used x-api-key.
    expect(rec.headers['x-api-key'] ?? rec.headers.authorization).toMatch(/sk-ant-test/);
    expect(rec.headers['anthropic-version']).toBeDefined();
    expect(rec.path).toBe('/v1/messages');
  });

  it('raw stream has the exact event sequence; the stream helper accumulates the message', async () => {
    const stream = await client.messages.create({ ...params, stream: true }, { headers: { 'x-fake-events': '4' } });
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') expect(ev.usage.output_tokens).toBe(4);
    }
    expect(types).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(text).toBe('Hello from the Breakwater');

    const final = await client.messages.stream(params).finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Hello from the Breakwater fake' });
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(5);
  });

  it('the wire has the ping event and ends with message_stop', async () => {
    const r = await postAndCollect(`${fake.url}/v1/messages`, messagesBody({ stream: true }));
    expect(r.frames.map((f) => f.event)).toContain('ping');
    expect(r.frames.at(-1)).toEqual({ event: 'message_stop', data: '{"type":"message_stop"}' });
  });

  it('gzip-compressed stream parses', async () => {
    const final = await client.messages
      .stream(params, { headers: { 'x-fake-gzip': '1', 'x-fake-events': '10' } })
      .finalMessage();
    expect(final.usage.output_tokens).toBe(10);
  });

  it('faults surface as the SDK errors they stand for', async () => {
    const h = (fault: string) => ({ headers: { 'x-fake-fault': fault } });
    const over = await err(client.messages.create(params, h('529')));
    expect(over).toBeInstanceOf(Anthropic.APIError);
    expect((over as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((over as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ error: { type: 'overloaded_error' } });

    expect(await err(client.messages.create(params, h('429')))).toBeInstanceOf(Anthropic.RateLimitError);
    const quota = await err(client.messages.create(params, h('429-quota')));
    expect(quota).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String((quota as Error).message)).toContain('credit balance is too low');
    expect(await err(client.messages.create(params, h('status:401')))).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(await err(client.messages.create(params, h('status:403')))).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(await err(client.messages.create(params, h('status:404')))).toBeInstanceOf(Anthropic.NotFoundError);
    const ctx = await err(client.messages.create(params, h('400-context')));
    expect(String((ctx as Error).message)).toContain('prompt is too long');

    const midStream = await err(client.messages.stream(params, h('error-in-200')).finalMessage());
    expect(midStream).toBeInstanceOf(Anthropic.APIError);

    const empty = await client.messages.create(params, h('empty-choices'));
    expect(empty.content).toEqual([]);
  });
});
