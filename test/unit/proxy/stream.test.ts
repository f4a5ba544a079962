// SseScanner: whole events only, at any chunking (bytes, CRLF halves, multi-byte characters) and
// any line ending (\n, \r\n, bare \r); comments and pings never commit; terminal and error
// events per dialect; usage totals; each byte looked at once; one event and what comes before
// the commit point bounded.
import { describe, expect, it } from 'vitest';
import { anthropic } from '../../../src/proxy/dialects/anthropic.ts';
import { openai } from '../../../src/proxy/dialects/openai.ts';
import type { DialectRules } from '../../../src/proxy/dialects/types.ts';
import { MAX_EVENT_BYTES, MAX_PRECOMMIT_BYTES, SseScanner, type SseLimits, type SseOverflow } from '../../../src/proxy/stream.ts';

interface Scan {
  forwarded: string;
  dataEvents: number;
  sawTerminal: boolean;
  errorData: string | undefined;
  pending: number;
}

/** the events push() returned (it fails the test on an overflow) */
function events(out: Buffer | SseOverflow): Buffer {
  if (!Buffer.isBuffer(out)) throw new Error(`unexpected overflow: ${JSON.stringify(out)}`);
  return out;
}

function scan(dialect: DialectRules, chunks: readonly (string | Uint8Array)[]): Scan {
  const s = new SseScanner(dialect);
  const forwarded: Buffer[] = [];
  for (const chunk of chunks) forwarded.push(events(s.push(Buffer.from(chunk))));
  return { forwarded: Buffer.concat(forwarded).toString(), dataEvents: s.dataEvents, sawTerminal: s.sawTerminal, errorData: s.errorData, pending: s.pendingLength };
}

const bytesOf = (text: string): Buffer => Buffer.from(text);

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

  it('split at every pair of byte positions gives the same result', () => {
    const bytes = bytesOf(text);
    const step = Math.max(1, Math.floor(bytes.length / 120));
    for (let i = 0; i <= bytes.length; i += step) {
      for (let j = i; j <= bytes.length; j++) {
        expect(scan(dialect, [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]), `split at ${i}, ${j}`).toEqual(whole);
      }
    }
  });

  it('split at every byte position (inside multi-byte characters too) gives the same result', () => {
    const bytes = bytesOf(text);
    expect(bytes.length).toBeGreaterThan(text.length); // the sample has multi-byte characters
    for (let i = 0; i <= bytes.length; i++) expect(scan(dialect, [bytes.subarray(0, i), bytes.subarray(i)]), `split at byte ${i}`).toEqual(whole);
  });

  it('one byte at a time gives the same result', () => {
    const bytes = bytesOf(text);
    expect(scan(dialect, Array.from(bytes, (_b, i) => bytes.subarray(i, i + 1)))).toEqual(whole);
  });

  it('push() returns only whole events, holding back a partial one', () => {
    const bytes = bytesOf(text);
    const cut = bytes.length - 5;
    const s = new SseScanner(dialect);
    const out = events(s.push(bytes.subarray(0, cut)));
    expect(bytes.subarray(0, out.length).equals(out)).toBe(true);
    expect(out.toString()).toMatch(/\r?\n\r?\n$/);
    expect(s.pendingLength).toBe(cut - out.length);
    expect(s.sawTerminal).toBe(false);
    expect(events(s.push(bytes.subarray(cut))).equals(bytes.subarray(out.length))).toBe(true);
    expect(s.pendingLength).toBe(0);
  });

  it('the same stream with bare \\r, \\n or \\r\\n line endings gives the same events', () => {
    for (const eol of ['\r', '\n', '\r\n']) {
      const converted = text.replace(/\r?\n/g, eol);
      const bytes = bytesOf(converted);
      const expected = { ...whole, forwarded: converted };
      expect(scan(dialect, [converted]), JSON.stringify(eol)).toEqual(expected);
      for (let i = 0; i <= bytes.length; i++) expect(scan(dialect, [bytes.subarray(0, i), bytes.subarray(i)]), `${JSON.stringify(eol)} split at byte ${i}`).toEqual(expected);
    }
  });
});

