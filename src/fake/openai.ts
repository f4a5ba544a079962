// OpenAI dialect: error bodies and the endpoints (chat completions, legacy completions,
// embeddings, models, moderations, Responses API, generic). Bodies are built with
// template strings around pre-serialised pieces: this is the benchmark hot path.
import type { ErrorFlavor } from './faults.ts';
import {
  EMBEDDING,
  fullText,
  pieceJson,
  sseData,
  sseEvent,
  type Ctx,
  type Dialect,
  type Endpoint,
  type StreamPlan,
} from './content.ts';

interface OpenAIErrorShape {
  type: string;
  code: string | null;
  param: string | null;
  message: (ctx: Ctx) => string;
}

const ERRORS: Record<ErrorFlavor, OpenAIErrorShape> = {
  rate_limit: {
    type: 'requests',
    code: 'rate_limit_exceeded',
    param: null,
    message: (c) =>
      `Rate limit reached for ${c.model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.`,
  },
  quota: {
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    param: null,
    message: () =>
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
  },
  context: {
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    param: 'messages',
    message: () =>
      "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens. Please reduce the length of the messages.",
  },
  invalid: { type: 'invalid_request_error', code: null, param: null, message: () => 'Invalid request.' },
  auth: {
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    param: null,
    message: () => 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
  },
  permission: {
    type: 'invalid_request_error',
    code: 'permission_denied',
    param: null,
    message: () => 'You are not allowed to perform this request.',
  },
  not_found: {
    type: 'invalid_request_error',
    code: 'model_not_found',
    param: null,
    message: (c) => `The model \`${c.model}\` does not exist or you do not have access to it.`,
  },
  too_large: { type: 'invalid_request_error', code: 'request_too_large', param: null, message: () => 'Request too large.' },
  unprocessable: { type: 'invalid_request_error', code: null, param: null, message: () => 'Unprocessable request.' },
  server: {
    type: 'server_error',
    code: null,
    param: null,
    message: () => 'The server had an error while processing your request. Sorry about that!',
  },
  overloaded: {
    type: 'server_error',
    code: 'overloaded',
    param: null,
    message: () => 'The server is overloaded, please try again later.',
  },
};

/** The inner `error` object, serialised. */
function errorObject(flavor: ErrorFlavor, ctx: Ctx, message?: string): string {
  const e = ERRORS[flavor];
  return JSON.stringify({ message: message ?? e.message(ctx), type: e.type, param: e.param, code: e.code });
}

export const openaiDialect: Dialect = {
  name: 'openai',
  error(flavor, status, ctx, message) {
    return { status, body: `{"error":${errorObject(flavor, ctx, message)}}` };
  },
  headers(ctx) {
    return { 'x-request-id': `req_fake${ctx.n}` };
  },
};

const usageJson = (ctx: Ctx): string =>
  `{"prompt_tokens":${ctx.promptTokens},"completion_tokens":${ctx.events},"total_tokens":${ctx.promptTokens + ctx.events},"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`;

// ---- chat completions -------------------------------------------------------------

function includeUsage(ctx: Ctx): boolean {
  const so = ctx.body.stream_options as { include_usage?: unknown } | undefined;
  return so?.include_usage === true;
}

function chatPlan(ctx: Ctx, empty: boolean): StreamPlan {
  const withUsage = includeUsage(ctx);
  const pre = `{"id":"chatcmpl-fake${ctx.n}","object":"chat.completion.chunk","created":${ctx.created},"model":${ctx.modelJson},"service_tier":"default","system_fingerprint":null,"choices":[`;
  const post = withUsage ? '],"usage":null}' : ']}';
  const chunk = (choice: string): string => sseData(pre + choice + post);
  const choice = (delta: string, finish: string): string =>
    `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}`;
  const usage = withUsage ? [sseData(`${pre}],"usage":${usageJson(ctx)}}`)] : [];
  if (empty) return { head: [chunk('')], content: [], tail: usage, terminal: ['data: [DONE]\n\n'] };
  const content: string[] = new Array(ctx.events);
  for (let i = 0; i < ctx.events; i++) content[i] = chunk(choice(`{"content":${pieceJson(i)}}`, 'null'));
  return {
    head: [chunk(choice('{"role":"assistant","content":"","refusal":null}', 'null'))],
    content,
    tail: [chunk(choice('{}', '"stop"')), ...usage],
    terminal: ['data: [DONE]\n\n'],
  };
}

function chatJson(ctx: Ctx, choices: string): string {
  return `{"id":"chatcmpl-fake${ctx.n}","object":"chat.completion","created":${ctx.created},"model":${ctx.modelJson},"choices":[${choices}],"usage":${usageJson(ctx)},"service_tier":"default","system_fingerprint":null}`;
}

const streamError = (ctx: Ctx): string => sseData(`{"error":${errorObject('server', ctx)}}`);

