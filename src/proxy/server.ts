// The proxy listener on loopback: route by the first path segment, read (and bound) the
// body of retryable calls so they can be replayed, then hand over to the attempt loop.
// Shutdown stops accepting and lets in-flight requests and streams finish within the drain.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock } from '../clock.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { parsePriority, PRIORITY_HEADER } from './admission.ts';
import { runAttempts, type ProxyRequest } from './attempt.ts';
import { sendHit } from './cache.ts';
import { commit, type RequestOutcome } from './commit.ts';
import { openai } from './dialects/openai.ts';
import { deadlineFor } from './retry.ts';
import { normalizePath } from '../config/lower.ts';
import type { DialectRules, PathKind } from './dialects/types.ts';
import { ByteBudget, DEFAULT_MAX_BUFFERED_BYTES } from './buffers.ts';
import { sendGiveUp, sendOwnError } from './rescue.ts';
import { refuse } from './guard.ts';
import { requestHeaders } from './headers.ts';
import { parseObject, scanBody, type BodyFields } from './scan.ts';
import type { UpstreamRuntime } from './upstream.ts';
import { edgeLimits, proxyServerOptions, type EdgeLimits } from './limits.ts';
import type { ProxyRuntime } from './runtime.ts';
import { estimateOutputTokens, estimatePromptTokens } from './ratelimit.ts';

/**
 * Request ids: a random prefix per process (so ids from replicas do not collide in a log store)
 * and a counter, instead of a random UUID per request.
 */
