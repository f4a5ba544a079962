// Deliver one answer (JSON or SSE) the way its fault says: whole, in pieces, cut,
// stalled, reset, gzipped, delayed or in lockstep.
import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { Ctx, Endpoint, StreamPlan } from './content.ts';
import type { FaultSpec } from './faults.ts';
import type { RequestPlan } from './plan.ts';
import { drained, kill } from './io.ts';
import type { Lockstep } from './lockstep.ts';
import { openSink } from './sse.ts';
import { flood } from './flood.ts';

/** Per-request liveness: set when the response closes; `wake` interrupts a pause. */
export interface Live {
  closed: boolean;
  wake: (() => void) | null;
}

export interface Answer {
  res: ServerResponse;
  endpoint: Endpoint;
  ctx: Ctx;
  plan: RequestPlan;
  /** Common headers (request ids, provider name). */
  headers: Record<string, string>;
  lockstep: Lockstep;
  live: Live;
}

/** Sleep that ends early when the response closes. */
function pause(live: Live, ms: number): Promise<void> {
  if (ms <= 0 || live.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      live.wake = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    live.wake = done;
  });
}

const JSON_PIECES = 5;
const STREAM_CUT_AFTER = 2;

type JsonCut = 'whole' | 'pieces' | 'headers-then-reset' | 'half-then-reset' | 'half-then-stall';

export async function answer(a: Answer, stream: boolean): Promise<void> {
  const { plan, live } = a;
  const fault = plan.fault;
  if (fault.kind === 'hang') return; // body was read; never answer
  if (!stream || fault.kind === 'error' || fault.kind === 'reset-before-headers') {
    if (fault.kind !== 'slow') await pause(live, plan.delayMs);
    if (live.closed) return;
  }
  switch (fault.kind) {
    case 'reset-before-headers':
      kill(a.res, true);
      return;
    case 'error': {
      const e = a.endpoint.dialect.error(fault.flavor, fault.status, a.ctx);
      return sendJson(a, e.status, e.body, 'whole');
    }
    case 'endless-event':
    case 'endless-event-mid-stream':
    case 'endless-comments':
    case 'gzip-bomb':
      return flood(a, fault.kind, stream);
  }
  return stream ? sendStream(a, fault) : sendJsonFault(a, fault);
}

function sendJsonFault(a: Answer, fault: FaultSpec): Promise<void> {
  const { endpoint, ctx } = a;
  switch (fault.kind) {
    case 'slow':
      return sendJson(a, 200, endpoint.json(ctx), 'pieces');
    case 'reset-after-headers':
    case 'comment-then-reset':
      return sendJson(a, 200, endpoint.json(ctx), 'headers-then-reset');
    case 'reset-mid-stream':
      return sendJson(a, 200, endpoint.json(ctx), 'half-then-reset');
    case 'stall':
      return sendJson(a, 200, endpoint.json(ctx), 'half-then-stall');
    case 'malformed-json': {
      const body = endpoint.json(ctx);
      return sendJson(a, 200, body.slice(0, Math.max(1, body.length >> 1)), 'whole');
    }
    case 'empty-choices':
      return sendJson(a, 200, endpoint.empty(ctx), 'whole');
    case 'error-in-200':
    case 'error-after-start':
    case 'error-mid-stream':
      return sendJson(a, 200, endpoint.dialect.error('server', 200, ctx).body, 'whole');
    default:
      return sendJson(a, 200, endpoint.json(ctx), 'whole');
  }
}

async function sendJson(a: Answer, status: number, body: string, cut: JsonCut): Promise<void> {
  const { res, plan, live } = a;
  const payload = plan.gzip === 'off' ? Buffer.from(body) : gzipSync(body);
  const headers: Record<string, string | number> = {
    ...a.headers,
    'content-type': 'application/json',
    'content-length': payload.length,
  };
  if (plan.gzip !== 'off') {
    headers['content-encoding'] = 'gzip';
    headers.vary = 'Accept-Encoding';
  }
  if (status >= 400) {
    if (plan.retryAfter !== undefined) headers['retry-after'] = String(plan.retryAfter);
    if (plan.retryAfterMs !== undefined) headers['retry-after-ms'] = String(plan.retryAfterMs);
  }
  res.writeHead(status, headers);
  const half = Math.max(1, payload.length >> 1);
  switch (cut) {
    case 'whole':
      res.end(payload);
      return;
    case 'headers-then-reset':
      res.flushHeaders();
      await drained(res);
      kill(res, true);
      return;
    case 'half-then-reset':
      res.write(payload.subarray(0, half));
      await drained(res);
      kill(res, true);
      return;
    case 'half-then-stall':
      res.write(payload.subarray(0, half));
      return;
    case 'pieces': {
      const size = Math.ceil(payload.length / JSON_PIECES);
      for (let off = 0; off < payload.length; off += size) {
        await pause(live, plan.delayMs);
        if (live.closed) return;
        res.write(payload.subarray(off, off + size));
      }
      res.end();
      return;
    }
  }
}

