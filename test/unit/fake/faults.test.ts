// Each fault spec produces what it says, on the wire.
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { chatBody, gunzipPartial, messagesBody, parseSse, postAndCollect, rawPost, waitFor } from './helpers.ts';

let fake: FakeProvider;
let chat: string;
let messages: string;
let responses: string;

beforeAll(async () => {
  fake = await startFake({ name: 'faults' });
  chat = `${fake.url}/v1/chat/completions`;
  messages = `${fake.url}/v1/messages`;
  responses = `${fake.url}/openai/v1/responses`;
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.setFault(null);
  fake.resetStats();
});

const fault = (spec: string, extra: Record<string, string> = {}) => ({ 'x-fake-fault': spec, ...extra });

describe('error-status faults', () => {
  const cases: Array<[string, 'openai' | 'anthropic', number, Record<string, unknown>]> = [
    ['429', 'openai', 429, { type: 'requests', code: 'rate_limit_exceeded', param: null }],
    ['429-quota', 'openai', 429, { type: 'insufficient_quota', code: 'insufficient_quota' }],
    ['400-context', 'openai', 400, { type: 'invalid_request_error', code: 'context_length_exceeded' }],
    ['500', 'openai', 500, { type: 'server_error' }],
    ['502', 'openai', 502, { type: 'server_error' }],
    ['503', 'openai', 503, { type: 'server_error' }],
    ['504', 'openai', 504, { type: 'server_error' }],
    ['529', 'openai', 529, { type: 'server_error' }],
    ['status:401', 'openai', 401, { code: 'invalid_api_key' }],
    ['status:404', 'openai', 404, { code: 'model_not_found' }],
    ['status:422', 'openai', 422, { type: 'invalid_request_error' }],
    ['429', 'anthropic', 429, { type: 'rate_limit_error' }],
    ['429-quota', 'anthropic', 400, { type: 'invalid_request_error' }],
    ['400-context', 'anthropic', 400, { type: 'invalid_request_error', message: expect.stringContaining('prompt is too long') }],
    ['503', 'anthropic', 503, { type: 'api_error' }],
    ['529', 'anthropic', 529, { type: 'overloaded_error', message: 'Overloaded' }],
    ['status:400', 'anthropic', 400, { type: 'invalid_request_error' }],
    ['status:401', 'anthropic', 401, { type: 'authentication_error' }],
    ['status:403', 'anthropic', 403, { type: 'permission_error' }],
    ['status:404', 'anthropic', 404, { type: 'not_found_error' }],
    ['status:413', 'anthropic', 413, { type: 'request_too_large' }],
  ];
  it.each(cases)('%s on %s → %i with the dialect error body', async (spec, dialect, status, error) => {
    const r = dialect === 'openai'
      ? await postAndCollect(chat, chatBody(), fault(spec))
      : await postAndCollect(messages, messagesBody(), fault(spec));
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = JSON.parse(r.text);
    if (dialect === 'openai') expect(body.error).toMatchObject(error);
    else expect(body).toMatchObject({ type: 'error', error });
  });

  it('retry-after and retry-after-ms come from the headers', async () => {
    const r = await postAndCollect(chat, chatBody(), fault('429', { 'x-fake-retry-after': '2', 'x-fake-retry-after-ms': '1500' }));
    expect(r.headers.get('retry-after')).toBe('2');
    expect(r.headers.get('retry-after-ms')).toBe('1500');
    const plain = await postAndCollect(chat, chatBody(), fault('429'));
    expect(plain.headers.get('retry-after')).toBeNull();
  });

  it('errors apply to stream requests and other paths too', async () => {
    const s = await postAndCollect(chat, chatBody({ stream: true }), fault('503'));
    expect(s.status).toBe(503);
    const e = await postAndCollect(`${fake.url}/v1/embeddings`, { model: 'e', input: 'x' }, fault('429'));
    expect(JSON.parse(e.text).error.code).toBe('rate_limit_exceeded');
  });

  it('an unknown fault or a malformed JSON body answers 400 in the dialect shape', async () => {
    const unknown = await postAndCollect(chat, chatBody(), fault('nope'));
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.text).error.message).toContain('unknown fault');
    for (const [url, check] of [
      [chat, (b: any) => expect(b.error.type).toBe('invalid_request_error')],
      [messages, (b: any) => expect(b).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })],
    ] as const) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
      expect(res.status).toBe(400);
      check(await res.json());
    }
  });
});