describe('line endings', () => {
  it('finds a boundary split between \\r and \\n, at either line ending', () => {
    for (const [a, b] of [
      ['data: [DONE]\r', '\n\r\n'],
      ['data: [DONE]\r\n', '\r\n'],
    ]) {
      const s = new SseScanner(openai);
      expect(events(s.push(bytesOf(a!))).toString()).toBe('');
      expect(events(s.push(bytesOf(b!))).toString()).toBe(a! + b!);
      expect(s.sawTerminal).toBe(true);
    }
  });

  it('a bare \\r ends the event at once; a \\n after it in the next chunk is forwarded at once, not held', () => {
    // (changed with bare-CR support: a \r that may be half of a \r\n no longer waits for the next chunk)
    const s = new SseScanner(openai);
    expect(events(s.push(bytesOf('data: [DONE]\r\n\r'))).toString()).toBe('data: [DONE]\r\n\r');
    expect(s.sawTerminal).toBe(true);
    expect(events(s.push(bytesOf('\n'))).toString()).toBe('\n');
    expect(s.pendingLength).toBe(0);
  });

  it('a \\r\\n split across chunks is one line ending, not a \\r line and an empty \\n line', () => {
    const s = new SseScanner(openai);
    s.push(bytesOf('data: {"a":1}\r'));
    expect(events(s.push(bytesOf('\ndata: {"b":2}\r\n\r\n'))).toString()).toBe('data: {"a":1}\r\ndata: {"b":2}\r\n\r\n');
    expect(s.dataEvents).toBe(1); // one event with two data lines
  });

  it('accepts mixed line endings', () => {
    expect(scan(openai, ['data: {"a":1}\r\n\ndata: {"b":2}\n\r\ndata: {"c":3}\r\rdata: {"d":4}\r\n\r'])).toMatchObject({ dataEvents: 4, pending: 0 });
  });

  it('\\n\\r is two line endings (an event boundary), \\r\\n one', () => {
    expect(scan(openai, ['data: {"a":1}\n\r'])).toMatchObject({ dataEvents: 1, pending: 0 });
    expect(scan(openai, ['data: {"a":1}\r\n'])).toMatchObject({ dataEvents: 0, pending: 15 });
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
      expect(events(s.push(bytesOf(text))).toString()).toBe(text); // still forwarded
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
    s.push(bytesOf(OPENAI_CHAT));
    expect([s.inputTokens, s.outputTokens]).toEqual([9, 3]);
  });

  it('reads Anthropic message_start and message_delta, keeping the largest running totals', () => {
    const s = new SseScanner(anthropic);
    s.push(bytesOf(ANTHROPIC_MESSAGES));
    expect([s.inputTokens, s.outputTokens]).toEqual([25, 15]);
  });

  it('ignores usage it cannot parse', () => {
    const s = new SseScanner(openai);
    s.push(bytesOf('data: {"usage": not json}\n\n'));
    expect([s.inputTokens, s.outputTokens, s.dataEvents]).toEqual([0, 0, 1]);
  });
});

describe('bytes, not copies', () => {
  it('whole events in one chunk come back as a slice of that chunk', () => {
    const chunk = bytesOf('data: {"a":1}\n\ndata: {"b"');
    const out = events(new SseScanner(openai).push(chunk));
    expect(out.toString()).toBe('data: {"a":1}\n\n');
    expect(out.buffer).toBe(chunk.buffer);
  });
});

