// classify.ts and the dialects: one table per dialect of (status, body) -> outcome, transport
// errors by code (never by message), and 200 bodies that are not real answers.
import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { classifyHttpError, classifyJsonBody, classifyStreamError, classifyTransport } from '../../../src/proxy/classify.ts';
import { anthropic } from '../../../src/proxy/dialects/anthropic.ts';
import { DIALECTS } from '../../../src/proxy/dialects/index.ts';
import { openai } from '../../../src/proxy/dialects/openai.ts';
import { breakerVerdict, type Outcome } from '../../../src/proxy/outcome.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const openaiError = (type: string | null, code: string | null, message = 'x') => ({ error: { message, type, param: null, code } });
const anthropicError = (type: string, message = 'x') => ({ type: 'error', error: { type, message } });

type Row = [label: string, status: number, body: unknown, expected: Outcome];

describe('OpenAI errors', () => {
  const rows: Row[] = [
    ['429 rate_limit_exceeded (requests)', 429, openaiError('requests', 'rate_limit_exceeded'), { kind: 'throttled', status: 429, scope: 'model', retryAfterMs: undefined }],
    ['429 rate_limit_exceeded (tokens)', 429, openaiError('tokens', 'rate_limit_exceeded'), { kind: 'throttled', status: 429, scope: 'model', retryAfterMs: undefined }],
    ['429 insufficient_quota', 429, openaiError('insufficient_quota', 'insufficient_quota'), { kind: 'account', status: 429, reason: 'insufficient_quota' }],
    ['429 insufficient_quota named only by type', 429, openaiError('insufficient_quota', null), { kind: 'account', status: 429, reason: 'insufficient_quota' }],
    ['429 without a body', 429, undefined, { kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: undefined }],
    ['429 from a proxy (an HTML body)', 429, '<html>Too Many Requests</html>', { kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: undefined }],
    ['401 invalid_api_key', 401, openaiError('invalid_request_error', 'invalid_api_key'), { kind: 'account', status: 401, reason: 'invalid_api_key' }],
    ['401 without a body', 401, undefined, { kind: 'account', status: 401, reason: 'unauthorized' }],
    ['403 unsupported region', 403, openaiError('request_forbidden', 'unsupported_country_region_territory'), { kind: 'account', status: 403, reason: 'unsupported_country_region_territory' }],
    // issue 8: a 403 that does not say the key or account is unusable is this request's own fault: passed through, nothing held
    ['403 without a body', 403, undefined, { kind: 'client_fault', status: 403 }],
    ['403 permission (restricted key)', 403, openaiError('invalid_request_error', 'insufficient_permissions'), { kind: 'client_fault', status: 403 }],
    ['400 context_length_exceeded', 400, openaiError('invalid_request_error', 'context_length_exceeded'), { kind: 'client_fault', status: 400 }],
    ['400 invalid_request_error', 400, openaiError('invalid_request_error', null), { kind: 'client_fault', status: 400 }],
    ['404 model_not_found', 404, openaiError('invalid_request_error', 'model_not_found'), { kind: 'client_fault', status: 404 }],
    ['409', 409, undefined, { kind: 'client_fault', status: 409 }],
    ['413', 413, undefined, { kind: 'client_fault', status: 413 }],
    ['422', 422, openaiError('invalid_request_error', null), { kind: 'client_fault', status: 422 }],
    ['408', 408, undefined, { kind: 'server_error', status: 408, retryAfterMs: undefined }],
    ['500 server_error', 500, openaiError('server_error', null), { kind: 'server_error', status: 500, retryAfterMs: undefined }],
    ['502', 502, undefined, { kind: 'server_error', status: 502, retryAfterMs: undefined }],
    ['503', 503, openaiError('server_error', null), { kind: 'server_error', status: 503, retryAfterMs: undefined }],
    ['504', 504, undefined, { kind: 'server_error', status: 504, retryAfterMs: undefined }],
    ['529', 529, openaiError('server_error', null), { kind: 'throttled', status: 529, scope: 'endpoint', retryAfterMs: undefined }],
  ];
  it.each(rows)('%s', (_label, status, body, expected) => {
    expect(classifyHttpError(openai, status, {}, body, NOW, 'generation')).toEqual(expected);
  });

  it('carries the provider\'s wait on throttles and server errors', () => {
    expect(classifyHttpError(openai, 429, { 'retry-after': '20' }, openaiError('requests', 'rate_limit_exceeded'), NOW, 'generation')).toMatchObject({ scope: 'model', retryAfterMs: 20_000 });
    expect(classifyHttpError(openai, 503, { 'retry-after-ms': '1500' }, undefined, NOW, 'generation')).toMatchObject({ kind: 'server_error', retryAfterMs: 1500 });
    expect(classifyHttpError(openai, 429, { 'x-ms-retry-after-ms': '700' }, undefined, NOW, 'generation')).toMatchObject({ scope: 'endpoint', retryAfterMs: 700 });
  });
});

