// One SSE event's data as bytes, for the questions the relay asks of every event (is it an
// error, the terminal event, does it carry usage?) without decoding it: most events are content
// deltas whose text Breakwater never reads, and a string made of each of them was most of what
// the SSE relay allocated. The text is decoded only when a rule needs it (an error event's
// body, a usage object to parse).
//
// The needles are ASCII, and UTF-8 never puts an ASCII byte inside a multi-byte character (nor
// does decoding a bad sequence swallow one), so comparing bytes gives the answers comparing the
// decoded text would.

/**
 * An ASCII string to search for, prepared once: its bytes and Horspool's table (how far the
 * window may move when it ends on each byte).
 */
export class Needle {
  readonly bytes: Uint8Array;
  readonly shift: Uint8Array;

  constructor(ascii: string) {
    const m = ascii.length;
    if (m === 0 || !/^[\x00-\x7f]+$/.test(ascii)) throw new Error('a needle is a non-empty ASCII string');
    this.bytes = Uint8Array.from(ascii, (c) => c.charCodeAt(0));
    this.shift = new Uint8Array(256).fill(Math.min(m, 255));
    for (let k = 0; k < m - 1; k++) this.shift[this.bytes[k]!] = Math.min(m - 1 - k, 255);
  }
}

const EMPTY = Buffer.alloc(0);

export class SseData {
  #b: Buffer = EMPTY;
  #start = 0;
  #end = 0;

  /** points the view at b[start, end): a view is reused from event to event, nothing is copied */
  set(b: Buffer, start: number, end: number): void {
    this.#b = b;
    this.#start = start;
    this.#end = end;
  }

  /** lets go of the bytes (a chunk, or a line joined from several) once the event is handled */
  clear(): void {
    this.#b = EMPTY;
    this.#start = this.#end = 0;
  }

  get length(): number {
    return this.#end - this.#start;
  }

  /** the data is exactly `ascii` */
  is(ascii: string): boolean {
    return this.length === ascii.length && this.startsWith(ascii);
  }

  startsWith(ascii: string): boolean {
    if (this.length < ascii.length) return false;
    const b = this.#b;
    const start = this.#start;
    for (let k = 0; k < ascii.length; k++) if (b[start + k] !== ascii.charCodeAt(k)) return false;
    return true;
  }

  /**
   * The needle occurs in the data: Horspool's search, which steps over most bytes of an event
   * (a native Buffer#indexOf costs more in its call than a data line's worth of this loop).
   */
  includes(needle: Needle): boolean {
    const { bytes, shift } = needle;
    const m = bytes.length;
    const b = this.#b;
    const end = this.#end;
    const last = bytes[m - 1]!;
    for (let i = this.#start + m - 1; i < end; ) {
      const c = b[i]!;
      if (c === last) {
        let k = 1;
        while (k < m && b[i - k] === bytes[m - 1 - k]) k++;
        if (k === m) return true;
      }
      i += shift[c]!;
    }
    return false;
  }

  /** the data as text (UTF-8) */
  text(): string {
    return this.#b.toString('utf8', this.#start, this.#end);
  }
}
