// After the commit point: write the answer to the app. A JSON body goes out whole; a stream
// is relayed event by event, and if it breaks (cut, stalled past timeouts.idle, no terminal
// event, an event over its limit) the app gets an explicit SSE error event and the breaker is
// charged. The attempt's outcome is recorded here, once, when the response completes.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AuthConfig } from '../config/runtime.ts';
import type { Ticket } from './breaker.ts';
import type { EndpointRuntime } from './endpoint.ts';
import type { AttemptResult, LiveAttempt, ResponseBody } from './forward.ts';
import type { LoopDeps, ProxyRequest } from './attempt.ts';
import { describeOutcome, type Outcome } from './outcome.ts';
import { responseHeaders } from './rescue.ts';
import { writeWithBackpressure, type SseOverflow } from './stream.ts';
import { classifyBodyError, classifySseOverflow } from './classify.ts';

export type RequestOutcome = 'ok' | 'client_fault' | 'upstream_error' | 'unavailable' | 'deadline' | 'cancelled' | 'stream_broken' | 'rejected';

export interface Committed {
  endpoint: EndpointRuntime;
  ticket: Ticket;
  result: Extract<AttemptResult, { kind: 'answer' }>;
  attempts: number;
  fallbackModel: string | undefined;
  providerMs: number;
  authUsed: AuthConfig | undefined;
}

function headersFor(req: ProxyRequest, c: Committed): OutgoingHttpHeaders {
  const headers = responseHeaders(c.result.headers, c.result.body.kind !== 'raw');
  headers['x-breakwater-request-id'] = req.requestId;
  headers['x-breakwater-endpoint'] = c.endpoint.name;
  headers['x-breakwater-attempts'] = String(c.attempts);
  if (c.fallbackModel !== undefined) headers['x-breakwater-fallback-model'] = c.fallbackModel;
  if (c.result.status >= 400) headers['x-should-retry'] = 'false';
  return headers;
}

export async function commit(req: ProxyRequest, res: ServerResponse, c: Committed, deps: LoopDeps): Promise<RequestOutcome> {
  const { endpoint, result } = c;
  const { live } = result;
  const headers = headersFor(req, c);
  const overhead = () => req.upstream.counters.overhead.observe(Math.max(0, performance.now() - req.startedAt - c.providerMs) / 1000);
  let outcome: Outcome = result.outcome;
  try {
    switch (result.body.kind) {
      case 'buffered':
        headers['content-length'] = result.body.bytes.length;
        res.writeHead(result.status, headers);
        res.end(result.body.bytes);
        overhead();
        if (result.body.usage) endpoint.recordTokens(result.body.usage.input, result.body.usage.output);
        break;
      case 'sse':
        headers['cache-control'] = 'no-cache';
        res.writeHead(result.status, headers);
        overhead();
        outcome = await relaySse(req, res, result.body, live);
        endpoint.recordTokens(result.body.scanner.inputTokens, result.body.scanner.outputTokens);
        break;
      case 'raw':
        res.writeHead(result.status, headers);
        overhead();
        outcome = await relayRaw(req, res, result.body.stream, live);
        break;
    }
  } finally {
    live.dispose();
    endpoint.inflight--;
    endpoint.inflightGauge.dec();
    endpoint.record(c.ticket, outcome, c.fallbackModel ?? req.model, { requestId: req.requestId, ...req.upstream.config.retry, authUsed: c.authUsed });
  }
  if (outcome.kind === 'cancelled') return 'cancelled';
  if (outcome.kind !== 'ok' && outcome.kind !== 'client_fault') {
    deps.log.warn({ upstream: req.upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, outcome: describeOutcome(outcome) }, 'stream broke after commit: app told with an SSE error event');
    return 'stream_broken';
  }
  return outcome.kind === 'ok' ? 'ok' : 'client_fault';
}

/**
 * Writes one chunk to the app. While the app's socket is full the idle timer is paused (a slow
 * reader is not the provider's fault); the deadline still applies and ends the wait.
 */
async function send(res: ServerResponse, chunk: string | Buffer, live: LiveAttempt, idleMs: number): Promise<void> {
  const full = writeWithBackpressure(res, chunk, live.controller.signal);
  if (!full) return;
  live.disarm();
  await full;
  if (live.controller.signal.aborted) throw new Error('attempt aborted while the app was not reading');
  live.arm('idle', idleMs);
}

/** An abort or cut after the commit, as an outcome; the app's own disconnect is nothing. */
function brokenOutcome(error: unknown, live: LiveAttempt): Outcome {
  const cause = live.cause;
  if (cause?.kind === 'cancelled') return { kind: 'cancelled', reason: cause.reason };
  return classifyBodyError(error, cause);
}

async function relaySse(req: ProxyRequest, res: ServerResponse, body: Extract<ResponseBody, { kind: 'sse' }>, live: LiveAttempt): Promise<Outcome> {
  const { scanner, rest } = body;
  const idleMs = req.timeouts.idleMs;
  let outcome: Outcome;
  let overflow: SseOverflow | undefined;
  try {
    await send(res, body.first, live, idleMs);
    for (;;) {
      const next = await rest.next();
      if (next.done) break;
      live.touch();
      const events = scanner.push(next.value);
      if (!Buffer.isBuffer(events)) {
        overflow = events;
        rest.return?.().catch(() => undefined); // stop reading: closes the provider's stream
        break;
      }
      if (events.length > 0) await send(res, events, live, idleMs);
    }
    outcome = overflow
      ? classifySseOverflow(overflow)
      : !scanner.sawTerminal
        ? { kind: 'invalid_response', reason: 'stream ended without its terminal event' }
        : scanner.errorData === undefined
          ? { kind: 'ok' }
          : { kind: 'server_error', status: 200, retryAfterMs: undefined };
  } catch (error) {
    outcome = brokenOutcome(error, live);
  }
  if (outcome.kind === 'cancelled' && outcome.reason === 'client_disconnected') return outcome;
  if (outcome.kind !== 'ok') {
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

async function relayRaw(req: ProxyRequest, res: ServerResponse, stream: NodeJS.ReadableStream, live: LiveAttempt): Promise<Outcome> {
  try {
    for await (const chunk of stream) {
      live.touch();
      await send(res, chunk as Buffer, live, req.timeouts.idleMs);
    }
    res.end();
    return { kind: 'ok' };
  } catch (error) {
    res.destroy();
    return brokenOutcome(error, live);
  }
}
