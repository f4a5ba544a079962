// What differs between API dialects: error shapes, how errors and bodies are classified,
// which SSE event ends a stream, and how a fallback rewrites the body.
import type { Outcome } from '../outcome.ts';
import type { SseData } from '../sse-data.ts';

/** Errors Breakwater itself produces. Each maps to one HTTP status (rescue.ts). */
export type OwnErrorKind =
  | 'breaker_open'
  /** a model-scoped throttle holds the model on every endpoint (429, the hold's Retry-After) */
  | 'model_held'
  /** every endpoint is held for a provider's Retry-After (429) */
  | 'endpoint_held'
  /** Breakwater's own limit (buffered request bytes) is full: 503 with Retry-After */
  | 'overloaded'
  | 'budget_exhausted'
  /** every endpoint is at its limit (bulkhead, rate limit) and the queue is full: shed (429) */
  | 'queue_full'
  /** every endpoint stayed at its limit until the queue's maxWait or the deadline (429) */
  | 'queue_timeout'
  /** every endpoint that could serve is at its client-side rate limit (429, Retry-After: until one has room) */
  | 'rate_limited'
  | 'deadline_exceeded'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'invalid_request'
  | 'forbidden'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'payload_too_large'
  | 'not_found'
  | 'shutting_down'
  | 'stream_broken'
  | 'internal';

/** What a path is for: emptiness means failure only where an answer must have content. */
export type PathKind = 'generation' | 'embeddings' | 'other';

export interface Usage {
  input: number;
  output: number;
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

/** usage objects in either naming (prompt/completion or input/output tokens) */
export function usageFrom(u: unknown): Usage | undefined {
  if (typeof u !== 'object' || u === null) return undefined;
  const o = u as Record<string, unknown>;
  const input = count(o.prompt_tokens ?? o.input_tokens);
  const output = count(o.completion_tokens ?? o.output_tokens);
  return input + output > 0 ? { input, output } : undefined;
}

export interface ErrorClassInput {
  status: number;
  /** the parsed error body, when it was JSON */
  body: unknown;
  retryAfterMs: number | undefined;
  /** what the request was for: a key failure holds the endpoint only on an inference path */
  path: PathKind;
}

/** generation and embeddings: the calls every key that serves the app must be able to make */
export function isInferencePath(path: PathKind): boolean {
  return path === 'generation' || path === 'embeddings';
}

export interface DialectRules {
  name: 'openai' | 'anthropic';
  /** JSON error body in this dialect's shape */
  errorBody(kind: OwnErrorKind, message: string, requestId: string): string;
  /** a complete SSE event the official SDK raises as an error */
  sseErrorEvent(kind: OwnErrorKind, message: string, requestId: string): string;
  /** an HTTP error status (>= 400) from the provider, as an outcome */
  classifyError(input: ErrorClassInput): Outcome;
  /** a 2xx JSON body that is not a real answer: the reason, else undefined */
  invalidBody(body: unknown, checks: { emptyChoices: boolean; errorInBody: boolean }, path: PathKind): string | undefined;
  /** SSE: does this event end the stream properly? (`data`: its first data line, as bytes) */
  isTerminalEvent(event: string | undefined, data: SseData): boolean;
  /**
   * SSE: does this event commit the stream (the status and held events go to the app)? Events
   * that only announce a message (Anthropic's message_start, content_block_start) do not, so a
   * provider that fails right after them can still be failed over.
   */
  commitsStream(event: string | undefined): boolean;
  /** SSE: is this event the provider reporting an error? */
  isErrorEvent(event: string | undefined, data: SseData): boolean;
  /** token usage in a JSON body or an SSE event's data, when it reports any */
  readUsage(body: unknown): Usage | undefined;
  /** body fields a fallback's maxTokens caps */
  maxTokenFields: readonly string[];
}
