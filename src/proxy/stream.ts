// SSE pass-through. The scanner finds event boundaries so that only whole events are written
// to the app (a cut stream never leaves half an event that would merge with our error event),
// and it notices the first data event (the commit point), the terminal event and error events.
// It works on the bytes as they arrive and never goes back: the search for line ends resumes
// where the last chunk stopped, and the bytes it holds are slices of the chunks, not copies. What
// it holds is bounded, because a provider (or a decompression bomb) can send an event that never
// ends or comments that never stop: one event at most MAX_EVENT_BYTES, and at most
// MAX_PRECOMMIT_BYTES before the commit point. Past either, push() answers an SseOverflow, which
// the caller turns into an invalid_response. Lines end in \r\n, \n or a bare \r (the SSE spec).
// An event's data stays bytes (SseData): the dialect's questions are answered on them, and the
// text is decoded only for an error event or a usage object.
import type { DialectRules } from './dialects/types.ts';
import { Needle, SseData } from './sse-data.ts';

/** one event, from its first line to its blank line */
export const MAX_EVENT_BYTES = 8 * 1024 * 1024;
/** before the commit point: comments, pings and other events that do not commit, and what precedes the first data line */
export const MAX_PRECOMMIT_BYTES = 1024 * 1024;

export interface SseLimits {
  eventBytes: number;
  precommitBytes: number;
}

const DEFAULT_LIMITS: SseLimits = { eventBytes: MAX_EVENT_BYTES, precommitBytes: MAX_PRECOMMIT_BYTES };

/** The stream went past a limit: it cannot be relayed whole (an invalid_response). */
export interface SseOverflow {
  readonly kind: 'overflow';
  readonly limit: 'event' | 'precommit';
  /** the limit that was passed, in bytes */
  readonly bytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const EMPTY = Buffer.alloc(0);
const DATA = Buffer.from('data:');
/** longer event names are decoded every time, not kept */
const MAX_EVENT_NAME = 64;
const EVENT = Buffer.from('event:');
/** a real usage object (OpenAI sends "usage":null in every chunk) */
const USAGE = new Needle('"usage":{');

function startsWith(b: Buffer, start: number, stop: number, prefix: Buffer): boolean {
  if (stop - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[start + i] !== prefix[i]) return false;
  return true;
}

export class SseScanner {
  readonly #dialect: DialectRules;
  readonly #limits: SseLimits;
  /** the event in progress: the part of it in earlier chunks (slices, not copies) */
  #pending: Buffer[] = [];
  #pendingLength = 0;
  /** the line in progress: the part of it in earlier chunks */
  #line: Buffer[] = [];
  #lineLength = 0;
  /** the last chunk ended in a \r that ended a line: a \n first in the next chunk belongs to it */
  #afterCr = false;
  #event: string | undefined;
  /** the last event name decoded, and its bytes (a copy, so that no chunk is held for it) */
  #lastEvent = '';
  #lastEventBytes: Buffer | undefined;
  /** the event's first data line (the only one the rules read), as bytes; valid while #hasData */
  readonly #data = new SseData();
  #hasData = false;
  /** bytes of the event in progress before its first data line, once it has one */
  #beforeData: number | undefined;
  /** bytes counted against the pre-commit limit so far */
  #precommit = 0;
  #overflow: SseOverflow | undefined;
  dataEvents = 0;
  sawTerminal = false;
  /** the first data of an error event, when the provider reported one */
  errorData: string | undefined;
  /** tokens reported so far (the largest count seen of each kind: providers repeat running totals) */
  inputTokens = 0;
  outputTokens = 0;
  /** bytes the line-end searches went over: each pushed byte at most twice (once for \n, once for \r) */
  bytesScanned = 0;
  /** events whose data was decoded to text (an error, a usage object): content deltas never are */
  dataDecoded = 0;

  constructor(dialect: DialectRules, limits: SseLimits = DEFAULT_LIMITS) {
    this.#dialect = dialect;
    this.#limits = limits;
  }

  /**
   * The commit point has passed: a data event or an error event was seen. forward.ts reads
   * until this is true, and the pre-commit limit counts until then: one definition for both.
   */
  get committed(): boolean {
    return this.dataEvents > 0 || this.errorData !== undefined;
  }

  /** bytes received but not yet forwarded (an incomplete event) */
  get pendingLength(): number {
    return this.#pendingLength;
  }

