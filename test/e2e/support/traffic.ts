// App traffic through the sidecar: single calls, and a steady background load (streaming and
// non-streaming) that records every failure, for "zero failed requests" assertions.
export interface CallResult {
  status: number;
  body: string;
  headers: Headers;
  ok: boolean;
  stream: boolean;
  error?: string;
}

export interface CallOptions {
  stream?: boolean;
  model?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** POST /<upstream>/v1/chat/completions through the sidecar. ok = a complete, well-formed answer. */
export async function chat(base: string, upstream: string, opts: CallOptions = {}): Promise<CallResult> {
  const stream = opts.stream ?? false;
  try {
    const res = await fetch(`${base}/${upstream}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer app-key-must-not-pass', ...opts.headers },
      body: JSON.stringify({ model: opts.model ?? 'gpt-4.1-mini', stream, messages: [{ role: 'user', content: 'hello' }] }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
    const body = await res.text();
    const ok = res.status === 200 && (stream ? body.includes('data: [DONE]') : body.includes('"choices"'));
    return { status: res.status, body, headers: res.headers, ok, stream };
  } catch (err) {
    return { status: 0, body: '', headers: new Headers(), ok: false, stream, error: String((err as Error).cause ?? err) };
  }
}

export class Traffic {
  readonly results: CallResult[] = [];
  #running = true;
  #loops: Promise<void>[] = [];

  constructor(base: string, upstream: string, opts: { concurrency?: number; pauseMs?: number; streamHeaders?: Record<string, string> } = {}) {
    const concurrency = opts.concurrency ?? 4;
    for (let i = 0; i < concurrency; i++) {
      // half the loops stream (slowly, so edits land while streams are open), half do not
      const stream = i % 2 === 0;
      this.#loops.push(
        (async () => {
          while (this.#running) {
            this.results.push(await chat(base, upstream, { stream, headers: stream ? opts.streamHeaders : undefined }));
            if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
          }
        })(),
      );
    }
  }

  failures(): CallResult[] {
    return this.results.filter((r) => !r.ok);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** a readable summary of failures for assertion messages */
  describe(): string {
    const f = this.failures();
    return `${f.length} of ${this.results.length} failed${f.length ? `: ${f.slice(0, 5).map((r) => `${r.status} ${r.error ?? r.body.slice(0, 200)}`).join(' | ')}` : ''}`;
  }
}
