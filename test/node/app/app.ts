// The tiny app of the real-node tests (image localhost/breakwater-testapp): the official
// `openai` SDK calling OPENAI_BASE_URL (the Breakwater sidecar) in a loop, one JSON line per
// event on stdout so the tests read what happened from `kubectl logs`.
//
//   MODE=loop    a chat completion every INTERVAL_MS (default 500)
//   MODE=stream  one streamed chat completion after another; STREAM_EVENTS (default 10) events
//                with STREAM_DELAY_MS (default 500) before each, so a stream takes ~5 s
//                (the fake provider's x-fake-events / x-fake-delay-ms)
//
// On SIGTERM it starts nothing new, finishes the call in flight, logs `exiting` and exits 0:
// the graceful-stop test reads the order of `exiting` and the sidecar's shutdown line.
import OpenAI from 'openai';

const baseURL = process.env['OPENAI_BASE_URL'];
if (!baseURL) {
  console.error('OPENAI_BASE_URL is not set');
  process.exit(2);
}
const mode = process.env['MODE'] === 'stream' ? 'stream' : 'loop';
const intervalMs = Number(process.env['INTERVAL_MS'] ?? 500);
const streamEvents = Number(process.env['STREAM_EVENTS'] ?? 10);
const streamDelayMs = Number(process.env['STREAM_DELAY_MS'] ?? 500);
const model = process.env['MODEL'] ?? 'gpt-4o-mini';

// The SDK's own retries stay at their default: Breakwater's errors say x-should-retry: false.
const client = new OpenAI({ baseURL, apiKey: process.env['OPENAI_API_KEY'] ?? 'sk-app', timeout: 30_000 });

let stopping = false;
let seq = 0;
const log = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ at: new Date().toISOString(), event, ...fields }) + '\n');
};

process.on('SIGTERM', () => {
  log('sigterm');
  stopping = true;
});

async function once(): Promise<void> {
  const n = ++seq;
  const started = Date.now();
  try {
    if (mode === 'loop') {
      const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: `call ${n}` }] });
      log('call', { n, ok: true, ms: Date.now() - started, content: res.choices[0]?.message.content ?? '' });
      return;
    }
    log('stream-start', { n });
    const stream = await client.chat.completions.create(
      { model, stream: true, messages: [{ role: 'user', content: `stream ${n}` }] },
      { headers: { 'x-fake-events': String(streamEvents), 'x-fake-delay-ms': String(streamDelayMs) } },
    );
    let chunks = 0;
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    log('stream-end', { n, ok: true, ms: Date.now() - started, chunks, finish, chars: text.length });
  } catch (err) {
    const e = err as { status?: number; message?: string };
    log(mode === 'loop' ? 'call' : 'stream-end', { n, ok: false, ms: Date.now() - started, status: e.status ?? null, error: String(e.message ?? err) });
  }
}

log('started', { mode, baseURL });
while (!stopping) {
  await once();
  if (!stopping && mode === 'loop') await new Promise((r) => setTimeout(r, intervalMs));
}
log('exiting');
process.exit(0);