type StreamEnd = 'end' | 'reset' | 'stall';

/** A frame whose data line is cut in half: invalid JSON. */
function malformedFrame(frame: string | undefined): string {
  if (!frame) return 'data: {"malformed\n\n';
  const start = frame.indexOf('data: ') + 6;
  const end = frame.length - 2;
  return frame.slice(0, start + Math.max(1, (end - start) >> 1)) + '\n\n';
}

async function sendStream(a: Answer, fault: FaultSpec): Promise<void> {
  const { res, plan, ctx } = a;
  const s = a.endpoint.stream!;
  const headers: Record<string, string> = {
    ...a.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  };
  const gzip = plan.gzip !== 'off';
  if (gzip) {
    headers['content-encoding'] = 'gzip';
    headers.vary = 'Accept-Encoding';
  }
  if (plan.lockstep !== null) headers['x-fake-stream-id'] = plan.lockstep;
  res.writeHead(200, headers);

  if (fault.kind === 'reset-after-headers') {
    res.flushHeaders();
    await drained(res);
    kill(res, true);
    return;
  }
  const sink = openSink(res, gzip);
  if (fault.kind === 'comment-then-reset') {
    sink.write(': ping\n\n');
    await sink.settle();
    kill(res, true);
    return;
  }
  if (fault.kind === 'error-in-200') {
    sink.write(s.error(ctx));
    sink.end();
    return;
  }
  if (fault.kind === 'error-after-start' || fault.kind === 'error-mid-stream') {
    const p = s.plan(ctx);
    for (const event of p.head) sink.write(event);
    if (fault.kind === 'error-mid-stream') sink.write(p.content[0] ?? '');
    sink.write(s.error(ctx));
    sink.end();
    return;
  }

  const p: StreamPlan = fault.kind === 'empty-choices' ? s.empty(ctx) : s.plan(ctx);
  let content = p.content;
  let rest = [...p.tail, ...p.terminal];
  let head = p.head;
  let end: StreamEnd = 'end';
  switch (fault.kind) {
    case 'no-terminal':
      rest = p.tail;
      break;
    case 'reset-mid-stream':
    case 'stall':
      content = content.slice(0, STREAM_CUT_AFTER);
      rest = [];
      end = fault.kind === 'stall' ? 'stall' : 'reset';
      break;
    case 'malformed-json':
      head = [malformedFrame(content[0] ?? head[0]), ...head];
      break;
    case 'bare-cr': {
      const cr = (frames: string[]): string[] => frames.map((f) => f.replace(/\r?\n/g, '\r'));
      [head, content, rest] = [cr(head), cr(content), cr(rest)];
      break;
    }
  }
  await runStream(a, sink, head, content, rest, end);
}

async function runStream(
  a: Answer,
  sink: ReturnType<typeof openSink>,
  head: string[],
  content: string[],
  rest: string[],
  end: StreamEnd,
): Promise<void> {
  const { plan, live, lockstep, res } = a;
  const id = plan.lockstep;
  if (plan.delayMs === 0 && id === null) {
    // Hot path: the whole stream in one write.
    sink.write(head.join('') + content.join('') + rest.join(''));
  } else {
    if (head.length) sink.write(head.join(''));
    for (let k = 0; k < content.length; k++) {
      if (id !== null && k > 0) await lockstep.wait(id, k);
      await pause(live, plan.delayMs);
      if (live.closed) return;
      sink.write(content[k]!);
    }
    if (rest.length) sink.write(rest.join(''));
  }
  if (id !== null && end !== 'stall') lockstep.release(id);
  if (end === 'end') sink.end();
  else if (end === 'reset') {
    await sink.settle();
    kill(res, true);
  }
}