describe('Anthropic errors', () => {
  const rows: Row[] = [
    ['529 overloaded_error', 529, anthropicError('overloaded_error', 'Overloaded'), { kind: 'throttled', status: 529, scope: 'model', retryAfterMs: undefined }],
    ['529 without a body', 529, undefined, { kind: 'throttled', status: 529, scope: 'model', retryAfterMs: undefined }],
    ['overloaded_error under another status', 503, anthropicError('overloaded_error'), { kind: 'throttled', status: 503, scope: 'model', retryAfterMs: undefined }],
    ['429 rate_limit_error', 429, anthropicError('rate_limit_error'), { kind: 'throttled', status: 429, scope: 'endpoint', retryAfterMs: undefined }],
    [
      '400 credit balance too low',
      400,
      anthropicError('invalid_request_error', 'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.'),
      { kind: 'account', status: 400, reason: 'credit balance too low' },
    ],
    ['400 prompt too long', 400, anthropicError('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'), { kind: 'client_fault', status: 400 }],
    ['401 authentication_error', 401, anthropicError('authentication_error', 'invalid x-api-key'), { kind: 'account', status: 401, reason: 'authentication_error' }],
    ['401 without a body', 401, undefined, { kind: 'account', status: 401, reason: 'unauthorized' }],
    // issue 8: a permission_error is about this request (a scoped key, an admin path): passed through, nothing held
    ['403 permission_error', 403, anthropicError('permission_error'), { kind: 'client_fault', status: 403 }],
    ['404 not_found_error', 404, anthropicError('not_found_error'), { kind: 'client_fault', status: 404 }],
    ['413 request_too_large', 413, anthropicError('request_too_large'), { kind: 'client_fault', status: 413 }],
    ['408', 408, undefined, { kind: 'server_error', status: 408, retryAfterMs: undefined }],
    ['500 api_error', 500, anthropicError('api_error'), { kind: 'server_error', status: 500, retryAfterMs: undefined }],
    ['502', 502, undefined, { kind: 'server_error', status: 502, retryAfterMs: undefined }],
    ['504', 504, undefined, { kind: 'server_error', status: 504, retryAfterMs: undefined }],
  ];
  it.each(rows)('%s', (_label, status, body, expected) => {
    expect(classifyHttpError(anthropic, status, {}, body, NOW, 'generation')).toEqual(expected);
  });

  it('carries the provider\'s wait', () => {
    expect(classifyHttpError(anthropic, 429, { 'retry-after': '7' }, anthropicError('rate_limit_error'), NOW, 'generation')).toMatchObject({ retryAfterMs: 7000 });
    expect(classifyHttpError(anthropic, 529, { 'retry-after': '3' }, anthropicError('overloaded_error'), NOW, 'generation')).toMatchObject({ scope: 'model', retryAfterMs: 3000 });
  });
});

