// Anthropic dialect: error bodies and the Messages API (JSON and the exact SSE wire format).
import type { ErrorFlavor } from './faults.ts';
import { fullText, pieceJson, sseEvent, type Ctx, type Dialect, type Endpoint, type StreamPlan } from './content.ts';

interface AnthropicErrorShape {
  /** HTTP status override (Anthropic answers an empty credit balance with 400). */
  status?: number;
  type: string;
  message: (ctx: Ctx) => string;
}

const ERRORS: Record<ErrorFlavor, AnthropicErrorShape> = {
  rate_limit: {
    type: 'rate_limit_error',
    message: () =>
      'This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.',
  },
  quota: {
    status: 400,
    type: 'invalid_request_error',
    message: () =>
      'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
  },
  context: { type: 'invalid_request_error', message: () => 'prompt is too long: 210000 tokens > 200000 maximum' },
  invalid: { type: 'invalid_request_error', message: () => 'Invalid request.' },
  auth: { type: 'authentication_error', message: () => 'invalid x-api-key' },
  permission: {
    type: 'permission_error',
    message: () => 'Your API key does not have permission to use the specified resource.',
  },
  not_found: { type: 'not_found_error', message: (c) => `model: ${c.model}` },
  too_large: { type: 'request_too_large', message: () => 'Request exceeds the maximum allowed number of bytes.' },
  unprocessable: { type: 'invalid_request_error', message: () => 'Unprocessable request.' },
  server: { type: 'api_error', message: () => 'Internal server error' },
  overloaded: { type: 'overloaded_error', message: () => 'Overloaded' },
};

function errorBody(flavor: ErrorFlavor, ctx: Ctx, message?: string): string {
  const e = ERRORS[flavor];
  return `{"type":"error","error":{"type":"${e.type}","message":${JSON.stringify(message ?? e.message(ctx))}},"request_id":"req_fake${ctx.n}"}`;
}

export const anthropicDialect: Dialect = {
  name: 'anthropic',
  error(flavor, status, ctx, message) {
    return { status: ERRORS[flavor].status ?? status, body: errorBody(flavor, ctx, message) };
  },
  headers(ctx) {
    return { 'request-id': `req_fake${ctx.n}`, 'x-request-id': `req_fake${ctx.n}` };
  },
};

function messageJson(ctx: Ctx, content: string, stopReason: string, outputTokens: number): string {
  return `{"id":"msg_fake${ctx.n}","type":"message","role":"assistant","model":${ctx.modelJson},"content":[${content}],"stop_reason":${stopReason},"stop_sequence":null,"usage":{"input_tokens":${ctx.promptTokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":${outputTokens},"service_tier":"standard"}}`;
}

function messagesPlan(ctx: Ctx, empty: boolean): StreamPlan {
  const start = sseEvent('message_start', `{"type":"message_start","message":${messageJson(ctx, '', 'null', 1)}}`);
  const ping = sseEvent('ping', '{"type": "ping"}');
  const outputTokens = empty ? 0 : ctx.events;
  const delta = sseEvent(
    'message_delta',
    `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":${ctx.promptTokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":${outputTokens}}}`,
  );
  const stop = sseEvent('message_stop', '{"type":"message_stop"}');
  if (empty) return { head: [start, ping], content: [], tail: [delta], terminal: [stop] };
  const content: string[] = new Array(ctx.events);
  for (let i = 0; i < ctx.events; i++) {
    content[i] = sseEvent(
      'content_block_delta',
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${pieceJson(i)}}}`,
    );
  }
  return {
    head: [
      start,
      sseEvent('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
      ping,
    ],
    content,
    tail: [sseEvent('content_block_stop', '{"type":"content_block_stop","index":0}'), delta],
    terminal: [stop],
  };
}

const messages: Endpoint = {
  dialect: anthropicDialect,
  json: (ctx) =>
    messageJson(ctx, `{"type":"text","text":${JSON.stringify(fullText(ctx.events))}}`, '"end_turn"', ctx.events),
  empty: (ctx) => messageJson(ctx, '', '"end_turn"', 0),
  stream: {
    plan: (ctx) => messagesPlan(ctx, false),
    empty: (ctx) => messagesPlan(ctx, true),
    error: (ctx) => sseEvent('error', errorBody('overloaded', ctx)),
  },
};

const countTokens: Endpoint = {
  dialect: anthropicDialect,
  json: (ctx) => `{"input_tokens":${ctx.promptTokens}}`,
  empty: () => '{}',
};

export const anthropicEndpoints = { messages, countTokens };
