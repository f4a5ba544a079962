// After the commit point: write the answer to the app. A JSON body goes out whole; a stream
// is relayed event by event, and if it breaks (cut, stalled past timeouts.idle, no terminal
// event) the app gets an explicit SSE error event and the breaker is charged. The attempt's
// outcome is recorded here, once, when the response completes.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Ticket } from './breaker.ts';
import type { EndpointRuntime } from './endpoint.ts';
import type { AttemptResult, LiveAttempt, ResponseBody } from './forward.ts';
import type { LoopDeps, ProxyRequest } from './attempt.ts';
import { describeOutcome, type Outcome } from './outcome.ts';
import { responseHeaders } from './rescue.ts';
import { writeWithBackpressure } from './stream.ts';

export type RequestOutcome = 'ok' | 'client_fault' | 'upstream_error' | 'unavailable' | 'deadline' | 'cancelled' | 'stream_broken' | 'rejected';

export interface Committed {
  endpoint: EndpointRuntime;
  ticket: Ticket;
  result: Extract<AttemptResult, { kind: 'answer' }>;
  attempts: number;
  fallbackModel: string | undefined;
  providerMs: number;
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
        outcome = await relayRaw(res, result.body.stream, live);
        break;
    }
  } finally {
    live.dispose();
    endpoint.inflight--;
    endpoint.inflightGauge.dec();
    endpoint.record(c.ticket, outcome, c.fallbackModel ?? req.model, { requestId: req.requestId, ...req.upstream.config.retry });
  }
  if (outcome.kind === 'cancelled') return 'cancelled';
  if (outcome.kind !== 'ok' && outcome.kind !== 'client_fault') {
    deps.log.warn({ upstream: req.upstream.config.name, endpoint: endpoint.name, requestId: req.requestId, outcome: describeOutcome(outcome) }, 'stream broke after commit: app told with an SSE error event');
    return 'stream_broken';
  }
  return outcome.kind === 'ok' ? 'ok' : 'client_fault';
}

async function relaySse(
  req: ProxyRequest,
  res: ServerResponse,
  body: Extract<ResponseBody, { kind: 'sse' }>,
  live: LiveAttempt,
): Promise<Outcome> {
  const { scanner, rest, decoder } = body;
  const { dialect } = req.upstream;
  let outcome: Outcome;
  try {
    await writeWithBackpressure(res, body.first);
    for (;;) {
      const next = await rest.next();
      if (next.done) break;
      live.touch();
      const text = scanner.push(decoder.decode(next.value, { stream: true }));
      if (text !== '') await writeWithBackpressure(res, text);
    }
    outcome = scanner.sawTerminal
      ? scanner.errorData === undefined
        ? { kind: 'ok' }
        : { kind: 'server_error', status: 200, retryAfterMs: undefined }
      : { kind: 'invalid_response', reason: 'stream ended without its terminal event' };
  } catch (error) {
    const c = live.cause;
    if (c?.kind === 'cancelled' && c.reason === 'client_disconnected') return { kind: 'cancelled', reason: 'client_disconnected' };
    outcome = c?.kind === 'cancelled'
      ? { kind: 'cancelled', reason: 'deadline' }
      : c?.kind === 'timeout' || (error as { code?: unknown }).code === 'UND_ERR_BODY_TIMEOUT'
        ? { kind: 'timeout', phase: 'idle' }
        : { kind: 'invalid_response', reason: 'stream cut mid-response' };
  }
  if (outcome.kind !== 'ok' && !res.destroyed) {
    const message = outcome.kind === 'cancelled' ? 'the request deadline passed mid-stream' : `the provider stream broke: ${describeOutcome(outcome)}`;
    res.write(dialect.sseErrorEvent(outcome.kind === 'cancelled' ? 'deadline_exceeded' : 'stream_broken', message, req.requestId));
  }
  res.end();
  return outcome;
}

async function relayRaw(res: ServerResponse, stream: NodeJS.ReadableStream, live: LiveAttempt): Promise<Outcome> {
  try {
    for await (const chunk of stream) {
      live.touch();
      await writeWithBackpressure(res, chunk as unknown as string);
    }
    res.end();
    return { kind: 'ok' };
  } catch {
    const c = live.cause;
    res.destroy();
    if (c?.kind === 'cancelled') return { kind: 'cancelled', reason: c.reason };
    return c?.kind === 'timeout' ? { kind: 'timeout', phase: c.phase } : { kind: 'invalid_response', reason: 'body cut mid-response' };
  }
}
