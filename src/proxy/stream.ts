// SSE pass-through. The scanner finds event boundaries so that only whole events are written
// to the app (a cut stream never leaves half an event that would merge with our error event),
// and it notices the first data event (the commit point), the terminal event and error events.
import type { ServerResponse } from 'node:http';
import type { DialectRules } from './dialects/types.ts';

const BOUNDARY = /\r?\n\r?\n/g;

export class SseScanner {
  readonly #dialect: DialectRules;
  #pending = '';
  #event: string | undefined;
  #data: string | undefined;
  dataEvents = 0;
  sawTerminal = false;
  /** the first data of an error event, when the provider reported one */
  errorData: string | undefined;
  /** tokens reported so far (the largest count seen of each kind: providers repeat running totals) */
  inputTokens = 0;
  outputTokens = 0;

  constructor(dialect: DialectRules) {
    this.#dialect = dialect;
  }

  /** Feeds decoded text; returns the whole events it completes (to forward), possibly ''. */
  push(text: string): string {
    const all = this.#pending === '' ? text : this.#pending + text;
    let end = -1;
    // the pending text holds no boundary: look only where the new text could complete one
    BOUNDARY.lastIndex = Math.max(0, this.#pending.length - 3);
    for (let m = BOUNDARY.exec(all); m !== null; m = BOUNDARY.exec(all)) end = m.index + m[0].length;
    if (end < 0) {
      this.#pending = all;
      return '';
    }
    const complete = all.slice(0, end);
    this.#pending = all.slice(end);
    this.#scan(complete);
    return complete;
  }

  /** bytes received but not yet forwarded (an incomplete event) */
  get pendingLength(): number {
    return this.#pending.length;
  }

  #scan(text: string): void {
    let start = 0;
    while (start < text.length) {
      let nl = text.indexOf('\n', start);
      if (nl < 0) nl = text.length;
      const line = text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl);
      start = nl + 1;
      if (line === '') this.#dispatch();
      else if (line.charCodeAt(0) === 58 /* ':' comment */) continue;
      else if (line.startsWith('data:')) {
        if (this.#data === undefined) this.#data = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      } else if (line.startsWith('event:')) this.#event = line.slice(line.charCodeAt(6) === 32 ? 7 : 6);
    }
  }

  #dispatch(): void {
    const event = this.#event;
    const data = this.#data;
    this.#event = undefined;
    this.#data = undefined;
    if (data === undefined || event === 'ping') return; // comments and pings do not commit
    if (this.#dialect.isErrorEvent(event, data)) this.errorData ??= data;
    else if (this.#dialect.commitsStream(event)) this.dataEvents++;
    if (this.#dialect.isTerminalEvent(event, data)) this.sawTerminal = true;
    // OpenAI sends "usage":null in every chunk; only a real usage object is worth parsing
    if (data.includes('"usage":{')) this.#readUsage(data);
  }

  #readUsage(data: string): void {
    let usage;
    try {
      usage = this.#dialect.readUsage(JSON.parse(data));
    } catch {
      return;
    }
    if (!usage) return;
    this.inputTokens = Math.max(this.inputTokens, usage.input);
    this.outputTokens = Math.max(this.outputTokens, usage.output);
  }
}

/**
 * Writes a chunk; when the app's socket is full, resolves once it has room again, closes, or
 * the attempt is aborted (its deadline), so a reader that stops reading cannot hold us forever.
 */
export function writeWithBackpressure(res: ServerResponse, chunk: string | Buffer, signal: AbortSignal): Promise<void> | undefined {
  if (res.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
