// Shared helpers for the fake-provider tests.
import { gunzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { waitFor as sharedWaitFor } from '../../support/wait.ts';

export interface SseFrame {
  event: string | null;
  data: string;
}

/** Parse complete SSE frames out of text (comments are kept as event ':comment'). */
export function parseSse(text: string): SseFrame[] {
  const frames: SseFrame[] = [];
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    let event: string | null = null;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) event = ':comment';
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    frames.push({ event, data: data.join('\n') });
  }
  return frames;
}

export interface Collected {
  status: number;
  headers: Headers;
  text: string;
  frames: SseFrame[];
  /** The error that ended the body, if it did not end cleanly. */
  error: unknown;
}

/** POST JSON with fetch and read the whole body, recording (not throwing) a body error. */
export async function postAndCollect(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Collected> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
  let text = '';
  let error: unknown = null;
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  } catch (e) {
    error = e;
  }
  return { status: res.status, headers: res.headers, text, frames: parseSse(text), error };
}

export interface RawResult {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** 'end' when the response completed, else the socket error code / 'close'. */
  outcome: string;
}

/** A raw node:http request (no decompression, no retries) that reports how the response ended. */
export function rawPost(url: string, body: unknown, headers: Record<string, string> = {}, timeoutMs = 3000): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let result: RawResult = { body: Buffer.alloc(0), outcome: 'pending' };
    const finish = (outcome: string): void => {
      if (result.outcome !== 'pending') return;
      result = { ...result, body: Buffer.concat(chunks), outcome };
      clearTimeout(timer);
      resolve(result);
    };
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false });
    const timer = setTimeout(() => {
      finish('timeout');
      req.destroy();
    }, timeoutMs);
    req.on('response', (res) => {
      result.status = res.statusCode;
      result.headers = res.headers;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish('end'));
      res.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
      res.on('close', () => finish(res.complete ? 'end' : 'close'));
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
    req.end(JSON.stringify(body));
  });
}

/** Inflate a gzip body that may be truncated (sync-flushed blocks decode on their own). */
export function gunzipPartial(buf: Buffer): string {
  return gunzipSync(buf, { finishFlush: 2 /* Z_SYNC_FLUSH */ }).toString();
}

export const chatBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'gpt-4.1',
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

export const messagesBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'claude-sonnet-4-6',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` is true (the shared wait, test/support/wait.ts); throws after `ms`. */
export async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  await sharedWaitFor('a condition of the fake', () => check(), ms, 10);
}