describe('classifyTransport', () => {
  it.each([
    ['undici ConnectTimeoutError', new errors.ConnectTimeoutError(), { kind: 'timeout', phase: 'connect' }],
    ['undici HeadersTimeoutError', new errors.HeadersTimeoutError(), { kind: 'timeout', phase: 'firstByte' }],
    ['undici BodyTimeoutError', new errors.BodyTimeoutError(), { kind: 'timeout', phase: 'idle' }],
    ['undici SocketError', new errors.SocketError('other side closed'), { kind: 'connect', code: 'UND_ERR_SOCKET' }],
    ['undici ClientDestroyedError', new errors.ClientDestroyedError(), { kind: 'connect', code: 'UND_ERR_DESTROYED' }],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), { kind: 'connect', code: 'ECONNREFUSED' }],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), { kind: 'connect', code: 'ECONNRESET' }],
    ['ENOTFOUND', Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), { kind: 'connect', code: 'ENOTFOUND' }],
    ['CERT_HAS_EXPIRED', Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }), { kind: 'connect', code: 'CERT_HAS_EXPIRED' }],
    ['Z_DATA_ERROR', Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR' }), { kind: 'invalid_response', reason: 'corrupt compressed body' }],
    ['an unknown code', Object.assign(new Error('?'), { code: 'EWEIRD' }), { kind: 'connect', code: 'EWEIRD' }],
    ['undici HeadersOverflowError (provider headers over the limit)', new errors.HeadersOverflowError(), { kind: 'invalid_response', reason: 'response headers over the limit' }],
    ['EMFILE (Breakwater out of file descriptors)', Object.assign(new Error('connect EMFILE'), { code: 'EMFILE' }), { kind: 'internal', code: 'EMFILE' }],
    ['ENFILE', Object.assign(new Error('ENFILE'), { code: 'ENFILE' }), { kind: 'internal', code: 'ENFILE' }],
    ['ENOMEM', Object.assign(new Error('ENOMEM'), { code: 'ENOMEM' }), { kind: 'internal', code: 'ENOMEM' }],
    ['no code', new Error('boom'), { kind: 'connect', code: 'unknown' }],
    ['a thrown string', 'boom', { kind: 'connect', code: 'unknown' }],
    ['undefined', undefined, { kind: 'connect', code: 'unknown' }],
  ] as [string, unknown, Outcome][])('%s', (_label, error, expected) => {
    expect(classifyTransport(error, undefined)).toEqual(expected);
  });

  it('EMFILE, ENFILE, ENOMEM and ENOBUFS are internal (this process ran out), never charged to the provider', () => {
    for (const code of ['EMFILE', 'ENFILE', 'ENOMEM', 'ENOBUFS']) {
      const outcome = classifyTransport(Object.assign(new Error(`connect ${code}`), { code, syscall: 'connect' }), undefined);
      expect(outcome, code).toEqual({ kind: 'internal', code });
      expect(breakerVerdict(outcome, new Set(['throttled', 'server_error', 'timeout', 'connect', 'invalid_response'])), code).toBe('ignore');
    }
  });

  it('decides by code, never by message', () => {
    expect(classifyTransport(new Error('Connect Timeout Error ETIMEDOUT'), undefined)).toEqual({ kind: 'connect', code: 'unknown' });
  });

  it('lets Breakwater\'s own abort cause win over whatever error the abort produced', () => {
    const aborted = new errors.RequestAbortedError();
    expect(classifyTransport(aborted, { kind: 'timeout', phase: 'firstByte' })).toEqual({ kind: 'timeout', phase: 'firstByte' });
    expect(classifyTransport(aborted, { kind: 'timeout', phase: 'idle' })).toEqual({ kind: 'timeout', phase: 'idle' });
    expect(classifyTransport(aborted, { kind: 'cancelled', reason: 'client_disconnected' })).toEqual({ kind: 'cancelled', reason: 'client_disconnected' });
    expect(classifyTransport(new errors.ConnectTimeoutError(), { kind: 'cancelled', reason: 'deadline' })).toEqual({ kind: 'cancelled', reason: 'deadline' });
  });
});