const ID_PREFIX = randomBytes(6).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  return `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
/** paths where another model's answer is acceptable (never embeddings: vectors do not mix) */
const GENERATION_PATHS = new Set(['chat/completions', 'completions', 'messages', 'responses']);

function pathKind(normalized: string): PathKind {
  if (GENERATION_PATHS.has(normalized)) return 'generation';
  return normalized === 'embeddings' ? 'embeddings' : 'other';
}

export interface ProxyServerOptions {
  runtime: ProxyRuntime;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  maxBodyBytes?: number;
  /** all buffered request bodies together (default 64 MiB) */
  maxBufferedBytes?: number;
  /** timeouts and the connection cap of the port (src/proxy/limits.ts) */
  limits?: Partial<EdgeLimits>;
}

type BodyRead = { kind: 'ok'; bytes: Buffer } | { kind: 'too_large' } | { kind: 'busy' } | { kind: 'aborted' } | { kind: 'idle' };

/**
 * Reads the request body up to `limit`, reserving its bytes from the process-wide `budget` as
 * they arrive (on `ok` the caller releases `bytes.length` when the response is done); past
 * either, keeps draining (bounded) so the 413 or 503 arrives cleanly. A body that sends nothing
 * for `idleMs` is given up on (the caller answers 408).
 */
function readBody(req: IncomingMessage, limit: number, budget: ByteBudget, idleMs: number, clock: Clock): Promise<BodyRead> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > limit;
    let busy = false;
    /** bytes of `chunks` reserved from the budget */
    let reserved = 0;
    const refusal = (): BodyRead => (over ? { kind: 'too_large' } : { kind: 'busy' });
    const drop = () => {
      budget.release(reserved);
      reserved = 0;
      chunks.length = 0;
    };
    let settled = false;
    const settle = (read: BodyRead) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(idle);
      if (read.kind === 'ok') chunks.length = 0; // handed over with its reservation
      else drop();
      resolve(read);
    };
    const idle = clock.setTimeout(() => settle({ kind: 'idle' }), idleMs);
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      idle.refresh();
      size += chunk.length;
      if (size > limit) over = true;
      if (!over && !busy) {
        if (budget.take(chunk.length)) reserved += chunk.length;
        else busy = true;
      }
      if (over || busy) {
        drop();
        if (size > limit * 4) req.destroy(); // not worth draining further
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle(over || busy ? refusal() : { kind: 'ok', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }));
    req.on('error', () => settle(over || busy ? refusal() : { kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) settle(over || busy ? refusal() : { kind: 'aborted' });
    });
  });
}


export class ProxyServer {
  readonly #options: ProxyServerOptions;
  readonly #limits: EdgeLimits;
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #buffered: ByteBudget;
  #draining = false;
  inflight = 0;

  constructor(options: ProxyServerOptions) {
    this.#options = options;
    this.#buffered = new ByteBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.#limits = edgeLimits(options.limits);
  }

  /** Listens on host:port; on 127.0.0.1 also on ::1 when the machine has it. Returns the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const bound = await this.#listenOne(host, port);
    if (host === '127.0.0.1' || host === 'localhost') await this.#listenOne('::1', bound).catch(() => undefined);
    return bound;
  }

  #listenOne(host: string, port: number): Promise<number> {
    const server = createServer(proxyServerOptions(this.#limits), (req, res) => this.#handle(req, res));
    server.maxConnections = this.#limits.maxConnections;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.#servers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /** Stop accepting; wait for in-flight requests up to drainMs; then close what is left. */
  async shutdown(drainMs: number): Promise<{ drained: boolean }> {
    this.#draining = true;
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const s of this.#servers) s.closeIdleConnections();
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), drainMs).unref());
    const result = await Promise.race([closed.then(() => 'closed' as const), timeout]);
    if (result === 'timeout') for (const socket of this.#sockets) socket.destroy();
    return { drained: result === 'closed' };
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const requestId = nextRequestId();
    this.inflight++;
    res.on('close', () => {
      this.inflight--;
      // a keep-alive connection whose last response just ended is idle now: close it while draining
      if (this.#draining) for (const s of this.#servers) s.closeIdleConnections();
    });
    // idle keep-alive connections close at once while draining; busy ones after their response
    if (this.#draining) res.setHeader('connection', 'close');
    this.#route(req, res, requestId, started).catch((err: unknown) => {
      this.#options.log.error({ err, requestId }, 'internal error');
      sendOwnError(res, this.#dialectOf(req.url), 'internal', 'internal error in breakwater', requestId);
    });
  }

  /** the dialect of the upstream a URL names (OpenAI's when none matches), for errors outside #route */
  #dialectOf(url: string | undefined): DialectRules {
    const name = (url ?? '/').split(/[/?]/)[1] ?? '';
    return this.#options.runtime.snapshot?.upstreams.get(name)?.dialect ?? openai;
  }

  async #route(req: IncomingMessage, res: ServerResponse, requestId: string, started: number): Promise<void> {
    const { runtime, log, clock } = this.#options;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    const slash = pathname.indexOf('/', 1);
    const name = slash < 0 ? pathname.slice(1) : pathname.slice(1, slash);
    const path = slash < 0 ? '/' : pathname.slice(slash);
    const snapshot = runtime.snapshot;
    const upstream = snapshot?.upstreams.get(name);
    const refusal = refuse(req);
    if (refusal) {
      req.resume();
      sendOwnError(res, upstream?.dialect ?? openai, refusal.kind, refusal.message, requestId, { close: true, headers: refusal.headers });
      if (upstream) upstream.countRequest('rejected');
      return;
    }
    if (!upstream) {
      req.resume();
      const known = snapshot ? [...snapshot.upstreams.keys()].join(', ') || 'none' : 'none (no config loaded yet)';
      sendOwnError(res, openai, 'not_found', `no upstream named "${name}"; configured upstreams: ${known}`, requestId);
      return;
    }
    const { config, dialect } = upstream;
    const done = (outcome: RequestOutcome) => {
      upstream.countRequest(outcome);
      upstream.counters.duration.observe((performance.now() - started) / 1000);
      if (log.isLevelEnabled('debug')) log.debug({ upstream: config.name, requestId, method: req.method, path, status: res.statusCode, outcome, ms: Math.round(performance.now() - started) }, 'request');
    };
    if (this.#draining) {
      req.resume();
      sendOwnError(res, dialect, 'shutting_down', 'breakwater is shutting down; send the request again', requestId, { close: true });
      return done('rejected');
    }

    const priority = parsePriority(req.headers[PRIORITY_HEADER]);
    if (priority === undefined) {
      req.resume();
      sendOwnError(res, dialect, 'invalid_request', `header ${PRIORITY_HEADER} must be high, normal or low`, requestId);
      return done('rejected');
    }

    const method = req.method ?? 'GET';
    const normalized = normalizePath(path);
    const replayable =
      method === 'GET' || method === 'HEAD' || req.headers['idempotency-key'] !== undefined || (method === 'POST' && config.retry.paths.has(normalized));
    const appAbort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) appAbort.abort();
    });

    let body: ProxyRequest['body'];
    let json: Record<string, unknown> | undefined;
    let fields: BodyFields | undefined;
    let retryable = replayable;
    if (replayable && method !== 'GET' && method !== 'HEAD') {
      const read = await readBody(req, this.#options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, this.#buffered, this.#limits.bodyIdleMs, clock);
      if (read.kind === 'aborted') return done('cancelled');
      if (read.kind === 'idle') {
        sendOwnError(res, dialect, 'request_timeout', `the request body sent nothing for ${this.#limits.bodyIdleMs} ms`, requestId, { close: true });
        return done('rejected');
      }
      if (read.kind === 'busy') {
        log.warn({ upstream: config.name, requestId, bufferedBytes: this.#buffered.used, limit: this.#buffered.limit }, 'buffered request bodies are at their limit: request refused');
        sendOwnError(res, dialect, 'overloaded', `breakwater is holding ${this.#buffered.limit} bytes of request bodies already; send the request again shortly`, requestId, { retryAfterMs: 1000, close: true });
        return done('rejected');
      }
      const held = read.kind === 'ok' ? read.bytes.length : 0;
      res.once('close', () => this.#buffered.release(held));
      if (read.kind === 'too_large') {
        const limit = this.#options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
        sendOwnError(res, dialect, 'payload_too_large', `request body is larger than ${limit} bytes`, requestId, { close: true });
        return done('rejected');
      }
      body = read.bytes;
      if (looksJson(read.bytes, req.headers['content-type'])) {
        // the fields the request path needs, without parsing the body (scan.ts)
        const scan = scanBody(read.bytes);
        if (scan.kind === 'malformed') {
          sendOwnError(res, dialect, 'invalid_request', `request body is not valid JSON: ${scan.reason}`, requestId);
          return done('rejected');
        }
        if (scan.kind === 'object') fields = scan.fields;
      }
      if (fields && needsWholeBody(upstream, fields, pathKind(normalized), req.headers)) {
        const parsed = parseObject(read.bytes);
        if (parsed.kind === 'invalid') {
          sendOwnError(res, dialect, 'invalid_request', `request body is not valid JSON: ${parsed.message}`, requestId);
          return done('rejected');
        }
        json = parsed.value;
      }
      // a background Responses call creates work on the provider: one attempt only
      if (normalized === 'responses' && fields?.background === true) retryable = false;
    } else if (method !== 'GET' && method !== 'HEAD') {
      body = req; // streamed through unbuffered: one attempt
    }

    const model = fields?.model;
    const kind = pathKind(normalized);
    const now = clock.now();
    // the rate limits' estimate, once: the prompt from the body's size (declared, when streamed through)
    const estimatedPromptTokens = estimatePromptTokens(Buffer.isBuffer(body) ? body.length : Number(req.headers['content-length']) || 0);
    const proxyReq: ProxyRequest = {
      requestId,
      upstream,
      method,
      path,
      search,
      headers: requestHeaders(req.headers),
      body,
      json,
      fields,
      model,
      pathKind: kind,
      fallbackAllowed:
        kind === 'generation' && model !== undefined && config.fallbacks.has(model) && req.headers['x-breakwater-fallback'] !== 'off',
      retryable,
      deadline: deadlineFor(now, config.timeouts.totalMs, req.headers),
      appSignal: appAbort.signal,
      timeouts: config.timeouts,
      dialect,
      validate: config.validate,
      streaming: fields?.stream === true,
      startedAt: started,
      priority,
      estimatedTokens: estimatedPromptTokens + estimateOutputTokens(fields, kind),
      estimatedPromptTokens,
    };
    if (upstream.cache) {
      const consulted = upstream.cache.consult(proxyReq, req.headers);
      if (consulted?.kind === 'invalid') {
        // the cache is the one reader of this whole body (needsWholeBody left it to it)
        sendOwnError(res, dialect, 'invalid_request', `request body is not valid JSON: ${consulted.message}`, requestId);
        return done('rejected');
      }
      if (consulted?.kind === 'hit') {
        sendHit(res, upstream.cache, consulted, requestId);
        upstream.counters.overhead.observe((performance.now() - started) / 1000);
        return done('ok');
      }
      proxyReq.cache = consulted;
    }
    const result = await runAttempts(proxyReq, this.#options);
    if (result.kind === 'answer') return done(await commit(proxyReq, res, result, this.#options));
    if (result.kind !== 'cancelled') upstream.counters.overhead.observe(Math.max(0, performance.now() - started - result.providerMs) / 1000);
    done(sendGiveUp(res, dialect, requestId, result));
  }
}

function looksJson(bytes: Buffer, contentType: string | undefined): boolean {
  if (bytes.length === 0) return false;
  return contentType === undefined ? bytes[0] === 0x7b : contentType.includes('json');
}

/**
 * Whether this request's body must be parsed whole: a rewrite may happen (a fallback chain, or an
 * endpoint that renames the model). Otherwise the scanned fields are all the request path reads,
 * and the bytes go out as they came; the cache keys a body from its bytes (canonical.ts), and
 * that walk is what finds it invalid then.
 */
function needsWholeBody(upstream: UpstreamRuntime, fields: BodyFields, kind: PathKind, headers: IncomingMessage['headers']): boolean {
  const { model } = fields;
  if (model !== undefined && kind === 'generation' && upstream.config.fallbacks.has(model) && headers['x-breakwater-fallback'] !== 'off') return true;
  return model !== undefined && upstream.renamesModel(model);
}
