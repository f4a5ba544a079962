// A micro-benchmark of the SSE scanner alone (src/proxy/stream.ts): CPU time (and bytes allocated) per relayed event
// for a 50-event OpenAI chat stream, one event per chunk (as tokens arrive) and the whole stream
// in one chunk (a fast replay), and Anthropic's event/data lines with \n and with \r\n. For
// before/after comparisons of the scanner; `make bench` measures the whole proxy.
//
//   node_modules/.bin/node bench/scanner.ts [--rounds 7] [--reps 20000]
import { parseArgs } from 'node:util';
import { anthropic } from '../src/proxy/dialects/anthropic.ts';
import { openai } from '../src/proxy/dialects/openai.ts';
import type { DialectRules } from '../src/proxy/dialects/types.ts';
import { SseScanner } from '../src/proxy/stream.ts';
import { bytesPerCall } from './lib/alloc.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, reps: { type: 'string', default: '20000' } } });
const ROUNDS = Number(values.rounds);
const REPS = Number(values.reps);
const EVENTS = 50;

const chat = (i: number): string =>
  `data: {"id":"chatcmpl-AbCdEf0123456789","object":"chat.completion.chunk","created":1732960000,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"content":" word${i}"},"finish_reason":null}]}\n\n`;
const message = (i: number): string =>
  `event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word${i}"}}\r\n\r\n`;

const openaiEvents = [...Array.from({ length: EVENTS }, (_, i) => chat(i)), 'data: [DONE]\n\n'].map((e) => Buffer.from(e));
const anthropicEvents = [...Array.from({ length: EVENTS }, (_, i) => message(i)), 'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'].map((e) => Buffer.from(e));

const lf = (events: Buffer[]): Buffer[] => events.map((e) => Buffer.from(e.toString().replaceAll('\r\n', '\n')));

const WORKLOADS: [string, DialectRules, Buffer[]][] = [
  ['openai, one event per chunk', openai, openaiEvents],
  ['openai, whole stream in one chunk', openai, [Buffer.concat(openaiEvents)]],
  ['anthropic (LF, as the API sends), one event per chunk', anthropic, lf(anthropicEvents)],
  ['anthropic (CRLF), one event per chunk', anthropic, anthropicEvents],
];

function round(dialect: DialectRules, chunks: Buffer[]): number {
  const started = process.cpuUsage();
  for (let r = 0; r < REPS; r++) {
    const scanner = new SseScanner(dialect);
    for (const chunk of chunks) if (!Buffer.isBuffer(scanner.push(chunk))) throw new Error('overflow');
    if (!scanner.sawTerminal) throw new Error('no terminal event');
  }
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / (REPS * (EVENTS + 1)); // CPU time, not wall time: the machine may be shared
}

for (const [name, dialect, chunks] of WORKLOADS) {
  round(dialect, chunks); // warm-up
  const ns = Array.from({ length: ROUNDS }, () => round(dialect, chunks)).sort((a, b) => a - b);
  const allocated = await bytesPerCall(() => {
    const scanner = new SseScanner(dialect);
    for (const chunk of chunks) scanner.push(chunk);
  }, 2000);
  console.log(`${name}: median ${ns[ROUNDS >> 1]!.toFixed(0)} ns/event (min ${ns[0]!.toFixed(0)}, max ${ns.at(-1)!.toFixed(0)}), ${(allocated / (EVENTS + 1)).toFixed(0)} bytes allocated/event`);
}
