// A micro-benchmark of the check of a 2xx JSON answer alone (src/proxy/classify.ts): CPU time
// (and bytes allocated) per answer of the whole parse (classifyJsonBody: toString, JSON.parse, the dialect's checks and
// usage) next to the walk over the bytes (classifyJsonAnswer, src/proxy/json-view.ts), on the
// fake provider's small chat answer (the `make bench` workload), OpenAI's pretty-printed shape,
// longer answers and an Anthropic message. For before/after comparisons; `make bench` measures
// the whole proxy.
//
//   node_modules/.bin/node bench/answer.ts [--rounds 7] [--reps 20000]
import { parseArgs } from 'node:util';
import { classifyJsonAnswer, classifyJsonBody } from '../src/proxy/classify.ts';
import { anthropic } from '../src/proxy/dialects/anthropic.ts';
import { openai } from '../src/proxy/dialects/openai.ts';
import type { DialectRules } from '../src/proxy/dialects/types.ts';
import { bytesPerCall } from './lib/alloc.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, reps: { type: 'string', default: '20000' } } });
const ROUNDS = Number(values.rounds);
const REPS = Number(values.reps);
const CHECKS = { emptyChoices: true, errorInBody: true };

const chat = (words: number, indent?: number): Buffer =>
  Buffer.from(
    JSON.stringify(
      {
        id: 'chatcmpl-fake1',
        object: 'chat.completion',
        created: 1732960000,
        model: 'gpt-4.1-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: Array.from({ length: words }, (_, i) => `wörd${i}`).join(' '), refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: words, total_tokens: 9 + words, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
        service_tier: 'default',
        system_fingerprint: null,
      },
      null,
      indent,
    ),
  );
const message = (words: number): Buffer =>
  Buffer.from(
    JSON.stringify({
      id: 'msg_fake1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [{ type: 'text', text: Array.from({ length: words }, (_, i) => `word${i}`).join(' ') }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: words, service_tier: 'standard' },
    }),
  );

const WORKLOADS: [string, DialectRules, Buffer][] = [
  ['openai chat, 5 words (the fake)', openai, chat(5)],
  ['openai chat, 5 words, pretty-printed', openai, chat(5, 2)],
  ['openai chat, 200 words', openai, chat(200)],
  ['openai chat, 5000 words', openai, chat(5000)],
  ['anthropic message, 5 words', anthropic, message(5)],
];

const WAYS: [string, (dialect: DialectRules, bytes: Buffer) => unknown][] = [
  ['whole parse', (dialect, bytes) => {
    const { outcome, body } = classifyJsonBody(dialect, bytes.toString('utf8'), CHECKS, 'generation');
    return outcome.kind === 'ok' ? dialect.readUsage(body) : undefined;
  }],
  ['walk', (dialect, bytes) => classifyJsonAnswer(dialect, bytes, CHECKS, 'generation').usage],
];

function round(way: (dialect: DialectRules, bytes: Buffer) => unknown, dialect: DialectRules, bytes: Buffer, reps: number): number {
  const started = process.cpuUsage();
  for (let r = 0; r < reps; r++) if (way(dialect, bytes) === undefined) throw new Error('no usage');
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / reps; // CPU time, not wall time: the machine may be shared
}

for (const [name, dialect, bytes] of WORKLOADS) {
  const reps = Math.max(200, Math.round((REPS * 600) / bytes.length));
  const cells: string[] = [];
  for (const [wayName, way] of WAYS) {
    round(way, dialect, bytes, reps); // warm-up
    const ns = Array.from({ length: ROUNDS }, () => round(way, dialect, bytes, reps)).sort((a, b) => a - b);
    const allocated = await bytesPerCall(() => way(dialect, bytes), Math.min(reps, 5000));
    cells.push(`${wayName} ${(ns[ROUNDS >> 1]! / 1000).toFixed(2)} µs, ${(allocated / 1024).toFixed(2)} KB`);
  }
  console.log(`${name} (${bytes.length} B): ${cells.join(', ')}`);
}