describe('classifyJsonBody', () => {
  const ON = { emptyChoices: true, errorInBody: true };
  const OFF = { emptyChoices: false, errorInBody: false };
  const chat = (choices: unknown[]) => JSON.stringify({ id: 'c', object: 'chat.completion', choices });
  const message = (content: unknown[]) => JSON.stringify({ id: 'm', type: 'message', role: 'assistant', content });

  it.each([
    ['openai', 'a chat completion', chat([{ index: 0, message: { role: 'assistant', content: 'hi' } }]), ON, { kind: 'ok' }],
    ['openai', 'malformed JSON', '{"id": "c", "choices": [', ON, { kind: 'invalid_response', reason: 'malformed JSON body' }],
    ['openai', 'an empty body', '', ON, { kind: 'invalid_response', reason: 'malformed JSON body' }],
    ['openai', 'a JSON string', '"ok"', ON, { kind: 'invalid_response', reason: 'body is not a JSON object' }],
    ['openai', 'null', 'null', ON, { kind: 'invalid_response', reason: 'body is not a JSON object' }],
    ['openai', 'empty choices', chat([]), ON, { kind: 'invalid_response', reason: 'empty choices' }],
    ['openai', 'a chat completion without choices', JSON.stringify({ object: 'chat.completion' }), ON, { kind: 'invalid_response', reason: 'no choices' }],
    ['openai', 'an embeddings list', JSON.stringify({ object: 'list', data: [{ embedding: [0.1] }] }), ON, { kind: 'ok' }],
    ['openai', 'an error in a 200', JSON.stringify(openaiError('server_error', null)), ON, { kind: 'invalid_response', reason: 'error object in a 200 body' }],
    ['openai', 'error: null', JSON.stringify({ object: 'chat.completion', choices: [{}], error: null }), ON, { kind: 'ok' }],
    ['openai', 'empty choices, check off', chat([]), OFF, { kind: 'ok' }],
    ['openai', 'an error in a 200, check off', JSON.stringify(openaiError('server_error', null)), OFF, { kind: 'ok' }],
    ['openai', 'malformed JSON, checks off', '{', OFF, { kind: 'invalid_response', reason: 'malformed JSON body' }],
    ['anthropic', 'a message', message([{ type: 'text', text: 'hi' }]), ON, { kind: 'ok' }],
    ['anthropic', 'empty content', message([]), ON, { kind: 'invalid_response', reason: 'empty content' }],
    ['anthropic', 'an error in a 200', JSON.stringify(anthropicError('overloaded_error')), ON, { kind: 'invalid_response', reason: 'error object in a 200 body' }],
    ['anthropic', 'malformed JSON', '{"type": "message"', ON, { kind: 'invalid_response', reason: 'malformed JSON body' }],
    ['anthropic', 'empty content, check off', message([]), OFF, { kind: 'ok' }],
  ] as const)('%s: %s', (dialect, _label, text, checks, expected) => {
    expect(classifyJsonBody(DIALECTS[dialect], text, checks, 'generation').outcome).toEqual(expected);
  });

  it('treats an empty list as a fine answer except for embeddings', () => {
    const empty = JSON.stringify({ object: 'list', data: [] });
    expect(classifyJsonBody(openai, empty, ON, 'other').outcome).toEqual({ kind: 'ok' });
    expect(classifyJsonBody(openai, empty, ON, 'embeddings').outcome).toEqual({ kind: 'invalid_response', reason: 'empty data' });
  });

  it('hands back the parsed body, so it is parsed once', () => {
    const text = chat([{ index: 0 }]);
    expect(classifyJsonBody(openai, text, ON, 'generation').body).toEqual(JSON.parse(text));
    expect(classifyJsonBody(openai, '{', ON, 'generation').body).toBeUndefined();
  });
});

