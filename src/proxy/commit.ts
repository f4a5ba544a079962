// After the commit point: write the answer to the app. A JSON body goes out whole; a stream
// is relayed event by event, and if it breaks (cut, stalled past timeouts.idle, no terminal
// event, an event over its limit) the app gets an explicit SSE error event (unless the
// provider's own error event already told it) and the breaker is charged. The attempt is
// settled here, once, when the response completes.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Answer, LoopDeps, ProxyRequest } from './attempt.ts';
import { classifyBodyError, classifySseOverflow, classifyStreamError } from './classify.ts';
import type { Attempt, ResponseBody } from './forward.ts';
import { describeOutcome, type Outcome } from './outcome.ts';
import { responseHeaders } from './headers.ts';
import type { SseOverflow } from './stream.ts';
import type { Coding, Exchange } from './wire.ts';

export type RequestOutcome = 'ok' | 'client_fault' | 'upstream_error' | 'unavailable' | 'deadline' | 'cancelled' | 'stream_broken' | 'rejected' | 'shed';

function headersFor(req: ProxyRequest, a: Answer): OutgoingHttpHeaders {
  const headers = responseHeaders(a.result.headers, a.result.body.kind !== 'raw');
  headers['x-breakwater-request-id'] = req.requestId;
  headers['x-breakwater-endpoint'] = a.attempt.endpoint.name;
  headers['x-breakwater-attempts'] = String(a.attempts);
  if (a.fallbackModel !== undefined) headers['x-breakwater-fallback-model'] = a.fallbackModel;
  if (a.result.status >= 400) headers['x-should-retry'] = 'false';
  if (req.cache) headers['x-breakwater-cache'] = req.cache.result;
  return headers;
}

/** Writes the answer and settles its attempt (exactly once, whatever throws). */
export async function commit(req: ProxyRequest, res: ServerResponse, answer: Answer, deps: LoopDeps): Promise<RequestOutcome> {
  const { result, attempt } = answer;
  const { endpoint } = attempt;
  let outcome: Outcome = result.outcome;
  try {
    const headers = headersFor(req, answer);
    const overhead = () => req.upstream.counters.overhead.observe(Math.max(0, performance.now() - req.startedAt - answer.providerMs) / 1000);
    switch (result.body.kind) {
      case 'buffered':
        headers['content-length'] = result.body.bytes.length;
        res.writeHead(result.status, headers);
        res.end(result.body.bytes);
        if (req.cache?.store) req.cache.cache.storeAnswer(req.cache, answer);
        overhead();
        if (result.body.usage) endpoint.recordTokens(result.body.usage.input, result.body.usage.output);
        if (result.body.usage) attempt.used(result.body.usage.input, result.body.usage.output);
        break;
      case 'sse':
        headers['cache-control'] = 'no-cache';
        res.writeHead(result.status, headers);
        overhead();
        outcome = await relaySse(req, res, result.body, attempt);
        endpoint.recordTokens(result.body.scanner.inputTokens, result.body.scanner.outputTokens);
        attempt.used(result.body.scanner.inputTokens, result.body.scanner.outputTokens);
        break;
      case 'raw':
        res.writeHead(result.status, headers);
        overhead();
        outcome = await relayRaw(req, res, result.body, attempt);
        break;
    }
  } catch (err) {
    outcome = { kind: 'internal', code: 'exception' };
    deps.log.error({ err, upstream: req.upstream.config.name, endpoint: endpoint.name, requestId: req.requestId }, 'writing the answer failed inside breakwater');
    res.destroy();
  } finally {
    attempt.settle(outcome);
  }
  if (outcome.kind === 'cancelled') return 'cancelled';
  if (outcome.kind !== 'ok' && outcome.kind !== 'client_fault') {
    deps.log.warn({ upstream: req.upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, outcome: describeOutcome(outcome) }, 'stream broke after commit: app told with an SSE error event');
    return 'stream_broken';
  }
  return outcome.kind === 'ok' ? 'ok' : 'client_fault';
}

type PumpEnd = { kind: 'end' } | { kind: 'stopped' } | { kind: 'error'; error: Error };