describe('delivery faults', () => {
  it('hang: no headers ever; the client abort ends it', async () => {
    const ac = new AbortController();
    const pending = fetch(chat, { method: 'POST', body: JSON.stringify(chatBody()), headers: fault('hang'), signal: ac.signal });
    await waitFor(() => fake.stats().inflight === 1);
    ac.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(() => fake.stats().inflight === 0);
    expect(fake.stats().recent.at(-1)!.fault).toBe('hang');
  });

  it('slow: events drip with the delay; a JSON body arrives in pieces', async () => {
    let t0 = Date.now();
    const s = await postAndCollect(chat, chatBody({ stream: true }), fault('slow', { 'x-fake-delay-ms': '40', 'x-fake-events': '3' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
    expect(s.frames.at(-1)!.data).toBe('[DONE]');

    t0 = Date.now();
    const j = await postAndCollect(chat, chatBody(), fault('slow', { 'x-fake-delay-ms': '30' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(120);
    expect(JSON.parse(j.text).object).toBe('chat.completion');
  });

  it('x-fake-delay-ms delays a JSON answer', async () => {
    const t0 = Date.now();
    await postAndCollect(chat, chatBody(), { 'x-fake-delay-ms': '80' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });

  it('reset-before-headers: the connection is reset with no response', async () => {
    const r = await rawPost(chat, chatBody(), fault('reset-before-headers'));
    expect(r.status).toBeUndefined();
    expect(r.outcome).toBe('ECONNRESET');
  });

  it('reset-after-headers: 200 SSE headers, then reset before any event', async () => {
    const r = await rawPost(chat, chatBody({ stream: true }), fault('reset-after-headers'));
    expect(r.status).toBe(200);
    expect(r.headers!['content-type']).toContain('text/event-stream');
    expect(r.body.length).toBe(0);
    expect(r.outcome).not.toBe('end');
    const j = await rawPost(chat, chatBody(), fault('reset-after-headers'));
    expect(j.status).toBe(200);
    expect(j.outcome).not.toBe('end');
  });

  it('reset-mid-stream: exactly 2 content events, then reset (plain and gzip); JSON: half a body', async () => {
    const contentOf = (text: string) =>
      parseSse(text).filter((f) => f.data.startsWith('{') && JSON.parse(f.data).choices?.[0]?.delta?.content);
    const r = await rawPost(chat, chatBody({ stream: true }), fault('reset-mid-stream'));
    expect(r.status).toBe(200);
    expect(r.outcome).not.toBe('end');
    expect(contentOf(r.body.toString())).toHaveLength(2);

    const gz = await rawPost(chat, chatBody({ stream: true }), fault('reset-mid-stream', { 'x-fake-gzip': 'force' }));
    expect(gz.headers!['content-encoding']).toBe('gzip');
    expect(gz.outcome).not.toBe('end');
    expect(contentOf(gunzipPartial(gz.body))).toHaveLength(2);

    const an = await rawPost(messages, messagesBody({ stream: true }), fault('reset-mid-stream'));
    const events = parseSse(an.body.toString()).map((f) => f.event);
    expect(events.filter((e) => e === 'content_block_delta')).toHaveLength(2);
    expect(events).not.toContain('message_stop');

    const j = await rawPost(chat, chatBody(), fault('reset-mid-stream'));
    expect(j.outcome).not.toBe('end');
    expect(j.body.length).toBeLessThan(Number(j.headers!['content-length']));
    expect(j.body.length).toBeGreaterThan(0);
  });

  it('stall: 2 content events, then silence with the connection open', async () => {
    const r = await rawPost(messages, messagesBody({ stream: true }), fault('stall'), 300);
    expect(r.outcome).toBe('timeout');
    expect(parseSse(r.body.toString()).filter((f) => f.event === 'content_block_delta')).toHaveLength(2);
    const gz = await rawPost(messages, messagesBody({ stream: true }), fault('stall', { 'x-fake-gzip': 'force' }), 300);
    expect(gz.outcome).toBe('timeout');
    const gzEvents = parseSse(gunzipPartial(gz.body)).filter((f) => f.event === 'content_block_delta');
    expect(gzEvents).toHaveLength(2);
    const j = await rawPost(chat, chatBody(), fault('stall'), 200);
    expect(j.outcome).toBe('timeout');
    expect(j.body.length).toBeGreaterThan(0);
  });

  it('no-terminal: the stream ends cleanly without its terminal event, per dialect', async () => {
    const oa = await postAndCollect(chat, chatBody({ stream: true }), fault('no-terminal'));
    expect(oa.error).toBeNull();
    expect(oa.frames.at(-1)!.data).not.toBe('[DONE]');
    expect(JSON.parse(oa.frames.at(-1)!.data).choices[0].finish_reason).toBe('stop');

    const an = await postAndCollect(messages, messagesBody({ stream: true }), fault('no-terminal'));
    expect(an.frames.map((f) => f.event)).not.toContain('message_stop');
    expect(an.frames.at(-1)!.event).toBe('message_delta');

    const rs = await postAndCollect(responses, { model: 'gpt-4.1', input: 'x', stream: true }, fault('no-terminal'));
    expect(rs.frames.map((f) => f.event)).not.toContain('response.completed');
    expect(rs.frames.at(-1)!.event).toBe('response.output_item.done');
  });

  it('malformed-json: JSON body is truncated; a stream starts with an invalid data event', async () => {
    const j = await postAndCollect(chat, chatBody(), fault('malformed-json'));
    expect(j.status).toBe(200);
    expect(j.headers.get('content-type')).toBe('application/json');
    expect(() => JSON.parse(j.text)).toThrow();

    const s = await postAndCollect(chat, chatBody({ stream: true }), fault('malformed-json'));
    expect(() => JSON.parse(s.frames[0]!.data)).toThrow();
    expect(s.frames.at(-1)!.data).toBe('[DONE]');
  });

  it('empty-choices and error-in-200', async () => {
    expect(JSON.parse((await postAndCollect(chat, chatBody(), fault('empty-choices'))).text).choices).toEqual([]);
    const emb = await postAndCollect(`${fake.url}/v1/embeddings`, { model: 'e', input: 'x' }, fault('empty-choices'));
    expect(JSON.parse(emb.text).data).toEqual([]);

    const e = await postAndCollect(chat, chatBody(), fault('error-in-200'));
    expect(e.status).toBe(200);
    expect(JSON.parse(e.text).error.type).toBe('server_error');
    const a = await postAndCollect(messages, messagesBody(), fault('error-in-200'));
    expect(a.status).toBe(200);
    expect(JSON.parse(a.text)).toMatchObject({ type: 'error', error: { type: 'api_error' } });
  });

  it('comment-then-reset: one SSE comment, then reset', async () => {
    const r = await rawPost(chat, chatBody({ stream: true }), fault('comment-then-reset'));
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(': ping\n\n');
    expect(r.outcome).not.toBe('end');
  });
});

describe('floods: bodies that never end or inflate without end', () => {
  /** reads the raw (undecoded) body until `limit` bytes, then closes the connection */
  async function firstBytes(url: string, body: unknown, headers: Record<string, string>, limit: number): Promise<{ contentType: string | null; encoding: string | null; bytes: Buffer }> {
    const abort = new AbortController();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: abort.signal });
    const chunks: Buffer[] = [];
    let size = 0;
    const reader = res.body!.getReader();
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
      size += value.length;
    }
    abort.abort();
    return { contentType: res.headers.get('content-type'), encoding: res.headers.get('content-encoding'), bytes: Buffer.concat(chunks) };
  }

  it('endless-event: one data line that is still going after 4 MiB, and stops when the client closes', async () => {
    const r = await firstBytes(chat, chatBody({ stream: true }), fault('endless-event'), 4 << 20);
    expect(r.contentType).toContain('text/event-stream');
    expect(r.bytes.length).toBeGreaterThanOrEqual(4 << 20);
    expect(r.bytes.subarray(0, 6).toString()).toBe('data: ');
    expect(r.bytes.includes('\n')).toBe(false);
    await waitFor(() => fake.stats().inflight === 0);
  });

  it('endless-event-mid-stream: the first content event, then a data line still going after 4 MiB', async () => {
    const r = await firstBytes(chat, chatBody({ stream: true }), fault('endless-event-mid-stream'), 4 << 20);
    const text = r.bytes.toString();
    const cut = text.lastIndexOf('\n\n') + 2;
    expect(parseSse(text.slice(0, cut)).some((f) => f.data.includes('"content"'))).toBe(true);
    expect(r.bytes.length - cut).toBeGreaterThan(4 << 19);
    expect(text.slice(cut, cut + 6)).toBe('data: ');
    await waitFor(() => fake.stats().inflight === 0);
  });

  it('endless-comments: comment events only, still going after 2 MiB', async () => {
    const r = await firstBytes(chat, chatBody({ stream: true }), fault('endless-comments'), 2 << 20);
    expect(r.bytes.length).toBeGreaterThanOrEqual(2 << 20);
    const whole = r.bytes.toString().slice(0, r.bytes.toString().lastIndexOf('\n\n') + 2);
    expect(parseSse(whole).every((f) => f.event === ':comment')).toBe(true);
    await waitFor(() => fake.stats().inflight === 0);
  });

  it('bare-cr: the normal stream with every line ending a bare \\r', async () => {
    const r = await rawPost(chat, chatBody({ stream: true }), fault('bare-cr'));
    const text = r.body.toString();
    expect(text.includes('\n')).toBe(false);
    expect(parseSse(text.replaceAll('\r', '\n')).at(-1)!.data).toBe('[DONE]');
  });

  it('gzip-bomb: about 1 MiB of gzip that inflates past 64 MiB, for SSE and JSON', async () => {
    for (const body of [chatBody({ stream: true }), chatBody()]) {
      const r = await rawPost(chat, body, fault('gzip-bomb'), 10_000);
      expect(r.headers!['content-encoding']).toBe('gzip');
      expect(r.body.length).toBeLessThan(2 << 20);
      expect(() => gunzipSync(r.body, { maxOutputLength: 64 << 20 })).toThrow(RangeError);
    }
  });
});

describe('other behaviour', () => {
  it('gzip is used only when accept-encoding allows it, unless forced', async () => {
    const no = await rawPost(chat, chatBody(), { 'x-fake-gzip': '1' });
    expect(no.headers!['content-encoding']).toBeUndefined();
    const yes = await rawPost(chat, chatBody(), { 'x-fake-gzip': '1', 'accept-encoding': 'gzip, br' });
    expect(yes.headers!['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipPartial(yes.body)).object).toBe('chat.completion');
  });

  it('x-fake-events sets the number of content events (benchmarks use 50)', async () => {
    const r = await postAndCollect(messages, messagesBody({ stream: true }), { 'x-fake-events': '50' });
    expect(r.frames.filter((f) => f.event === 'content_block_delta')).toHaveLength(50);
  });

  it('any other path answers 200 {id, object} after reading the body', async () => {
    const r = await postAndCollect(`${fake.url}/v1/files`, { purpose: 'batch' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ object: 'file', id: expect.stringMatching(/^file_fake/) });
    const b = await postAndCollect(`${fake.url}/v1/batches`, {});
    expect(JSON.parse(b.text).object).toBe('batch');
  });
});