describe('each byte is looked at once', () => {
  it('a long event fed in small chunks is scanned linearly: the searches go over each byte at most twice', () => {
    const s = new SseScanner(openai);
    const piece = bytesOf('x'.repeat(16));
    let pushed = 0;
    expect(events(s.push(bytesOf('data: "'))).length).toBe(0);
    pushed += 7;
    for (let i = 0; i < 64 * 1024; i++) {
      expect(events(s.push(piece)).length).toBe(0);
      pushed += piece.length;
    }
    const tail = bytesOf('"\n\n');
    expect(events(s.push(tail)).length).toBe(pushed + tail.length);
    pushed += tail.length;
    expect(s.dataEvents).toBe(1);
    expect(s.bytesScanned).toBeGreaterThanOrEqual(pushed);
    expect(s.bytesScanned).toBeLessThanOrEqual(2 * pushed); // rescanning the pending 1 MiB per chunk would be ~64 Gi
  });

  it('many events per chunk: still at most twice each byte', () => {
    const s = new SseScanner(openai);
    const chunk = bytesOf('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'.repeat(500));
    for (let i = 0; i < 20; i++) events(s.push(chunk));
    expect(s.dataEvents).toBe(10_000);
    expect(s.bytesScanned).toBeLessThanOrEqual(2 * 20 * chunk.length);
  });

  it('an 8 MiB event fed 64 bytes at a time finishes (a hang guard, not a benchmark)', () => {
    const s = new SseScanner(openai);
    const piece = bytesOf('y'.repeat(64));
    const started = performance.now();
    s.push(bytesOf('data: "'));
    for (let i = 0; i < (MAX_EVENT_BYTES - 64) / 64; i++) events(s.push(piece));
    expect(events(s.push(bytesOf('"\n\n'))).length).toBeGreaterThan(MAX_EVENT_BYTES - 64);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});

describe('limits', () => {
  const small: SseLimits = { eventBytes: 64, precommitBytes: 32 };
  const overflowOf = (s: SseScanner, chunks: readonly string[]): SseOverflow | undefined => {
    for (const c of chunks) {
      const out = s.push(bytesOf(c));
      if (!Buffer.isBuffer(out)) return out;
    }
    return undefined;
  };
  /** the same chunks, whole and byte by byte: the verdict does not depend on the chunking */
  const verdicts = (chunks: readonly string[], limits = small): (SseOverflow | undefined)[] => {
    const text = chunks.join('');
    return [overflowOf(new SseScanner(openai, limits), chunks), overflowOf(new SseScanner(openai, limits), [text]), overflowOf(new SseScanner(openai, limits), [...text])];
  };
  const eventOverflow = { kind: 'overflow', limit: 'event', bytes: 64 };
  const precommitOverflow = { kind: 'overflow', limit: 'precommit', bytes: 32 };
  const data = (size: number): string => `data: ${'a'.repeat(size - 8)}\n\n`; // an event of `size` bytes

  it('are 8 MiB per event and 1 MiB before the commit by default', () => {
    expect([MAX_EVENT_BYTES, MAX_PRECOMMIT_BYTES]).toEqual([8 * 1024 * 1024, 1024 * 1024]);
  });

  it('an event of exactly the limit passes; one byte more is an overflow, however it is chunked', () => {
    expect(verdicts([data(64)])).toEqual([undefined, undefined, undefined]);
    expect(verdicts([data(65)])).toEqual([eventOverflow, eventOverflow, eventOverflow]);
    expect(verdicts(['data: {"first":1}\n\n', data(65)])).toEqual([eventOverflow, eventOverflow, eventOverflow]);
  });

  it('an event that never ends is cut once it passes the limit, without waiting for its end', () => {
    const s = new SseScanner(openai, small);
    expect(events(s.push(bytesOf('data: {"first":1}\n\n'))).length).toBe(19);
    expect(events(s.push(bytesOf(`data: ${'a'.repeat(58)}`))).length).toBe(0); // 64 bytes: still within
    expect(s.push(bytesOf('a'))).toEqual(eventOverflow);
  });

  it('the default event limit cuts an endless event within one chunk past 8 MiB', () => {
    const s = new SseScanner(openai);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let pushed = 0;
    let out = s.push(bytesOf('data: '));
    while (Buffer.isBuffer(out)) {
      pushed += chunk.length;
      out = s.push(chunk);
    }
    expect(out).toEqual({ kind: 'overflow', limit: 'event', bytes: MAX_EVENT_BYTES });
    expect(pushed).toBeGreaterThan(MAX_EVENT_BYTES - chunk.length);
    expect(pushed).toBeLessThanOrEqual(MAX_EVENT_BYTES + chunk.length);
  });

  it('after an overflow nothing is held and every push answers the same overflow', () => {
    const s = new SseScanner(openai, small);
    const first = s.push(bytesOf(data(100)));
    expect(first).toEqual(eventOverflow);
    expect(s.pendingLength).toBe(0);
    expect(s.push(bytesOf('data: [DONE]\n\n'))).toBe(first);
    expect(s.sawTerminal).toBe(false);
  });

  it('comment events before the first data event count against the pre-commit limit', () => {
    const pings = Array.from({ length: 4 }, () => ': keep-alive\n\n'); // 14 bytes each
    expect(verdicts([...pings.slice(0, 2), 'data: {}\n\n'])).toEqual([undefined, undefined, undefined]); // 28 bytes
    expect(verdicts([...pings.slice(0, 3), 'data: {}\n\n'])).toEqual([precommitOverflow, precommitOverflow, precommitOverflow]); // 42
  });

  it('comment lines that never end their event count too, long before the event limit', () => {
    const s = new SseScanner(openai, small);
    expect(overflowOf(s, [': 1\n', ': 2\n', ': 3\n', ': 4\n', ': 5\n', ': 6\n', ': 7\n', ': 8\n', ': 9\n'])).toEqual(precommitOverflow);
  });

  it('pings and events without data count; what precedes the first data line of the committing event counts', () => {
    expect(verdicts(['event: ping\ndata: {"type":"ping"}\n\n', 'data: {}\n\n'])).toEqual([precommitOverflow, precommitOverflow, precommitOverflow]);
    expect(verdicts([`: ${'c'.repeat(30)}\ndata: {}\n\n`])).toEqual([precommitOverflow, precommitOverflow, precommitOverflow]); // 33 bytes before the data line
    expect(verdicts([`: ${'c'.repeat(29)}\ndata: {}\n\n`])).toEqual([undefined, undefined, undefined]); // 32
  });

  it('a large first data event is bounded by the event limit, not the pre-commit limit', () => {
    expect(verdicts([`event: message_start\n${data(40)}`])).toEqual([undefined, undefined, undefined]);
  });

  it('after the commit, comments no longer count', () => {
    const pings = Array.from({ length: 10 }, () => ': keep-alive\n\n');
    expect(verdicts(['data: {}\n\n', ...pings, 'data: [DONE]\n\n'])).toEqual([undefined, undefined, undefined]);
  });

  it('an error event commits too (it ends the pre-commit phase)', () => {
    const s = new SseScanner(openai, small);
    expect(s.committed).toBe(false);
    events(s.push(bytesOf('event: error\ndata: {"error":{}}\n\n')));
    expect(s.committed).toBe(true);
    expect(overflowOf(s, [': keep-alive\n\n', ': keep-alive\n\n', ': keep-alive\n\n'])).toBeUndefined();
  });
});

describe('event data stays bytes: decoded only for an error or a usage object (issue 11)', () => {
  interface Read {
    dataEvents: number;
    sawTerminal: boolean;
    errorData: string | undefined;
    tokens: [number, number];
    decoded: number;
  }
  const read = (dialect: DialectRules, chunks: readonly (string | Buffer)[]): Read => {
    const s = new SseScanner(dialect);
    for (const chunk of chunks) events(s.push(Buffer.from(chunk)));
    return { dataEvents: s.dataEvents, sawTerminal: s.sawTerminal, errorData: s.errorData, tokens: [s.inputTokens, s.outputTokens], decoded: s.dataDecoded };
  };
  /** the same text cut at every byte (inside multi-byte characters and inside "usage":{ too) */
  const everySplit = (dialect: DialectRules, text: string, expected: Read): void => {
    const bytes = bytesOf(text);
    for (let i = 0; i <= bytes.length; i++) expect(read(dialect, [bytes.subarray(0, i), bytes.subarray(i)]), `split at byte ${i}`).toEqual(expected);
  };

  it('an OpenAI stream decodes only its final chunk, the one with usage, at any split', () => {
    const expected: Read = { dataEvents: 5, sawTerminal: true, errorData: undefined, tokens: [9, 3], decoded: 1 };
    expect(read(openai, [OPENAI_CHAT])).toEqual(expected);
    everySplit(openai, OPENAI_CHAT, expected);
  });

  it('an Anthropic stream (CRLF) decodes only message_start and message_delta, which carry usage, at any split', () => {
    const expected: Read = { dataEvents: 4, sawTerminal: true, errorData: undefined, tokens: [25, 15], decoded: 2 };
    expect(read(anthropic, [ANTHROPIC_MESSAGES])).toEqual(expected);
    everySplit(anthropic, ANTHROPIC_MESSAGES, expected);
    everySplit(anthropic, ANTHROPIC_MESSAGES.replaceAll('\r\n', '\n'), expected);
  });

  it('usage in the final chunk is read with data: without a space, with CRLF and with a bare CR', () => {
    const usage = '{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}';
    for (const eol of ['\n', '\r\n', '\r']) {
      expect(read(openai, [`data:${usage}${eol}${eol}data:[DONE]${eol}${eol}`]), JSON.stringify(eol)).toEqual({ dataEvents: 2, sawTerminal: true, errorData: undefined, tokens: [7, 2], decoded: 1 });
    }
    const delta = '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}';
    expect(read(anthropic, [`event:message_delta\r\ndata:${delta}\r\n\r\nevent:message_stop\r\ndata:{"type":"message_stop"}\r\n\r\n`])).toEqual({ dataEvents: 2, sawTerminal: true, errorData: undefined, tokens: [0, 15], decoded: 1 });
  });

  it('"usage":null in every chunk is never decoded', () => {
    const chunk = 'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n';
    expect(read(openai, [chunk.repeat(20), 'data: [DONE]\n\n'])).toEqual({ dataEvents: 21, sawTerminal: true, errorData: undefined, tokens: [0, 0], decoded: 0 });
  });

  it('only the first data line of a multi-line event is read, as before: [DONE] first ends the stream, usage on a later line is not read', () => {
    expect(read(openai, ['data: [DONE]\ndata: more\n\n'])).toMatchObject({ sawTerminal: true, decoded: 0 });
    expect(read(openai, ['data: more\ndata: [DONE]\n\n'])).toMatchObject({ sawTerminal: false });
    expect(read(openai, ['data: {"choices":[],\ndata: "usage":{"prompt_tokens":4,"completion_tokens":1}}\n\n'])).toMatchObject({ tokens: [0, 0], decoded: 0 });
    expect(read(openai, ['data: {"usage":{"prompt_tokens":4,"completion_tokens":1}}\ndata: \n\n'])).toMatchObject({ tokens: [4, 1], decoded: 1 });
  });

  it('an error event is decoded whole, multi-byte characters included, at any split', () => {
    const error = '{"error":{"message":"Überlastet ✨","type":"server_error","param":null,"code":null}}';
    const text = `data: {"choices":[]}\n\ndata:${error}\r\n\r\n`;
    everySplit(openai, text, { dataEvents: 1, sawTerminal: false, errorData: error, tokens: [0, 0], decoded: 1 });
    const anthropicError = '{"type":"error","error":{"type":"overloaded_error","message":"Überlastet"}}';
    everySplit(anthropic, `event: error\ndata: ${anthropicError}\n\n`, { dataEvents: 0, sawTerminal: false, errorData: anthropicError, tokens: [0, 0], decoded: 1 });
  });

  it('[DONE] is the terminal event only as the whole data', () => {
    expect(read(openai, ['data: [DONE]\n\n']).sawTerminal).toBe(true);
    expect(read(openai, ['data:[DONE]\r\n\r\n']).sawTerminal).toBe(true);
    expect(read(openai, ['data: [DONE] \n\n']).sawTerminal).toBe(false);
    expect(read(openai, ['data: [DONE]x\n\n']).sawTerminal).toBe(false);
    expect(read(openai, ['data: [DON\n\n']).sawTerminal).toBe(false);
  });

  it('event names come from a cache of the last one, which never answers for different bytes', () => {
    const s = new SseScanner(anthropic);
    const event = (name: string): string => `event: ${name}\ndata: {}\n\n`;
    // message_start does not commit; the same length with one byte changed does
    events(s.push(bytesOf(event('message_start') + event('message_start') + event('message_stars'))));
    expect(s.dataEvents).toBe(1);
    // a name too long to keep, then names of other lengths
    events(s.push(bytesOf(event('x'.repeat(100)) + event('message_start') + event('') + event('message_start'))));
    expect(s.dataEvents).toBe(3);
    events(s.push(bytesOf('event: message_stop\ndata: {}\n\n')));
    expect(s.sawTerminal).toBe(true);
  });
});
