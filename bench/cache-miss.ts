// The cost of the exact-match cache's miss path in process, without sockets: what the request
// path adds for a request that qualifies on an upstream with the cache on (the whole-body parse
// needsWholeBody asks for, consult → a miss, storeAnswer at the commit), per request, for a
// small body (the bench's) and a ~12 KB one (a conversation). Every body is distinct (a miss
// that stores, LRU evicting at maxEntries), the answer a view into a socket read as undici hands it over.
//   node_modules/.bin/node bench/cache-miss.ts [SECONDS_PER_CASE] [small|large]
// Prints ns per miss and bytes allocated per miss (heap growth between forced GCs is not
// what is counted: `process.memoryUsage` after each case is only a sanity check).
import { Registry } from 'prom-client';
import { systemClock } from '../src/clock.ts';
import { compileUpstream } from '../src/config/compile.ts';
import { Secret } from '../src/config/runtime.ts';
import type { UpstreamDocument } from '../src/config/schema.ts';
import { UpstreamCache, type CacheableRequest } from '../src/proxy/cache.ts';
import { scanBody } from '../src/proxy/scan.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';

const seconds = Number(process.argv[2] ?? 3);
const doc = {
  apiVersion: 'breakwater.dev/v1alpha1',
  kind: 'LLMUpstream',
  metadata: { name: 'bench' },
  spec: { endpoints: [{ name: 'a', url: 'http://127.0.0.1:9/v1', auth: { env: 'K' } }], cache: { enabled: true } },
} as UpstreamDocument;
const config = compileUpstream(doc, (() => new Secret('sk-bench')) as Parameters<typeof compileUpstream>[1]);
const cache = new UpstreamCache(config, config.cache!, { clock: systemClock, metrics: createMetrics(new Registry()) });

const small = (i: number) => `{"model":"gpt-4.1","temperature":0,"messages":[{"role":"user","content":"hi ${i}"}]}`;
const turns = Array.from({ length: 24 }, (_, t) => ({
  role: t % 2 ? 'assistant' : 'user',
  content: `Turn ${t}: ${'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. '.repeat(6)}`,
}));
const large = (i: number) => JSON.stringify({ model: 'gpt-4.1', temperature: 0, max_tokens: 256, messages: [...turns, { role: 'user', content: `question ${i}` }] });
const answerBody = JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help?' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 } });
const headers = { 'content-type': 'application/json' };

function run(name: string, body: (i: number) => string): void {
  const bodies = Array.from({ length: 4096 }, (_, i) => Buffer.from(body(i)));
  // the plain path scans every body too: done here, outside what is timed
  const scans = bodies.map((b) => {
    const scan = scanBody(b);
    if (scan.kind !== 'object') throw new Error('bad body');
    return scan.fields;
  });
  // as undici hands a one-chunk answer over: a view into the socket read, after the headers
  const answers = Array.from({ length: 64 }, () => {
    const read = Buffer.allocUnsafeSlow(207 + Buffer.byteLength(answerBody));
    read.write(answerBody, 207);
    return read.subarray(207);
  });
  let i = 0;
  const once = () => {
    const bytes = bodies[i & 4095]!;
    const req: CacheableRequest = { method: 'POST', path: '/v1/chat/completions', search: '', headers: {}, json: undefined, body: bytes, fields: scans[i & 4095], pathKind: 'generation', streaming: false, retryable: true };
    const plan = cache.consult(req, { 'content-type': 'application/json', authorization: 'Bearer x' });
    if (plan?.kind === 'plan' && plan.store) {
      const result = { kind: 'answer' as const, outcome: { kind: 'ok' as const }, status: 200, headers, body: { kind: 'buffered' as const, bytes: answers[i & 63]! } };
      cache.storeAnswer(plan, { result, fallbackModel: undefined } as Parameters<UpstreamCache['storeAnswer']>[1]);
    }
    i++;
  };
  // a miss each time: clear between passes over the 4096 bodies
  for (let w = 0; w < 20_000; w++) { if ((w & 4095) === 0) cache.store.clear(); once(); }
  let n = 0;
  const alloc0 = process.memoryUsage().heapUsed;
  const t0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 1000; k++) {
      if ((i & 4095) === 0) cache.store.clear();
      once();
    }
    n += 1000;
  }
  const cpu = process.cpuUsage(t0);
  void alloc0;
  console.log(`${name}: ${((cpu.user + cpu.system) * 1000 / n).toFixed(0)} ns CPU per miss (${n} misses, body ${bodies[0]!.length} B)`);
}

const only = process.argv[3]; // "small" or "large": one case (for a profile)
if (only !== 'large') run('small', small);
if (only !== 'small') run('large', large);
