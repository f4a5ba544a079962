// Path (suffix) → endpoint. Any prefix works (/v1, /openai/v1, …); the dialect follows
// the path, and for paths both providers share (models, generic) the anthropic-version header.
import type { IncomingHttpHeaders } from 'node:http';
import { anthropicDialect, anthropicEndpoints } from './anthropic.ts';
import type { Endpoint } from './content.ts';
import { genericEndpoint, modelsEndpoint, openaiDialect, openaiEndpoints } from './openai.ts';

/** Whether the endpoint parses a JSON body (the generic one does so only for JSON content). */
export interface Route {
  endpoint: Endpoint;
  json: boolean;
}

const POST_SUFFIXES: ReadonlyArray<readonly [string, Route]> = [
  ['/chat/completions', { endpoint: openaiEndpoints.chatCompletions, json: true }],
  ['/completions', { endpoint: openaiEndpoints.completions, json: true }],
  ['/embeddings', { endpoint: openaiEndpoints.embeddings, json: true }],
  ['/moderations', { endpoint: openaiEndpoints.moderations, json: true }],
  ['/responses', { endpoint: openaiEndpoints.responses, json: true }],
  ['/messages', { endpoint: anthropicEndpoints.messages, json: true }],
  ['/messages/count_tokens', { endpoint: anthropicEndpoints.countTokens, json: true }],
];

const MODELS = {
  openai: { endpoint: modelsEndpoint(openaiDialect), json: false },
  anthropic: { endpoint: modelsEndpoint(anthropicDialect), json: false },
};
const GENERIC = {
  openai: { endpoint: genericEndpoint(openaiDialect), json: false },
  anthropic: { endpoint: genericEndpoint(anthropicDialect), json: false },
};

function stripSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

export function route(method: string, rawPath: string, headers: IncomingHttpHeaders): Route {
  const path = stripSlash(rawPath);
  if (method === 'POST') {
    for (const [suffix, r] of POST_SUFFIXES) if (path.endsWith(suffix)) return r;
  }
  const flavour = headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
  if (method === 'GET' && path.endsWith('/models')) return MODELS[flavour];
  return GENERIC[flavour];
}