const chatCompletions: Endpoint = {
  dialect: openaiDialect,
  json: (ctx) =>
    chatJson(
      ctx,
      `{"index":0,"message":{"role":"assistant","content":${JSON.stringify(fullText(ctx.events))},"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}`,
    ),
  empty: (ctx) => chatJson(ctx, ''),
  stream: { plan: (ctx) => chatPlan(ctx, false), empty: (ctx) => chatPlan(ctx, true), error: streamError },
};

// ---- legacy completions -----------------------------------------------------------

function completionsPlan(ctx: Ctx, empty: boolean): StreamPlan {
  const pre = `{"id":"cmpl-fake${ctx.n}","object":"text_completion","created":${ctx.created},"model":${ctx.modelJson},"choices":[`;
  const chunk = (choice: string): string => sseData(`${pre}${choice}]}`);
  if (empty) return { head: [chunk('')], content: [], tail: [], terminal: ['data: [DONE]\n\n'] };
  const content: string[] = new Array(ctx.events);
  for (let i = 0; i < ctx.events; i++) {
    content[i] = chunk(`{"text":${pieceJson(i)},"index":0,"logprobs":null,"finish_reason":null}`);
  }
  return {
    head: [],
    content,
    tail: [chunk('{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}')],
    terminal: ['data: [DONE]\n\n'],
  };
}

function completionsJson(ctx: Ctx, choices: string): string {
  return `{"id":"cmpl-fake${ctx.n}","object":"text_completion","created":${ctx.created},"model":${ctx.modelJson},"choices":[${choices}],"usage":{"prompt_tokens":${ctx.promptTokens},"completion_tokens":${ctx.events},"total_tokens":${ctx.promptTokens + ctx.events}}}`;
}

const completions: Endpoint = {
  dialect: openaiDialect,
  json: (ctx) =>
    completionsJson(
      ctx,
      `{"text":${JSON.stringify(fullText(ctx.events))},"index":0,"logprobs":null,"finish_reason":"stop"}`,
    ),
  empty: (ctx) => completionsJson(ctx, ''),
  stream: {
    plan: (ctx) => completionsPlan(ctx, false),
    empty: (ctx) => completionsPlan(ctx, true),
    error: streamError,
  },
};

// ---- embeddings -------------------------------------------------------------------

const EMBEDDING_FLOATS = JSON.stringify(EMBEDDING);
const EMBEDDING_BASE64 = JSON.stringify(Buffer.from(new Float32Array(EMBEDDING).buffer).toString('base64'));

function embeddingsJson(ctx: Ctx, empty: boolean): string {
  const input = ctx.body.input;
  const count = empty
    ? 0
    : Array.isArray(input) && input.length > 0 && typeof input[0] !== 'number'
      ? Math.min(input.length, 2048)
      : 1;
  const vec = ctx.body.encoding_format === 'base64' ? EMBEDDING_BASE64 : EMBEDDING_FLOATS;
  let data = '';
  for (let i = 0; i < count; i++) {
    data += `${i ? ',' : ''}{"object":"embedding","index":${i},"embedding":${vec}}`;
  }
  return `{"object":"list","data":[${data}],"model":${ctx.modelJson},"usage":{"prompt_tokens":${ctx.promptTokens},"total_tokens":${ctx.promptTokens}}}`;
}

const embeddings: Endpoint = {
  dialect: openaiDialect,
  json: (ctx) => embeddingsJson(ctx, false),
  empty: (ctx) => embeddingsJson(ctx, true),
};

// ---- models (GET) ------------------------------------------------------------------
// One list shape that both SDKs accept (OpenAI `object`/`owned_by`, Anthropic `type`/`display_name`).

const MODEL_IDS = ['gpt-4.1', 'gpt-4.1-mini', 'gpt-4o-mini', 'text-embedding-3-small', 'claude-sonnet-4-6', 'claude-haiku-4-5'];
const MODELS_JSON = JSON.stringify({
  object: 'list',
  data: MODEL_IDS.map((id) => ({
    id,
    object: 'model',
    type: 'model',
    created: 1_700_000_000,
    created_at: '2025-01-01T00:00:00Z',
    owned_by: 'breakwater-fake',
    display_name: id,
  })),
  has_more: false,
  first_id: MODEL_IDS[0],
  last_id: MODEL_IDS[MODEL_IDS.length - 1],
});
const EMPTY_MODELS_JSON = '{"object":"list","data":[],"has_more":false,"first_id":null,"last_id":null}';

export const modelsEndpoint = (dialect: Dialect): Endpoint => ({
  dialect,
  json: () => MODELS_JSON,
  empty: () => EMPTY_MODELS_JSON,
});

// ---- moderations ------------------------------------------------------------------

