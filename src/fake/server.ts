/**
 * Breakwater fake LLM provider: a real node:http server that speaks the OpenAI and
 * Anthropic wire formats (JSON and SSE) and injects faults on demand. Tests, the demo
 * (`breakwater fake --listen 127.0.0.1:8081 --name fake-a`) and the benchmarks use it.
 *
 * ROUTES (matched by path suffix, so any prefix works: /v1, /openai/v1, …)
 *   OpenAI    POST …/chat/completions   JSON, or SSE with `stream: true`
 *                                       (`stream_options.include_usage` adds the usage chunk)
 *             POST …/completions        legacy completions (JSON or SSE)
 *             POST …/embeddings         8-float vectors (base64 when `encoding_format: "base64"`)
 *             POST …/moderations        JSON
 *             POST …/responses          JSON, or Responses API SSE events with `stream: true`
 *             GET  …/models             model list (a shape both SDKs accept)
 *   Anthropic POST …/messages           JSON, or the exact Messages SSE format with `stream: true`
 *             POST …/messages/count_tokens
 *   Other     any other path            200 `{"id":"<object>_fake<n>","object":"<object>"}` after
 *                                       reading the body (e.g. POST …/files → object "file").
 *   Shared paths (models, other) answer errors in Anthropic's shape when the request has an
 *   `anthropic-version` header. Answers echo the request's `model`. A malformed JSON body
 *   gets 400 in the dialect's error shape. The whole body is always read before answering.
 *
 * REQUEST HEADERS (each wins over the matching field of a control-API rule)
 *   x-fake-fault: <spec>         fault for this request (see FAULTS)
 *   x-fake-events: N             content events per stream, and completion tokens (default 5)
 *   x-fake-delay-ms: N           pause before each content event, and before a JSON/error answer
 *   x-fake-retry-after: S        `retry-after: S` on error answers
 *   x-fake-retry-after-ms: MS    `retry-after-ms: MS` on error answers
 *   x-fake-gzip: 1 | force       gzip the answer (1: only if accept-encoding allows gzip);
 *                                SSE is sync-flushed after every event, so events arrive at once
 *   x-fake-lockstep: <id>        lockstep stream: content event k+1 is sent only after the k+1-th
 *                                `POST /_fake/ack/<id>` (early acks are counted, never lost).
 *                                Preamble events go out with event 0, the tail right after the
 *                                last content event. The response carries `x-fake-stream-id`.
 *   x-fake-stream-id: <id>       stream id for a rule with `lockstep: true` (default: request number)
 *
 * FAULTS (`x-fake-fault` value or rule `fault`)
 *   none                  normal answer
 *   429                   rate limit: OpenAI `rate_limit_exceeded` (type `requests`), Anthropic `rate_limit_error`
 *   429-quota             OpenAI 429 `insufficient_quota`; Anthropic 400 invalid_request_error
 *                         "Your credit balance is too low to access the Anthropic API…"
 *   400-context           OpenAI 400 `context_length_exceeded`; Anthropic 400 "prompt is too long…"
 *   500 502 503 504       dialect error body (OpenAI `server_error`, Anthropic `api_error`)
 *   529                   Anthropic `overloaded_error`; OpenAI paths: 529 `server_error`/`overloaded`
 *   status:NNN            (or bare NNN) any 400–599 status with the dialect's error body (400 invalid_request_error,
 *                         401 authentication_error / invalid_api_key, 403 permission_error,
 *                         404 not_found_error / model_not_found, 413 request_too_large, 422, …)
 *   hang                  read the request, never send headers (until the client or close() ends it)
 *   slow                  drip: stream events (or the JSON body in 5 pieces) with x-fake-delay-ms
 *                         (default 200) between them
 *   reset-before-headers  TCP reset, no response
 *   reset-after-headers   200 (+ SSE headers when streaming) flushed, then TCP reset
 *   reset-mid-stream      2 content events (JSON: half the body) then TCP reset
 *   stall                 2 content events (JSON: half the body) then silence, connection open
 *   no-terminal           full stream that ends cleanly without `[DONE]` / `message_stop` /
 *                         `response.completed` (JSON: normal answer)
 *   malformed-json        JSON: 200 application/json with a truncated body; SSE: the first event
 *                         is a data line with invalid JSON, then the normal stream
 *   empty-choices         chat `choices: []`, Anthropic `content: []`, embeddings `data: []`,
 *                         Responses `output: []` (streams: no content events)
 *   error-in-200          200 whose body is the dialect's error (`server_error` / `api_error`);
 *                         SSE: one error event (OpenAI `data: {"error":…}`, Responses `event: error`,
 *                         Anthropic `event: error` overloaded_error) and no terminal event
 *   comment-then-reset    SSE comment `: ping` then TCP reset (JSON: like reset-after-headers)
 *   error-after-start     SSE: the stream's opening events (Anthropic message_start...), then the
 *                         dialect's error event (Anthropic overloaded_error) and a clean end (JSON: like error-in-200)
 *   error-mid-stream      SSE: opening events and one content event, then the error event and a clean end
 *   endless-event         SSE: one `data:` line that never ends; JSON: a body that never ends. Sent as
 *                         fast as the client reads (up to 4 GiB), until the client closes
 *   endless-event-mid-stream  SSE: the stream's first events, then an event that never ends (JSON: like
 *                         endless-event)
 *   endless-comments      SSE: `: keep-alive` comment events and never a data event; JSON: endless
 *                         whitespace. As fast as the client reads, until it closes
 *   bare-cr               the normal stream with bare `\r` line endings (JSON: normal answer)
 *   gzip-bomb             gzip-encoded (whatever accept-encoding says) 1 MiB that inflates to 1 GiB:
 *                         SSE one endless `data:` line, JSON an endless string
 * Errors carry `retry-after` / `retry-after-ms` when the header or rule gives them.
 *
 * QUOTA (a provider-side rate limit, off until set; src/fake/quota.ts)
 *   A bucket of `requests` and/or `tokens` that refills continuously over `windowMs`. Every
 *   answer then carries the dialect's rate-limit headers (OpenAI x-ratelimit-limit/remaining/
 *   reset-requests|tokens, reset as "1.5s"; Anthropic anthropic-ratelimit-requests|tokens-limit/
 *   remaining/reset, reset as an RFC 3339 time). A request that does not fit gets a 429 in the
 *   dialect's rate-limit shape with retry-after-ms (recorded as fault `over-quota`) and is not
 *   charged; one that fits is charged 1 request and prompt (body bytes / 4) + its max_tokens
 *   (or its event count) tokens when it arrives.
 *
 * CONTROL API (JSON, not counted as provider requests)
 *   POST   /_fake/faults        body: one rule, `{ "rules": [rule, …] }` or `[rule, …]`; replaces the
 *                               rule list (first matching rule wins). A rule:
 *                               { fault, times?, model?, path?, retryAfter?, retryAfterMs?, delayMs?,
 *                                 gzip?, lockstep?, events? }
 *                               `times`: next N matching requests, then the rule is dropped;
 *                               `model`: exact body model; `path`: request path suffix.
 *                               A request's `x-fake-fault` header bypasses (and does not consume) rules.
 *   DELETE /_fake/faults        clear the rules
 *   GET    /_fake/faults        `{ rules }` (with remaining `times`)
 *   POST   /_fake/quota         body: { requests?, tokens?, windowMs } (a new, whole quota)
 *   DELETE /_fake/quota         no quota
 *   GET    /_fake/stats         FakeStats: { name, requests, byFault, byModel, byPath, inflight,
 *                               peakConcurrency, recent: [{method, path, model, fault, headers,
 *                               stream, streamId?, at}] } (last 200 requests)
 *   POST   /_fake/stats/reset   zero the counters (peakConcurrency restarts at current inflight)
 *   POST   /_fake/ack/<id>      acknowledge one lockstep event of stream <id>
 *   GET    /_fake/health        `{ ok: true, name }`
 * A request is in flight from arrival until its response finishes or its socket closes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { control } from './control.ts';
import { RuleSet, type FaultRule } from './faults.ts';
import { Quota, type QuotaSpec } from './quota.ts';
import { providerHandler } from './handler.ts';
import { Lockstep } from './lockstep.ts';
import { Stats, type FakeStats } from './stats.ts';

export type { FaultRule } from './faults.ts';
export type { QuotaSpec } from './quota.ts';
export type { FakeStats, FakeRequestRecord } from './stats.ts';
export { FAULT_NAMES } from './faults.ts';

export interface FakeOptions {
  host?: string;
  port?: number;
  name?: string;
}

export interface FakeProvider {
  /** e.g. http://127.0.0.1:PORT (no trailing slash) */
  url: string;
  port: number;
  name: string;
  /** Same data as GET /_fake/stats. */
  stats(): FakeStats;
  resetStats(): void;
  /** Replace the rule list with this one rule (null clears); same as the control API. */
  setFault(rule: FaultRule | null): void;
  /** Replace the rule list (first match wins). */
  setFaults(rules: FaultRule[]): void;
  /** A provider-side rate limit, whole from now (null: none); same as POST /_fake/quota. */
  setQuota(spec: QuotaSpec | null): void;
  /** Same as POST /_fake/ack/<id>. */
  ack(streamId: string): void;
  /** Closes the server and destroys open sockets (hung requests included). */
  close(): Promise<void>;
}

