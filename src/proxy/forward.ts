// One attempt against one endpoint, up to the commit point: send the request, wait for the
// headers, and read far enough to know the answer is real (a whole JSON body, or a stream's
// first content event). Nothing is written to the app here, so any failure can still fail
// over. The Attempt handle owns the attempt's bookkeeping from admission to settle().
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import type { Clock } from '../clock.ts';
import type { EndpointConfig, TimeoutsConfig } from '../config/runtime.ts';
import type { Ticket } from './breaker.ts';
import { classifyBodyError, classifyHttpError, classifyJsonBody, classifySseOverflow, classifyStreamError, classifyTransport, type AbortCause } from './classify.ts';
import type { DialectRules, PathKind, Usage } from './dialects/types.ts';
import type { EndpointRuntime } from './endpoint.ts';
import type { Outcome } from './outcome.ts';
import type { Reservation } from './ratelimit.ts';
import { SseScanner } from './stream.ts';
import { codingOf, collect, Exchange, type Coding } from './wire.ts';

export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

export interface AttemptRequest {
  method: string;
  /** path after the upstream prefix, starting with '/' */
  path: string;
  /** '' or '?a=b' */
  search: string;
  /** the app's headers, filtered (no hop-by-hop, no credentials) */
  headers: Record<string, string | string[]>;
  body: Buffer | Readable | undefined;
  deadline: number;
  appSignal: AbortSignal;
  timeouts: TimeoutsConfig;
  dialect: DialectRules;
  validate: { emptyChoices: boolean; errorInBody: boolean };
  pathKind: PathKind;
  /** the app asked for a stream (`"stream": true`) */
  streaming: boolean;
}

export type ResponseBody =
  | { kind: 'buffered'; bytes: Buffer; usage?: Usage | undefined }
  /** the rest of the stream is still on the exchange, paused until the relay attaches */
  | { kind: 'sse'; first: Buffer; scanner: SseScanner; exchange: Exchange; coding: Coding | undefined }
  | { kind: 'raw'; exchange: Exchange; coding: Coding | undefined };

export type AttemptResult =
  | { kind: 'answer'; outcome: Outcome; status: number; headers: IncomingHttpHeaders; body: ResponseBody }
  | { kind: 'failed'; outcome: Outcome; response: { status: number; headers: IncomingHttpHeaders; bytes: Buffer } | undefined };

export interface AttemptContext {
  requestId: string;
  retry: { maxRetryAfterMs: number; respectRetryAfter: boolean };
}

/**
 * One attempt on one endpoint: its in-flight count, its one timer and its exchange on the wire
 * (kept alive past the commit for streams), and settle(), which records the outcome on the
 * endpoint exactly once and releases everything, whatever threw in between. Whoever holds the
 * handle last settles it: the loop for a failure, commit for an answer.
 *
 * One timer per attempt serves both the current phase (firstByte, response, idle) and the
 * request's deadline: it is armed for whichever comes first, so the deadline needs no timer of
 * its own, and a phase that would outlast the deadline is cut at the deadline.
 */
export class Attempt {
  readonly endpoint: EndpointRuntime;
  readonly ticket: Ticket;
  /** the model this attempt asked for (the fallback's, when it is one) */
  readonly model: string | undefined;
  /** the endpoint's config in the request's snapshot: url, key, headers (a reload mid-request changes none) */
  readonly config: EndpointConfig;
  /** the request on the wire; set by forward() */
  exchange: Exchange | undefined;
  cause: AbortCause | undefined;
  /** its share of the endpoint's rate limits (set by the loop after admission), settled with it */
  reservation: Reservation | undefined;
  /** tokens the provider reported for it (input + output), once known */
  #usedTokens: number | undefined;
  #settled = false;
  #ctx: AttemptContext;
  #clock: Clock;
  #deadlineAt: number;
  /** the one timer; it fires at #fireAt, at or before the earliest due time, and re-checks then */
  #timer: NodeJS.Timeout | undefined;
  #fireAt = Infinity;
  /** the phase running (undefined: only the deadline), its length and when it ends */
  #phase: 'firstByte' | 'response' | 'idle' | undefined;
  #phaseMs = 0;
  #phaseDue = Infinity;
  #appSignal: AbortSignal;
  #onAppAbort = () => this.abort({ kind: 'cancelled', reason: 'client_disconnected' });
  #onTimer = () => this.#fired();

