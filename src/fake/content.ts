// Shared shapes for the dialect modules: the per-request context, the stream plan,
// the endpoint contract, and the canned text the fake "generates".
import type { ErrorFlavor } from './faults.ts';

export type DialectName = 'openai' | 'anthropic';

/** What a dialect builder needs to know about one request. */
export interface Ctx {
  /** Body `model` (echoed back), or a default. */
  model: string;
  /** JSON.stringify(model), computed once. */
  modelJson: string;
  /** Request number on this fake; used in ids. */
  n: number;
  /** Unix seconds. */
  created: number;
  /** Number of content events (and completion tokens). */
  events: number;
  promptTokens: number;
  /** Parsed JSON body ({} when none). */
  body: Record<string, unknown>;
  /** Last path segment (used by the generic answer). */
  lastSegment: string;
}

/**
 * A stream as SSE frames (each a complete `...\n\n` string). Faults cut or bend it:
 * `content` holds the content events (lockstep gates these), `terminal` the terminal
 * event(s) that a clean end carries.
 */
export interface StreamPlan {
  head: string[];
  content: string[];
  tail: string[];
  terminal: string[];
}

export interface ErrorAnswer {
  status: number;
  body: string;
}

export interface Dialect {
  readonly name: DialectName;
  /** The dialect's error body (and status: a dialect may answer a flavour with another code). */
  error(flavor: ErrorFlavor, status: number, ctx: Ctx, message?: string): ErrorAnswer;
  /** Extra headers on every response (request ids…). */
  headers(ctx: Ctx): Record<string, string>;
}

/** One provider operation (chat completions, messages, embeddings…). */
export interface Endpoint {
  readonly dialect: Dialect;
  /** The normal JSON answer. */
  json(ctx: Ctx): string;
  /** The `empty-choices` JSON answer. */
  empty(ctx: Ctx): string;
  /** Streaming, when this endpoint can stream. */
  stream?: {
    plan(ctx: Ctx): StreamPlan;
    empty(ctx: Ctx): StreamPlan;
    /** An SSE frame carrying the dialect's error (for `error-in-200`). */
    error(ctx: Ctx): string;
  };
}

const WORDS = [
  'Hello', ' from', ' the', ' Breakwater', ' fake', ' provider.', ' The', ' quick', ' brown', ' fox',
  ' jumps', ' over', ' the', ' lazy', ' dog.',
];

/** Content piece i, and its JSON string form (precomputed: the hot path only concatenates). */
export const piece = (i: number): string => WORDS[i % WORDS.length]!;
const PIECE_JSON = WORDS.map((w) => JSON.stringify(w));
export const pieceJson = (i: number): string => PIECE_JSON[i % PIECE_JSON.length]!;

const textCache = new Map<number, string>();
/** The full text of an answer with `events` pieces. */
export function fullText(events: number): string {
  let t = textCache.get(events);
  if (t === undefined) {
    t = '';
    for (let i = 0; i < events; i++) t += piece(i);
    if (textCache.size < 256) textCache.set(events, t);
  }
  return t;
}

export const sseData = (json: string): string => `data: ${json}\n\n`;
export const sseEvent = (event: string, json: string): string => `event: ${event}\ndata: ${json}\n\n`;

/** A deterministic fake embedding vector (8 floats). */
export const EMBEDDING = [0.0123, -0.0456, 0.0789, -0.0012, 0.0345, -0.0678, 0.0901, -0.0234];