const CATEGORIES = ['harassment', 'hate', 'self-harm', 'sexual', 'violence'];
const MODERATION_RESULT = JSON.stringify({
  flagged: false,
  categories: Object.fromEntries(CATEGORIES.map((c) => [c, false])),
  category_scores: Object.fromEntries(CATEGORIES.map((c) => [c, 0.0001])),
});

const moderations: Endpoint = {
  dialect: openaiDialect,
  json: (ctx) => `{"id":"modr-fake${ctx.n}","model":${ctx.modelJson},"results":[${MODERATION_RESULT}]}`,
  empty: (ctx) => `{"id":"modr-fake${ctx.n}","model":${ctx.modelJson},"results":[]}`,
};

// ---- Responses API ----------------------------------------------------------------

const outputTextPart = (textJson: string): string =>
  `{"type":"output_text","annotations":[],"logprobs":[],"text":${textJson}}`;

function messageItem(ctx: Ctx, status: string, content: string): string {
  return `{"id":"msg_fake${ctx.n}","type":"message","status":"${status}","content":[${content}],"role":"assistant"}`;
}

function responseObject(ctx: Ctx, status: string, output: string, usage: boolean): string {
  const u = usage
    ? `{"input_tokens":${ctx.promptTokens},"input_tokens_details":{"cached_tokens":0},"output_tokens":${ctx.events},"output_tokens_details":{"reasoning_tokens":0},"total_tokens":${ctx.promptTokens + ctx.events}}`
    : 'null';
  return `{"id":"resp_fake${ctx.n}","object":"response","created_at":${ctx.created},"status":"${status}","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":${ctx.modelJson},"output":[${output}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"service_tier":"default","store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":${u},"user":null,"metadata":{}}`;
}

function responsesPlan(ctx: Ctx, empty: boolean): StreamPlan {
  let seq = 0;
  const ev = (type: string, rest: string): string => sseEvent(type, `{"type":"${type}","sequence_number":${seq++}${rest}}`);
  const created = ev('response.created', `,"response":${responseObject(ctx, 'in_progress', '', false)}`);
  const inProgress = ev('response.in_progress', `,"response":${responseObject(ctx, 'in_progress', '', false)}`);
  if (empty) {
    return {
      head: [created, inProgress],
      content: [],
      tail: [],
      terminal: [ev('response.completed', `,"response":${responseObject(ctx, 'completed', '', true)}`)],
    };
  }
  const loc = `,"item_id":"msg_fake${ctx.n}","output_index":0,"content_index":0`;
  const head = [
    created,
    inProgress,
    ev('response.output_item.added', `,"output_index":0,"item":${messageItem(ctx, 'in_progress', '')}`),
    ev('response.content_part.added', `${loc},"part":${outputTextPart('""')}`),
  ];
  const content: string[] = new Array(ctx.events);
  for (let i = 0; i < ctx.events; i++) {
    content[i] = ev('response.output_text.delta', `${loc},"delta":${pieceJson(i)},"logprobs":[]`);
  }
  const textJson = JSON.stringify(fullText(ctx.events));
  const item = messageItem(ctx, 'completed', outputTextPart(textJson));
  const tail = [
    ev('response.output_text.done', `${loc},"text":${textJson},"logprobs":[]`),
    ev('response.content_part.done', `${loc},"part":${outputTextPart(textJson)}`),
    ev('response.output_item.done', `,"output_index":0,"item":${item}`),
  ];
  const terminal = [ev('response.completed', `,"response":${responseObject(ctx, 'completed', item, true)}`)];
  return { head, content, tail, terminal };
}

const responses: Endpoint = {
  dialect: openaiDialect,
  json: (ctx) =>
    responseObject(ctx, 'completed', messageItem(ctx, 'completed', outputTextPart(JSON.stringify(fullText(ctx.events)))), true),
  empty: (ctx) => responseObject(ctx, 'completed', '', true),
  stream: {
    plan: (ctx) => responsesPlan(ctx, false),
    empty: (ctx) => responsesPlan(ctx, true),
    error: (ctx) =>
      sseEvent(
        'error',
        `{"type":"error","code":"server_error","message":${JSON.stringify(ERRORS.server.message(ctx))},"param":null,"sequence_number":0}`,
      ),
  },
};

// ---- anything else ----------------------------------------------------------------

function objectName(segment: string): string {
  if (segment.endsWith('es') && /(ch|sh|x|ss)es$/.test(segment)) return segment.slice(0, -2);
  return segment.endsWith('s') ? segment.slice(0, -1) : segment || 'object';
}

export const genericEndpoint = (dialect: Dialect): Endpoint => ({
  dialect,
  json: (ctx) => {
    const object = objectName(ctx.lastSegment);
    return `{"id":${JSON.stringify(`${object}_fake${ctx.n}`)},"object":${JSON.stringify(object)},"created_at":${ctx.created}}`;
  },
  empty: () => '{}',
});

export const openaiEndpoints = { chatCompletions, completions, embeddings, moderations, responses };
