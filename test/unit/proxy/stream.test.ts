// SseScanner: whole events only, at any chunking (bytes, CRLF halves, multi-byte characters);
// comments and pings never commit; terminal and error events per dialect; usage totals.
import { describe, expect, it } from 'vitest';
import { anthropic } from '../../../src/proxy/dialects/anthropic.ts';
import { openai } from '../../../src/proxy/dialects/openai.ts';
import type { DialectRules } from '../../../src/proxy/dialects/types.ts';
import { SseScanner } from '../../../src/proxy/stream.ts';

interface Scan {
  forwarded: string;
  dataEvents: number;
  sawTerminal: boolean;
  errorData: string | undefined;
  pending: number;
}

function scan(dialect: DialectRules, chunks: readonly string[]): Scan {
  const s = new SseScanner(dialect);
  let forwarded = '';
  for (const chunk of chunks) forwarded += s.push(chunk);
  return { forwarded, dataEvents: s.dataEvents, sawTerminal: s.sawTerminal, errorData: s.errorData, pending: s.pendingLength };
}

/** feeds bytes through a streaming TextDecoder, as forward.ts does */
function scanBytes(dialect: DialectRules, chunks: readonly Uint8Array[]): Scan {
  const decoder = new TextDecoder();
  return scan(dialect, chunks.map((c) => decoder.decode(c, { stream: true })));
}

const OPENAI_CHAT =
  ': OPENROUTER PROCESSING\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Héllo 👋 wörld"}}]}\n\n' +
  ': keep-alive\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n' +
  'data: [DONE]\n\n';

const ANTHROPIC_MESSAGES = [
  'event: message_start\r\ndata: {"type":"message_start","message":{"id":"m1","usage":{"input_tokens":25,"output_tokens":1}}}\r\n\r\n',
  'event: ping\r\ndata: {"type": "ping"}\r\n\r\n',
  'event: content_block_start\r\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\r\n\r\n',
  'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Grüße ✨"}}\r\n\r\n',
  'event: content_block_stop\r\ndata: {"type":"content_block_stop","index":0}\r\n\r\n',
  'event: message_delta\r\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\r\n\r\n',
  'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n',
].join('');

const STREAMS = [
  ['openai chat (LF)', openai, OPENAI_CHAT, { dataEvents: 5, sawTerminal: true }],
  // issue 8: message_start and content_block_start announce a message; they do not commit (6 events, 4 commit)
  ['anthropic messages (CRLF)', anthropic, ANTHROPIC_MESSAGES, { dataEvents: 4, sawTerminal: true }],
] as const;

describe.each(STREAMS)('%s', (_label, dialect, text, expected) => {
  const whole = scan(dialect, [text]);

  it('in one chunk: every event forwarded, pings and comments not counted', () => {
    expect(whole).toEqual({ forwarded: text, ...expected, errorData: undefined, pending: 0 });
  });

  it('split at every character position gives the same result', () => {
    for (let i = 0; i <= text.length; i++) expect(scan(dialect, [text.slice(0, i), text.slice(i)]), `split at ${i}`).toEqual(whole);
  });

  it('split at every pair of positions gives the same result', () => {
    const step = Math.max(1, Math.floor(text.length / 120));
    for (let i = 0; i <= text.length; i += step) {
      for (let j = i; j <= text.length; j++) {
        expect(scan(dialect, [text.slice(0, i), text.slice(i, j), text.slice(j)]), `split at ${i}, ${j}`).toEqual(whole);
      }
    }
  });

  it('split at every byte position (inside multi-byte characters too) gives the same result', () => {
    const bytes = new TextEncoder().encode(text);
    expect(bytes.length).toBeGreaterThan(text.length); // the sample has multi-byte characters
    for (let i = 0; i <= bytes.length; i++) expect(scanBytes(dialect, [bytes.subarray(0, i), bytes.subarray(i)]), `split at byte ${i}`).toEqual(whole);
  });

  it('one byte at a time gives the same result', () => {
    const bytes = new TextEncoder().encode(text);
    expect(scanBytes(dialect, Array.from(bytes, (_b, i) => bytes.subarray(i, i + 1)))).toEqual(whole);
  });

  it('push() returns only whole events, holding back a partial one', () => {
    const cut = text.length - 5;
    const s = new SseScanner(dialect);
    const out = s.push(text.slice(0, cut));
    expect(text.startsWith(out)).toBe(true);
    expect(out).toMatch(/\r?\n\r?\n$/);
    expect(s.pendingLength).toBe(cut - out.length);
    expect(s.sawTerminal).toBe(false);
    expect(s.push(text.slice(cut))).toBe(text.slice(out.length));
    expect(s.pendingLength).toBe(0);
  });
});

describe('CRLF boundaries', () => {
  it('finds a boundary split between \\r and \\n, at either line ending', () => {
    for (const [a, b] of [
      ['data: [DONE]\r', '\n\r\n'],
      ['data: [DONE]\r\n\r', '\n'],
      ['data: [DONE]\r\n', '\r\n'],
    ]) {
      const s = new SseScanner(openai);
      expect(s.push(a!)).toBe('');
      expect(s.push(b!)).toBe(a! + b!);
      expect(s.sawTerminal).toBe(true);
    }
  });

  it('accepts mixed line endings', () => {
    expect(scan(openai, ['data: {"a":1}\r\n\ndata: {"b":2}\n\r\n'])).toMatchObject({ dataEvents: 2, pending: 0 });
  });
});