/**
 * Relays the rest of the exchange to the app as undici delivers it, through `transform` (which
 * answers the bytes to write, or undefined to stop). While the app's socket is full the exchange
 * is paused, and with it the provider's stream, and the idle timer stops (a slow reader is not
 * the provider's fault); the deadline still applies and ends the wait. `pending`: bytes to write
 * first (the events read up to the commit point).
 */
function pump(res: ServerResponse, live: Attempt, body: { exchange: Exchange; coding: Coding | undefined }, idleMs: number, pending: Buffer | undefined, transform: (chunk: Buffer) => Buffer | undefined): Promise<PumpEnd> {
  const { exchange } = body;
  return new Promise((resolve) => {
    let finished = false;
    const finish = (end: PumpEnd) => {
      if (finished) return;
      finished = true;
      res.off('drain', onDrain);
      resolve(end);
    };
    const onDrain = () => {
      if (finished) return;
      live.arm('idle', idleMs);
      exchange.resume();
    };
    const full = () => {
      exchange.pause();
      live.disarm();
    };
    res.on('drain', onDrain);
    if (pending !== undefined && pending.length > 0 && !res.write(pending)) full();
    exchange.attach(
      {
        data(chunk) {
          if (finished) return;
          live.touch();
          const out = transform(chunk);
          if (out === undefined) {
            finish({ kind: 'stopped' });
            exchange.abort(new Error('relay stopped')); // stop reading: closes the provider's stream
            return;
          }
          if (out.length > 0 && !res.write(out)) full();
        },
        end: () => finish({ kind: 'end' }),
        error: (error) => finish({ kind: 'error', error }),
      },
      body.coding,
    );
  });
}

/** An abort or cut after the commit, as an outcome; the app's own disconnect is nothing. */
function brokenOutcome(error: unknown, live: Attempt): Outcome {
  const cause = live.cause;
  if (cause?.kind === 'cancelled') return { kind: 'cancelled', reason: cause.reason };
  return classifyBodyError(error, cause);
}

async function relaySse(req: ProxyRequest, res: ServerResponse, body: Extract<ResponseBody, { kind: 'sse' }>, live: Attempt): Promise<Outcome> {
  const { scanner } = body;
  let overflow: SseOverflow | undefined;
  const end = await pump(res, live, body, req.timeouts.idleMs, body.first, (chunk) => {
    const events = scanner.push(chunk);
    if (Buffer.isBuffer(events)) return events;
    overflow = events;
    return undefined;
  });
  const outcome: Outcome =
    end.kind === 'error'
      ? brokenOutcome(end.error, live)
      : overflow
        ? classifySseOverflow(overflow)
        : scanner.errorData !== undefined
          ? classifyStreamError(req.dialect, scanner.errorData, req.pathKind)
          : !scanner.sawTerminal
            ? { kind: 'invalid_response', reason: 'stream ended without its terminal event' }
            : { kind: 'ok' };
  if (outcome.kind === 'cancelled' && outcome.reason === 'client_disconnected') return outcome;
  // the provider's own error event already reached the app: it is not told twice
  if (outcome.kind !== 'ok' && scanner.errorData === undefined) {
    if (res.destroyed || res.writableNeedDrain) {
      res.destroy(); // an app that is not reading cannot be told more politely
      return outcome;
    }
    const deadline = outcome.kind === 'cancelled';
    const message = deadline ? 'the request deadline passed mid-stream' : `the provider stream broke: ${describeOutcome(outcome)}`;
    res.write(req.upstream.dialect.sseErrorEvent(deadline ? 'deadline_exceeded' : 'stream_broken', message, req.requestId));
  }
  res.end();
  return outcome;
}

async function relayRaw(req: ProxyRequest, res: ServerResponse, body: Extract<ResponseBody, { kind: 'raw' }>, live: Attempt): Promise<Outcome> {
  const end = await pump(res, live, body, req.timeouts.idleMs, undefined, (chunk) => chunk);
  if (end.kind === 'error') {
    res.destroy();
    return brokenOutcome(end.error, live);
  }
  res.end();
  return { kind: 'ok' };
}