export function startFake(opts: FakeOptions = {}): Promise<FakeProvider> {
  const name = opts.name ?? 'fake';
  const stats = new Stats(name);
  const rules = new RuleSet();
  const lockstep = new Lockstep();
  const quota = new Quota();
  let counter = 0;

  const provider = providerHandler({ name, stats, rules, lockstep, quota, nextNumber: () => ++counter });

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const work = path.startsWith('/_fake/')
      ? control(req, res, path, { rules, stats, lockstep, quota })
      : provider(req, res, path);
    work.catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `fake provider bug: ${String(err)}`, type: 'server_error' } }));
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 30_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      let closing: Promise<void> | null = null;
      resolve({
        url: `http://${host}:${addr.port}`,
        port: addr.port,
        name,
        stats: () => stats.snapshot(),
        resetStats: () => stats.reset(),
        setFault: (rule) => (rule === null ? rules.clear() : rules.replace([rule])),
        setFaults: (list) => rules.replace(list),
        setQuota: (spec) => quota.set(spec),
        ack: (id) => lockstep.ack(id),
        close: () => {
          closing ??= new Promise<void>((done) => {
            server.close(async () => {
              // Let the destroyed responses emit 'close' so stats settle before we resolve.
              for (let i = 0; i < 100 && stats.inflightNow() > 0; i++) await new Promise((r) => setImmediate(r));
              done();
            });
            server.closeAllConnections();
            lockstep.releaseAll();
          });
          return closing;
        },
      });
    });
  });
}

function parseListen(v: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  if (i < 0) throw new Error(`--listen wants HOST:PORT, got "${v}"`);
  const host = v.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(v.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port in --listen "${v}"`);
  return { host, port };
}

/**
 * `breakwater fake [--listen HOST:PORT] [--name NAME]`: start a fake provider, log one JSON
 * line with its url, close on SIGTERM/SIGINT. Resolves once it has closed.
 */
export async function fakeCli(argv: string[]): Promise<void> {
  let listen = '127.0.0.1:8081';
  let name = 'fake';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--listen') listen = value();
    else if (flag === '--name') name = value();
    else throw new Error(`unknown flag for breakwater fake: ${arg}`);
  }
  const { host, port } = parseListen(listen);
  const fake = await startFake({ host, port, name });
  process.stdout.write(JSON.stringify({ level: 'info', msg: 'fake provider listening', name, url: fake.url }) + '\n');
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void fake.close().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
