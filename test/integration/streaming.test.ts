// Issue 3, test 5: streams pass through unbuffered (lockstep would deadlock a buffering proxy),
// a broken stream always ends in an SDK error (never a hang, never a clean end), with and
// without gzip, and a 200 that dies before its first event is failed over.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type Rig, primaryAndSecondary } from '../support/rig.ts';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({
    fakes: 2,
    upstreams: ([a, b]) => [
      {
        name: 'openai',
        endpoints: primaryAndSecondary(a!, b!),
        timeouts: { idle: '1s', firstByte: '5s' },
        breaker: { volumeThreshold: 1000 },
      },
      {
        name: 'anthropic',
        api: 'anthropic',
        endpoints: primaryAndSecondary(a!, b!, ''),
        timeouts: { idle: '1s', firstByte: '5s' },
        breaker: { volumeThreshold: 1000 },
      },
    ],
  });
});
afterAll(async () => rig.close());

const openai = () => new OpenAI({ baseURL: `${rig.base}/openai`, apiKey: 'sk-app', timeout: 15_000 });
const anthropic = () => new Anthropic({ baseURL: `${rig.base}/anthropic`, apiKey: 'sk-ant-app', timeout: 15_000 });

/** fails instead of hanging */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no end within ${ms} ms (hang)`)), ms))]);
}

async function openaiStream(headers: Record<string, string>, onChunk: () => void = () => undefined): Promise<{ text: string; chunks: number }> {
  const stream = await openai().chat.completions.create(
    { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { headers },
  );
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta.content ?? '';
    onChunk();
  }
  return { text, chunks };
}

async function anthropicStream(headers: Record<string, string>, onEvent: () => void = () => undefined): Promise<{ text: string; stopped: boolean }> {
  const stream = await anthropic().messages.create(
    { model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { headers },
  );
  let text = '';
  let stopped = false;
  for await (const event of stream) {
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    if (event.type === 'message_stop') stopped = true;
    onEvent();
  }
  return { text, stopped };
}

describe('streaming', () => {
  for (const gzip of [false, true]) {
    const extra: Record<string, string> = gzip ? { 'x-fake-gzip': 'force' } : {};
    const label = gzip ? ' (gzip)' : '';

    it(`openai: a lockstep stream completes through the proxy${label}`, async () => {
      const id = `oa-lock-${gzip}`;
      const [primary] = rig.fakes;
      const result = await within(10_000, 'lockstep', openaiStream({ ...extra, 'x-fake-lockstep': id, 'x-fake-events': '8' }, () => primary!.ack(id)));
      expect(result.text.length).toBeGreaterThan(0);
      expect(result.chunks).toBeGreaterThanOrEqual(8);
    });

    it(`anthropic: a lockstep stream completes through the proxy${label}`, async () => {
      const id = `an-lock-${gzip}`;
      const [primary] = rig.fakes;
      const result = await within(10_000, 'lockstep', anthropicStream({ ...extra, 'x-fake-lockstep': id, 'x-fake-events': '8' }, () => primary!.ack(id)));
      expect(result.stopped).toBe(true);
      expect(result.text.length).toBeGreaterThan(0);
    });

    for (const fault of ['reset-mid-stream', 'stall', 'no-terminal']) {
      it(`openai: ${fault} ends in an SDK error${label}`, async () => {
        const error = await within(10_000, fault, openaiStream({ ...extra, 'x-fake-fault': fault }).then(() => undefined, (e: unknown) => e));
        expect(error).toBeInstanceOf(OpenAI.APIError);
      });

      it(`anthropic: ${fault} ends in an SDK error${label}`, async () => {
        const error = await within(10_000, fault, anthropicStream({ ...extra, 'x-fake-fault': fault }).then(() => undefined, (e: unknown) => e));
        expect(error).toBeInstanceOf(Anthropic.APIError);
      });
    }
  }

  it('a broken stream charges the breaker; the app disconnecting does not', async () => {
    const breaker = rig.endpoint('openai', 'primary').breaker;
    const before = breaker.window().failures;
    await openaiStream({ 'x-fake-fault': 'reset-mid-stream' }).catch(() => undefined);
    expect(breaker.window().failures).toBe(before + 1);
    const abort = new AbortController();
    const stream = await openai().chat.completions.create(
      { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'x-fake-fault': 'slow', 'x-fake-delay-ms': '200' }, signal: abort.signal },
    );
    await within(5_000, 'abort', (async () => {
      for await (const _ of stream) {
        abort.abort();
      }
    })().catch(() => undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(breaker.window().failures).toBe(before + 1);
  });

  it('a 200 that resets before its first event is failed over to the next endpoint', async () => {
    const [primary, secondary] = rig.fakes;
    primary!.setFault({ fault: 'reset-after-headers' });
    try {
      const stream = await openai()
        .chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      expect(stream.response.headers.get('x-breakwater-endpoint')).toBe('secondary');
      expect(stream.response.headers.get('x-breakwater-attempts')).toBe('2');
      let text = '';
      for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? '';
      expect(text.length).toBeGreaterThan(0);
      expect(primary!.stats().byFault['reset-after-headers']).toBeGreaterThanOrEqual(1);
      expect(secondary!.stats().requests).toBeGreaterThan(0);
    } finally {
      primary!.setFault(null);
    }
  });
});