  constructor(
    endpoint: EndpointRuntime,
    config: EndpointConfig,
    ticket: Ticket,
    model: string | undefined,
    ctx: AttemptContext,
    clock: Clock,
    deadline: number,
    appSignal: AbortSignal,
  ) {
    this.endpoint = endpoint;
    this.config = config;
    this.ticket = ticket;
    this.model = model;
    this.#ctx = ctx;
    this.#clock = clock;
    this.#appSignal = appSignal;
    this.#deadlineAt = deadline;
    endpoint.inflight++;
    endpoint.inflightGauge.inc();
    // no timer yet: forward() arms the first phase at once (or disarms, leaving the deadline)
    appSignal.addEventListener('abort', this.#onAppAbort, { once: true });
    if (appSignal.aborted) this.#onAppAbort();
  }

  get settled(): boolean {
    return this.#settled;
  }

  get aborted(): boolean {
    return this.cause !== undefined;
  }

  /** starts (or replaces) the current phase; the deadline still applies */
  arm(phase: 'firstByte' | 'response' | 'idle', ms: number): void {
    this.#phase = phase;
    this.#phaseMs = ms;
    this.#phaseDue = this.#clock.now() + ms;
    this.#schedule();
  }

  /**
   * pushes the current phase's end back (a stream event arrived): a field write, no timer call;
   * the timer, due earlier, finds the phase moved and waits again
   */
  touch(): void {
    if (this.#phase !== undefined) this.#phaseDue = this.#clock.now() + this.#phaseMs;
  }

  /** no phase runs (the app is not reading): only the deadline applies */
  disarm(): void {
    this.#phase = undefined;
    this.#phaseDue = Infinity;
    this.#schedule(); // makes sure the deadline runs (a timer due earlier is kept)
  }

  abort(cause: AbortCause): void {
    if (this.cause) return;
    this.cause = cause;
    this.exchange?.abort(new Error(cause.kind === 'timeout' ? `timeout: ${cause.phase}` : cause.reason));
  }

  /** stops the timer; the attempt is still in flight until settled */
  dispose(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#fireAt = Infinity;
    this.#appSignal.removeEventListener('abort', this.#onAppAbort);
  }

  /** the provider's reported usage (commit, once the answer is whole): reconciles the reservation at settle */
  used(input: number, output: number): void {
    if (input + output > 0) this.#usedTokens = input + output;
  }

  /** records the outcome once and releases the attempt (its bulkhead slot, its rate-limit reservation); later calls do nothing */
  settle(outcome: Outcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.dispose();
    this.reservation?.settle(outcome, this.#usedTokens, this.#clock.now());
    // tokens given back may be room for a waiter: the queue looks again (a waiter that finds none waits on)
    if (this.reservation) this.endpoint.gate.onRoom(1);
    this.endpoint.inflight--;
    this.endpoint.inflightGauge.dec();
    try {
      this.endpoint.record(this.ticket, outcome, this.model, { requestId: this.#ctx.requestId, ...this.#ctx.retry, authUsed: this.config.auth });
    } finally {
      // after the record, so a waiter woken by the free slot sees what this outcome did to the breaker
      this.endpoint.gate.release();
    }
  }

  /**
   * Makes sure the timer fires no later than the earliest due time (the phase's end or the
   * deadline). A timer already due earlier is kept: most attempts arm, disarm and settle with one
   * setTimeout and one clearTimeout, and a stream's events touch no timer at all.
   */
  #schedule(): void {
    if (this.#settled) return;
    const due = Math.min(this.#phaseDue, this.#deadlineAt);
    if (this.#timer !== undefined && this.#fireAt <= due) return;
    this.#clock.clearTimeout(this.#timer);
    this.#fireAt = due;
    this.#timer = this.#clock.setTimeout(this.#onTimer, Math.max(0, due - this.#clock.now()));
  }

  #fired(): void {
    this.#timer = undefined;
    this.#fireAt = Infinity;
    if (this.#settled || this.cause) return;
    const now = this.#clock.now();
    if (now >= this.#deadlineAt) this.abort({ kind: 'cancelled', reason: 'deadline' });
    else if (this.#phase !== undefined && now >= this.#phaseDue) this.abort({ kind: 'timeout', phase: this.#phase });
    else this.#schedule(); // fired early: the phase moved (touch) or ended (disarm)
  }
}

/** inflated in one synchronous call up to this size (the usual small body: cheapest) */
const SYNC_DECODE_BYTES = 1024 * 1024;
const SYNC_DECODERS = { gzip: gunzipSync, deflate: inflateSync, br: brotliDecompressSync };

/**
 * Bounded: a small compressed body must not expand past the limit (a zip bomb), nor block the
 * event loop while it expands: past SYNC_DECODE_BYTES it is inflated again as a stream, in 16 KiB
 * pieces between turns of the event loop (inflating 64 MiB in one call blocked it ~200 ms).
 */
async function decodeWhole(bytes: Buffer, coding: Coding | undefined, limit: number): Promise<Buffer> {
  if (coding === undefined) return bytes;
  const syncLimit = Math.min(limit, SYNC_DECODE_BYTES);
  try {
    return SYNC_DECODERS[coding](bytes, { maxOutputLength: syncLimit });
  } catch (error) {
    if (syncLimit === limit || (error as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') throw error;
  }
  return readAll(decodingStream(Readable.from([bytes]), coding), limit);
}

/**
 * Decoded as it is read, so what a caller holds is bounded by what it reads (the SSE scanner's
 * limits): zlib inflates a chunk in pieces of 16 KiB and only as they are taken, so a small
 * compressed body that expands without end (a bomb) is cut at that limit.
 */
function decodingStream(body: Readable, coding: Coding | undefined): Readable {
  if (coding === undefined) return body;
  const decoder = coding === 'gzip' ? createGunzip() : coding === 'deflate' ? createInflate() : createBrotliDecompress();
  return pipeline(body, decoder, () => undefined); // errors surface on the decoder
}

async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('response body over the limit'), { code: 'BREAKWATER_RESPONSE_TOO_LARGE' });
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.includes('json');
}

export function requestPath(config: EndpointConfig, path: string, search: string): string {
  const { basePath, query } = config;
  if (query === '') return basePath + path + search;
  return basePath + path + (search === '' ? `?${query.slice(1)}` : search + query);
}

/**
 * Sends one attempt and reads up to the commit point. `waitCapMs` caps the wait for the
 * provider's headers (and, for a stream, its first content event): the loop shortens it so that
 * a failover still fits inside the request's deadline. An attempt cut by it is a timeout.
 */
export async function forward(live: Attempt, req: AttemptRequest, body: Buffer | Readable | undefined, clock: Clock, waitCapMs = Infinity): Promise<AttemptResult> {
  const { endpoint } = live;
  const { timeouts } = req;
  const headers: Record<string, string | string[]> = { ...req.headers, 'accept-encoding': 'gzip, deflate, br' };
  const { config } = live;
  for (const [k, v] of config.headers) headers[k] = v;
  const auth = config.auth;
  if (auth) headers[auth.header] = auth.value.reveal();
  if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);

  const started = clock.now();
  // Breakwater's own timers, not undici's coarse ones, so a timeout is exact and classified here.
  // A streamed upload is the app's time, not the provider's: firstByte starts when it is sent.
  // A non-streaming generation sends its headers only when the whole answer is ready, so its
  // wait is timeouts.response (reasoning models take minutes), not firstByte.
  const headersPhase = req.pathKind === 'generation' && !req.streaming ? 'response' : 'firstByte';
  const headersWaitMs = Math.min(headersPhase === 'response' ? timeouts.responseMs : timeouts.firstByteMs, waitCapMs);
  let awaitingHeaders = true;
  if (body === undefined || Buffer.isBuffer(body) || body.readableEnded) live.arm(headersPhase, headersWaitMs);
  else {
    live.disarm(); // the deadline runs while the app uploads
    body.once('end', () => awaitingHeaders && live.arm(headersPhase, headersWaitMs));
  }
  const exchange = new Exchange();
  live.exchange = exchange;
  if (live.cause) exchange.abort(new Error('aborted before it was sent'));
  try {
    await exchange.start(endpoint.dispatcher, {
      origin: config.origin,
      path: requestPath(config, req.path, req.search),
      method: req.method as 'POST',
      headers,
      body,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  } catch (error) {
    return { kind: 'failed', outcome: classifyTransport(error, live.cause), response: undefined };
  }
  awaitingHeaders = false;
  endpoint.ttfb.observe((clock.now() - started) / 1000);
  const { status, headers: resHeaders } = exchange;
  live.reservation?.observe(resHeaders, clock.now(), clock.wallNow());
  const coding = codingOf(resHeaders['content-encoding']);
  const contentType = resHeaders['content-type'] as string | undefined;

  try {
    if (status >= 400) {
      live.arm('response', timeouts.responseMs);
      const bytes = await decodeWhole(await collect(exchange, MAX_ERROR_BODY_BYTES), coding, MAX_ERROR_BODY_BYTES);
      live.disarm();
      let parsed: unknown;
      try {
        parsed = isJson(contentType) || bytes[0] === 0x7b ? JSON.parse(bytes.toString('utf8')) : undefined;
      } catch {
        parsed = undefined;
      }
      const outcome = classifyHttpError(req.dialect, status, resHeaders, parsed, clock.wallNow(), req.pathKind); // Retry-After may be an HTTP date
      const answer = { status, headers: resHeaders, bytes };
      if (outcome.kind === 'client_fault') return { kind: 'answer', outcome, status, headers: resHeaders, body: { kind: 'buffered', bytes } };
      return { kind: 'failed', outcome, response: answer };
    }

    if (contentType?.startsWith('text/event-stream')) {
      // hold the status and headers until the first data event (still under the firstByte timer):
      // a 200 that dies first can fail over
      const scanner = new SseScanner(req.dialect);
      const first = await untilCommitted(exchange, scanner, coding);
      if (first.kind === 'failed') {
        exchange.abort(new Error('stream refused before its commit point'));
        return { kind: 'failed', outcome: first.outcome(req), response: undefined };
      }
      live.arm('idle', timeouts.idleMs);
      return { kind: 'answer', outcome: { kind: 'ok' }, status, headers: resHeaders, body: { kind: 'sse', first: first.bytes, scanner, exchange, coding } };
    }

    if (isJson(contentType) || contentType === undefined) {
      live.arm('response', timeouts.responseMs);
      const bytes = await decodeWhole(await collect(exchange, MAX_RESPONSE_BYTES), coding, MAX_RESPONSE_BYTES);
      live.disarm();
      if (!isJson(contentType)) return { kind: 'answer', outcome: { kind: 'ok' }, status, headers: resHeaders, body: { kind: 'buffered', bytes } };
      const { outcome, body } = classifyJsonBody(req.dialect, bytes.toString('utf8'), req.validate, req.pathKind);
      if (outcome.kind !== 'ok') return { kind: 'failed', outcome, response: undefined };
      return { kind: 'answer', outcome, status, headers: resHeaders, body: { kind: 'buffered', bytes, usage: req.dialect.readUsage(body) } };
    }

    // anything else (audio, files): committed at the headers, relayed as it comes
    live.arm('idle', timeouts.idleMs);
    return { kind: 'answer', outcome: { kind: 'ok' }, status, headers: resHeaders, body: { kind: 'raw', exchange, coding } };
  } catch (error) {
    exchange.abort(error as Error);
    return { kind: 'failed', outcome: classifyBodyError(error, live.cause), response: undefined };
  }
}

type PreCommit =
  | { kind: 'committed'; bytes: Buffer }
  | { kind: 'failed'; outcome(req: AttemptRequest): Outcome };

/**
 * Feeds the stream to the scanner until its first data event (the commit point), keeping the
 * whole events seen so far; then detaches, leaving the rest for the relay.
 */
function untilCommitted(exchange: Exchange, scanner: SseScanner, coding: Coding | undefined): Promise<PreCommit> {
  return new Promise((resolve, reject) => {
    const first: Buffer[] = [];
    let done = false;
    exchange.attach(
      {
        data(chunk) {
          if (done) return;
          const events = scanner.push(chunk);
          if (!Buffer.isBuffer(events)) {
            done = true;
            resolve({ kind: 'failed', outcome: () => classifySseOverflow(events) });
            return;
          }
          if (events.length > 0) first.push(events);
          if (!scanner.committed) return;
          done = true;
          exchange.detach();
          if (scanner.dataEvents === 0) {
            // the provider reported an error before any content: classified like its HTTP twin
            resolve({ kind: 'failed', outcome: (req) => classifyStreamError(req.dialect, scanner.errorData, req.pathKind) });
            return;
          }
          resolve({ kind: 'committed', bytes: first.length === 1 ? first[0]! : Buffer.concat(first) });
        },
        end() {
          if (done) return;
          done = true;
          resolve({ kind: 'failed', outcome: () => ({ kind: 'invalid_response', reason: 'stream ended before its first event' }) });
        },
        error(error) {
          if (done) return;
          done = true;
          reject(error);
        },
      },
      coding,
    );
  });
}