describe('what counts as data', () => {
  it.each([
    ['a comment', ': ping\n\n'],
    ['a bare colon', ':\n\n'],
    ['an event: ping with data', 'event: ping\ndata: {"type":"ping"}\n\n'],
    ['an event name without data', 'event: message_start\n\n'],
    ['a retry field', 'retry: 3000\n\n'],
    ['an id field', 'id: 7\n\n'],
    ['blank lines', '\n\n\n\n'],
  ])('%s does not count (and so does not commit)', (_label, text) => {
    for (const dialect of [openai, anthropic]) {
      const s = new SseScanner(dialect);
      expect(s.push(text)).toBe(text); // still forwarded
      expect(s.dataEvents).toBe(0);
      expect(s.errorData).toBeUndefined();
    }
  });

  it('a data field without a space after the colon counts', () => {
    expect(scan(openai, ['data:[DONE]\n\n'])).toMatchObject({ dataEvents: 1, sawTerminal: true });
  });

  it('a multi-line data field is one event', () => {
    expect(scan(openai, ['data: {"a":\ndata: 1}\n\n'])).toMatchObject({ dataEvents: 1, pending: 0 });
  });
});

describe('terminal events', () => {
  it.each([
    ['openai', openai, 'data: [DONE]\n\n', true],
    ['openai', openai, 'data: {"choices":[{"finish_reason":"stop"}]}\n\n', false],
    ['openai Responses API', openai, 'event: response.completed\ndata: {"type":"response.completed"}\n\n', true],
    ['openai Responses API', openai, 'event: response.incomplete\ndata: {"type":"response.incomplete"}\n\n', true],
    ['openai Responses API', openai, 'event: response.output_text.delta\ndata: {"delta":"hi"}\n\n', false],
    ['openai', openai, 'event: message_stop\ndata: {"type":"message_stop"}\n\n', false],
    ['anthropic', anthropic, 'event: message_stop\ndata: {"type":"message_stop"}\n\n', true],
    ['anthropic', anthropic, 'event: message_delta\ndata: {"type":"message_delta"}\n\n', false],
    ['anthropic', anthropic, 'data: [DONE]\n\n', false],
  ] as const)('%s: %j -> %s', (_label, dialect, text, terminal) => {
    expect(scan(dialect, [text]).sawTerminal).toBe(terminal);
  });

  it('a stream cut before its terminal event never reports one', () => {
    const cut = OPENAI_CHAT.slice(0, OPENAI_CHAT.indexOf('data: [DONE]'));
    expect(scan(openai, [cut])).toMatchObject({ sawTerminal: false, dataEvents: 4, pending: 0 });
    const partial = scan(openai, [OPENAI_CHAT.slice(0, -3)]); // "data: [DO"
    expect(partial.sawTerminal).toBe(false);
  });
});

describe('error events', () => {
  const openaiError = '{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}';
  const anthropicError = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';

  it.each([
    ['openai: an error object as data', openai, `data: ${openaiError}\n\n`, openaiError],
    ['openai: event: error', openai, `event: error\ndata: ${openaiError}\n\n`, openaiError],
    ['anthropic: event: error', anthropic, `event: error\ndata: ${anthropicError}\n\n`, anthropicError],
  ] as const)('%s is recorded and is not a data event', (_label, dialect, text, data) => {
    expect(scan(dialect, [text])).toMatchObject({ errorData: data, dataEvents: 0, forwarded: text });
  });

  it('keeps the first error, after data events', () => {
    const s = scan(openai, [`data: {"choices":[]}\n\ndata: ${openaiError}\n\n`, 'event: error\ndata: {"error":"second"}\n\n']);
    expect(s).toMatchObject({ dataEvents: 1, errorData: openaiError });
  });

  it('an anthropic error-typed payload under another event name is data', () => {
    expect(scan(anthropic, [`event: content_block_delta\ndata: ${anthropicError}\n\n`])).toMatchObject({ dataEvents: 1, errorData: undefined });
  });
});

describe('usage', () => {
  it('reads the final OpenAI chunk\'s usage', () => {
    const s = new SseScanner(openai);
    s.push(OPENAI_CHAT);
    expect([s.inputTokens, s.outputTokens]).toEqual([9, 3]);
  });

  it('reads Anthropic message_start and message_delta, keeping the largest running totals', () => {
    const s = new SseScanner(anthropic);
    s.push(ANTHROPIC_MESSAGES);
    expect([s.inputTokens, s.outputTokens]).toEqual([25, 15]);
  });

  it('ignores usage it cannot parse', () => {
    const s = new SseScanner(openai);
    s.push('data: {"usage": not json}\n\n');
    expect([s.inputTokens, s.outputTokens, s.dataEvents]).toEqual([0, 0, 1]);
  });
});