  /**
   * Feeds the next chunk of the (decoded) body. Returns the whole events it completes, to
   * forward (possibly empty; a slice of the chunk when nothing was held), or an SseOverflow
   * once a limit is passed (then always the same, and nothing is held any more).
   */
  push(chunk: Buffer): Buffer | SseOverflow {
    if (this.#overflow) return this.#overflow;
    const n = chunk.length;
    let pos = 0;
    let lineStart = 0;
    /** where the event in progress starts in this chunk; `carried` bytes of it came before */
    let eventStart = 0;
    let carried = this.#pendingLength;
    /** the end of the last whole event in this chunk: what is forwarded */
    let eventEnd = 0;
    if (this.#afterCr && n > 0) {
      this.#afterCr = false;
      if (chunk[0] === LF) {
        pos = lineStart = 1;
        if (carried === 0) eventStart = eventEnd = 1; // the \r ended an event, forwarded already: so is its \n
      }
    }
    let nextLf = -2; // -2: not searched yet; -1: none in the rest of the chunk
    let nextCr = -2;
    while (pos < n) {
      if (nextLf !== -1 && nextLf < pos) nextLf = this.#find(chunk, LF, pos);
      if (nextCr !== -1 && nextCr < pos) nextCr = this.#find(chunk, CR, pos);
      const eol = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);
      if (eol === -1) break;
      let next = eol + 1;
      if (chunk[eol] === CR) {
        if (next === n) this.#afterCr = true;
        else if (chunk[next] === LF) next++;
      }
      if (this.#lineLength === 0 && eol === lineStart) {
        // a blank line: the event is whole
        const size = carried + next - eventStart;
        carried = 0;
        if (size > this.#limits.eventBytes) return this.#fail('event');
        const wasCommitted = this.committed;
        const beforeData = this.#beforeData;
        this.#dispatch();
        if (!wasCommitted) {
          // an event that does not commit counts whole; the one that commits up to its first data line
          this.#precommit += this.committed ? (beforeData ?? 0) : size;
          if (this.#precommit > this.#limits.precommitBytes) return this.#fail('precommit');
        }
        eventStart = eventEnd = next;
      } else {
        const offset = carried + lineStart - eventStart - this.#lineLength; // of this line in its event
        const isData = this.#lineLength === 0 ? this.#field(chunk, lineStart, eol) : this.#field(this.#joinLine(chunk.subarray(lineStart, eol)), 0, -1);
        if (isData && this.#beforeData === undefined) this.#beforeData = offset;
      }
      pos = lineStart = next;
    }

    if (lineStart < n) {
      this.#line.push(lineStart === 0 ? chunk : chunk.subarray(lineStart));
      this.#lineLength += n - lineStart;
    }
    let out: Buffer = EMPTY;
    if (eventEnd > 0) {
      const head = eventEnd === n ? chunk : chunk.subarray(0, eventEnd);
      if (this.#pending.length === 0) out = head;
      else {
        this.#pending.push(head);
        out = Buffer.concat(this.#pending, this.#pendingLength + eventEnd);
      }
      this.#pending.length = 0; // emptied, not replaced: no new array per chunk
      this.#pendingLength = 0;
    }
    if (eventEnd < n) {
      this.#pending.push(eventEnd === 0 ? chunk : chunk.subarray(eventEnd));
      this.#pendingLength += n - eventEnd;
    }
    if (this.#pendingLength > this.#limits.eventBytes) return this.#fail('event');
    if (!this.committed) {
      // the event in progress counts up to its first data line (its whole lines until it has one)
      const open = this.#beforeData ?? this.#pendingLength - this.#lineLength;
      if (this.#precommit + open > this.#limits.precommitBytes) return this.#fail('precommit');
    }
    return out;
  }

  #find(chunk: Buffer, byte: number, from: number): number {
    const at = chunk.indexOf(byte, from);
    this.bytesScanned += (at === -1 ? chunk.length : at + 1) - from;
    return at;
  }

  /** the line in progress, whole: its part from earlier chunks and `tail` */
  #joinLine(tail: Buffer): Buffer {
    this.#line.push(tail);
    const line = Buffer.concat(this.#line, this.#lineLength + tail.length);
    this.#line = [];
    this.#lineLength = 0;
    return line;
  }

  /** One field line (`end` -1: to the end of `b`); true when it is a data line. */
  #field(b: Buffer, start: number, end: number): boolean {
    const stop = end < 0 ? b.length : end;
    if (b[start] === COLON) return false; // a comment
    if (startsWith(b, start, stop, DATA)) {
      if (!this.#hasData) {
        this.#data.set(b, start + 5 < stop && b[start + 5] === SPACE ? start + 6 : start + 5, stop);
        this.#hasData = true;
      }
      return true;
    }
    if (startsWith(b, start, stop, EVENT)) this.#event = this.#eventName(b, start + 6 < stop && b[start + 6] === SPACE ? start + 7 : start + 6, stop);
    return false;
  }

  /** the event name at b[start, stop): the previous one's string when the bytes are the same (a stream repeats a few names) */
  #eventName(b: Buffer, start: number, stop: number): string {
    const last = this.#lastEventBytes;
    if (last !== undefined && last.length === stop - start) {
      let k = 0;
      while (k < last.length && b[start + k] === last[k]) k++;
      if (k === last.length) return this.#lastEvent;
    }
    this.#lastEvent = b.toString('utf8', start, stop);
    this.#lastEventBytes = stop - start <= MAX_EVENT_NAME ? Buffer.from(b.subarray(start, stop)) : undefined;
    return this.#lastEvent;
  }

  #fail(limit: SseOverflow['limit']): SseOverflow {
    this.#overflow = { kind: 'overflow', limit, bytes: limit === 'event' ? this.#limits.eventBytes : this.#limits.precommitBytes };
    this.#pending = [];
    this.#pendingLength = 0;
    this.#line = [];
    this.#lineLength = 0;
    return this.#overflow;
  }

  #dispatch(): void {
    const event = this.#event;
    const hasData = this.#hasData;
    this.#event = undefined;
    this.#hasData = false;
    this.#beforeData = undefined;
    if (!hasData || event === 'ping') return; // comments and pings do not commit
    const data = this.#data;
    if (this.#dialect.isErrorEvent(event, data)) this.errorData ??= this.#text(data);
    else if (this.#dialect.commitsStream(event)) this.dataEvents++;
    if (this.#dialect.isTerminalEvent(event, data)) this.sawTerminal = true;
    // OpenAI sends "usage":null in every chunk; only a real usage object is worth parsing
    if (data.includes(USAGE)) this.#readUsage(this.#text(data));
    data.clear();
  }

  #text(data: SseData): string {
    this.dataDecoded++;
    return data.text();
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