describe('readUsage', () => {
  it.each([
    ['openai', 'a chat completion', { object: 'chat.completion', usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } }, { input: 12, output: 30 }],
    ['openai', 'embeddings', { object: 'list', data: [], usage: { prompt_tokens: 8, total_tokens: 8 } }, { input: 8, output: 0 }],
    ['openai', 'a Responses API response.completed event', { type: 'response.completed', response: { usage: { input_tokens: 5, output_tokens: 7 } } }, { input: 5, output: 7 }],
    ['openai', 'a stream chunk without usage', { object: 'chat.completion.chunk', choices: [] }, undefined],
    ['openai', 'usage: null', { usage: null }, undefined],
    ['openai', 'all zeros', { usage: { prompt_tokens: 0, completion_tokens: 0 } }, undefined],
    ['openai', 'garbage counts', { usage: { prompt_tokens: -3, completion_tokens: 'many' } }, undefined],
    ['anthropic', 'a message', { type: 'message', usage: { input_tokens: 20, output_tokens: 4 } }, { input: 20, output: 4 }],
    ['anthropic', 'message_start', { type: 'message_start', message: { usage: { input_tokens: 25, output_tokens: 1 } } }, { input: 25, output: 1 }],
    ['anthropic', 'message_delta', { type: 'message_delta', usage: { output_tokens: 15 } }, { input: 0, output: 15 }],
    ['anthropic', 'a ping', { type: 'ping' }, undefined],
  ] as const)('%s: %s', (dialect, _label, body, expected) => {
    expect(DIALECTS[dialect].readUsage(body)).toEqual(expected);
  });
});

describe('key failures hold only on inference paths (issue 8, defect 2)', () => {
  it('a 401 or a permission 403 on a non-inference path holds nothing: it is passed through', () => {
    expect(classifyHttpError(openai, 401, {}, openaiError('invalid_request_error', 'invalid_api_key'), NOW, 'other')).toEqual({ kind: 'client_fault', status: 401 });
    expect(classifyHttpError(openai, 403, {}, openaiError('invalid_request_error', 'insufficient_permissions'), NOW, 'other')).toEqual({ kind: 'client_fault', status: 403 });
    expect(classifyHttpError(anthropic, 403, {}, anthropicError('permission_error'), NOW, 'other')).toEqual({ kind: 'client_fault', status: 403 });
  });

  it('a 401 on an inference path is a key failure', () => {
    expect(classifyHttpError(openai, 401, {}, openaiError('invalid_request_error', 'invalid_api_key'), NOW, 'embeddings')).toMatchObject({ kind: 'account' });
    expect(classifyHttpError(anthropic, 401, {}, anthropicError('authentication_error'), NOW, 'generation')).toMatchObject({ kind: 'account' });
  });
});

describe('classifyStreamError: SSE error events through the dialect (issue 8)', () => {
  it('a streamed Anthropic overloaded_error is a model-scoped throttle', () => {
    expect(classifyStreamError(anthropic, JSON.stringify(anthropicError('overloaded_error')), 'generation')).toEqual({ kind: 'throttled', status: 500, scope: 'model', retryAfterMs: undefined });
  });

  it('a streamed OpenAI rate_limit_exceeded is a model-scoped throttle', () => {
    expect(classifyStreamError(openai, JSON.stringify(openaiError('requests', 'rate_limit_exceeded')), 'generation')).toMatchObject({ kind: 'throttled', scope: 'model' });
  });

  it('any other error event is the provider\'s failure, never the request\'s', () => {
    expect(classifyStreamError(openai, JSON.stringify(openaiError('invalid_request_error', null)), 'generation')).toEqual({ kind: 'server_error', status: 500, retryAfterMs: undefined });
    expect(classifyStreamError(openai, 'not json', 'generation')).toEqual({ kind: 'server_error', status: 500, retryAfterMs: undefined });
  });
});
