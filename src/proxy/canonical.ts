// Canonical JSON straight from a request body's bytes, for the cache key (cache.ts): keys sorted
// at every depth (by UTF-16 code units, as Array.prototype.sort does), no whitespace, strings and
// numbers as JSON.stringify writes them. For any valid JSON in valid UTF-8 the output is exactly
// the UTF-8 of canonicalJson(JSON.parse(body)) (cache.ts keeps that function, and the unit tests
// check the two agree), so a key does not depend on which of them made it.
//
// Why not JSON.parse and re-serialise: a cache miss paid for a parse that builds every message
// string, a walk that concatenates them again and sha256 over the result; on a 12 KB
// conversation that was ~80 µs, more than half a proxied request. Here the walk copies byte
// ranges: a string without a backslash is already canonical (JSON.stringify escapes only '"',
// '\' and control characters, which raw JSON strings cannot hold unescaped, and lone surrogates,
// which UTF-8 cannot encode), so it is copied as it is; only strings with escapes are decoded and
// written again, numbers that are not plain integers go through Number(), and an object whose
// keys are out of order (or repeat: the last one wins, as in JSON.parse) has its members
// rearranged in the output. Everything goes into one scratch buffer the caller hashes at once.
//
// The walk checks the grammar as JSON.parse does (an invalid body is Breakwater's 400, as it was
// when the cache parsed it), except for one thing it does not look for, as that would cost a
// loop over every byte: a raw control character inside a string. Such a body goes to the
// provider, whose 400 is passed on and never stored. Deeper nesting than MAX_DEPTH, or a body
// whose rearranging would move more than MAX_MOVED_PER_BYTE times its size (unsorted objects
// nested in unsorted objects each move their whole subtree: depth × size), is "too complex"
// (the request is simply not cached), never a stack overflow or a quadratic walk. Nor is a body
// that is not valid UTF-8, or whose canonical form would outgrow it by more than 64 KiB
// (writeCanonical says why).
import { isUtf8 } from 'node:buffer';
import { closingQuote } from './scan.ts';
import { BACKSLASH, COLON, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } from './json-bytes.ts';

const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** deeper than this is not canonicalised (the request is simply not cached) */
export const MAX_DEPTH = 512;
/** bytes rearranging may move per byte of the body (a chat body moves about 2: its messages, then the whole) */
export const MAX_MOVED_PER_BYTE = 8;
/** a scratch buffer grown past this for one large body is let go after it */
const KEEP_SCRATCH_BYTES = 256 * 1024;

/** The body is not valid JSON: `message` says where (for the app's 400). */
export class InvalidJson extends Error {}
/** Nested deeper than MAX_DEPTH, or too much to rearrange: valid or not, it is not worth caching. */
export class TooComplex extends Error {}

const LITERALS = [Buffer.from('true'), Buffer.from('false'), Buffer.from('null')] as const;
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * Writes canonical JSON for a whole body into a growing scratch buffer after a prefix of the
 * caller's. One instance per process is enough: the walk is synchronous.
 */
export class CanonicalWriter {
  #out: Buffer = Buffer.allocUnsafeSlow(16 * 1024);
  #len = 0;
  /** where members are moved aside while an object's are rearranged */
  #aside: Buffer = Buffer.allocUnsafeSlow(4 * 1024);
  /** per member of the objects being read: key start, key end, value end (output offsets) */
  readonly #members: number[] = [];
  /** the members of the object being rearranged, in key order */
  readonly #order: number[] = [];
  #src: Buffer = Buffer.alloc(0);
  #i = 0;
  /** bytes rearranging may still move for this body */
  #movable = 0;
  /** while a body is written: the most the scratch buffer may hold (its canonical form is never longer than it, but for exponents spelled out) */
  #maxLen = Infinity;
  /** the next backslash in the source at or after #i (src.length when none): one search per backslash */
  #nextBackslash = 0;

  /** the bytes written so far (a view into the scratch buffer, valid until the next start) */
  get bytes(): Buffer {
    return this.#out.subarray(0, this.#len);
  }

  /** how many bytes are written */
  get length(): number {
    return this.#len;
  }

  /**
   * Done with what was written: zeroes its first `secretEnd` bytes (what should not linger in
   * memory once hashed) and lets go of buffers grown large for a big body.
   */
  finish(secretEnd: number): void {
    this.#out.fill(0, 0, Math.min(secretEnd, this.#len));
    this.#len = 0;
    if (this.#out.length > KEEP_SCRATCH_BYTES) this.#out = Buffer.allocUnsafeSlow(16 * 1024);
    if (this.#aside.length > KEEP_SCRATCH_BYTES) this.#aside = Buffer.allocUnsafeSlow(4 * 1024);
  }

  /** empties the buffer */
  start(): void {
    this.#len = 0;
  }

  writeBytes(b: Buffer): void {
    this.#put(b, 0, b.length);
  }

  writeString(s: string): void {
    this.#ensure(Buffer.byteLength(s, 'utf8'));
    this.#len += this.#out.write(s, this.#len, 'utf8');
  }

  /**
   * Appends the canonical form of `src` (a whole JSON text). Throws InvalidJson when it is not
   * JSON, TooComplex past MAX_DEPTH or MAX_MOVED_PER_BYTE.
   */
  writeCanonical(src: Buffer): void {
    // Invalid UTF-8 is keyed by nothing: compared as raw bytes here, two keys a lenient provider
    // reads as the same U+FFFD could sort as different ones, and a wrong hit is worse than a miss.
    if (!isUtf8(src)) throw new TooComplex('the body is not valid UTF-8');
    // The canonical form only shrinks a body (whitespace, escapes, duplicate keys) except for
    // numbers in exponent form spelled out (9e20: 21 digits); a body of those could have grown the
    // scratch buffer to several times its size outside the heap: past this it is not cached.
    this.#maxLen = this.#len + src.length + 64 * 1024;
    this.#src = src;
    this.#i = 0;
    this.#movable = MAX_MOVED_PER_BYTE * src.length + 64 * 1024;
    this.#nextBackslash = -1;
    this.#members.length = 0;
    try {
      this.#value(0);
      this.#skipSpace();
      if (this.#i < src.length) throw new InvalidJson(`unexpected data at ${this.#i}`);
    } finally {
      this.#src = EMPTY;
      this.#maxLen = Infinity;
    }
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#out.length) return;
    if (this.#len + n > this.#maxLen) throw new TooComplex(`the canonical form would outgrow the body by more than ${this.#maxLen - this.#len - this.#src.length} bytes`);
    const next = Buffer.allocUnsafeSlow(Math.min(Math.max(this.#len + n, this.#out.length * 2), Math.max(this.#len + n, this.#maxLen)));
    this.#out.copy(next, 0, 0, this.#len);
    this.#out.fill(0, 0, this.#len); // the caller's prefix (salt, an app's credential) does not stay behind in the old one
    this.#out = next;
  }

  #put(src: Buffer, start: number, end: number): void {
    const n = end - start;
    this.#ensure(n);
    if (n <= 16) {
      const out = this.#out;
      for (let k = 0; k < n; k++) out[this.#len + k] = src[start + k]!;
    } else {
      src.copy(this.#out, this.#len, start, end);
    }
    this.#len += n;
  }

  #putByte(c: number): void {
    this.#ensure(1);
    this.#out[this.#len++] = c;
  }

  #skipSpace(): void {
    const src = this.#src;
    let i = this.#i;
    for (;;) {
      const c = src[i];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    this.#i = i;
  }

  #value(depth: number): void {
    this.#skipSpace();
    const c = this.#src[this.#i];
    if (c === QUOTE) this.#string();
    else if (c === LBRACE) this.#object(depth + 1);
    else if (c === LBRACKET) this.#array(depth + 1);
    else if (c === 0x74) this.#literal(LITERALS[0]);
    else if (c === 0x66) this.#literal(LITERALS[1]);
    else if (c === 0x6e) this.#literal(LITERALS[2]);
    else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) this.#number();
    else throw new InvalidJson(c === undefined ? 'unexpected end of body' : `unexpected byte at ${this.#i}`);
  }

  #string(): void {
    const src = this.#src;
    const open = this.#i;
    const close = closingQuote(src, open + 1);
    if (close < 0) throw new InvalidJson('unterminated string');
    if (this.#nextBackslash < open) {
      const b = src.indexOf(BACKSLASH, open);
      this.#nextBackslash = b < 0 ? src.length : b;
    }
    if (this.#nextBackslash > close) {
      this.#put(src, open, close + 1); // no escape: already as JSON.stringify writes it
    } else {
      let s: string;
      try {
        s = JSON.parse(src.toString('utf8', open, close + 1)) as string;
      } catch {
        throw new InvalidJson(`bad escape in the string at ${open}`);
      }
      this.writeString(JSON.stringify(s));
    }
    this.#i = close + 1;
  }

  #literal(word: Buffer): void {
    const src = this.#src;
    const i = this.#i;
    for (let k = 0; k < word.length; k++) if (src[i + k] !== word[k]) throw new InvalidJson(`unexpected byte at ${i + k}`);
    this.#put(word, 0, word.length);
    this.#i = i + word.length;
  }

  #number(): void {
    const src = this.#src;
    const start = this.#i;
    let i = start;
    const negative = src[i] === MINUS;
    if (negative) i++;
    const first = i;
    while (i < src.length && src[i]! >= ZERO && src[i]! <= NINE) i++;
    const digits = i - first;
    const c = src[i];
    // the common case, copied as it is: an integer of at most 15 digits (exact in a double),
    // no leading zero, not -0 (JSON.stringify(-0) is "0"), no fraction or exponent
    if (
      digits > 0 && digits <= 15 && (src[first] !== ZERO || (digits === 1 && !negative)) &&
      c !== 0x2e && c !== 0x65 && c !== 0x45 && c !== 0x2b && c !== MINUS
    ) {
      this.#put(src, start, i);
      this.#i = i;
      return;
    }
    while (i < src.length) {
      const d = src[i]!;
      if ((d >= ZERO && d <= NINE) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === MINUS) i++;
      else break;
    }
    const token = src.toString('latin1', start, i);
    if (!PLAIN_NUMBER.test(token)) throw new InvalidJson(`bad number at ${start}`);
    this.writeString(JSON.stringify(Number(token))); // as JSON.parse then JSON.stringify (1e400 is null)
    this.#i = i;
  }

  #array(depth: number): void {
    if (depth > MAX_DEPTH) throw new TooComplex('nested too deep');
    this.#i++;
    this.#putByte(LBRACKET);
    this.#skipSpace();
    if (this.#src[this.#i] === RBRACKET) {
      this.#i++;
      this.#putByte(RBRACKET);
      return;
    }
    for (;;) {
      this.#value(depth);
      this.#skipSpace();
      const c = this.#src[this.#i];
      this.#i++;
      if (c === COMMA) this.#putByte(COMMA);
      else if (c === RBRACKET) break;
      else throw new InvalidJson(c === undefined ? 'unexpected end of body' : `expected ',' or ']' at ${this.#i - 1}`);
    }
    this.#putByte(RBRACKET);
  }

  #object(depth: number): void {
    if (depth > MAX_DEPTH) throw new TooComplex('nested too deep');
    const src = this.#src;
    this.#i++;
    this.#putByte(LBRACE);
    this.#skipSpace();
    if (src[this.#i] === RBRACE) {
      this.#i++;
      this.#putByte(RBRACE);
      return;
    }
    const members = this.#members;
    const base = members.length;
    let ordered = true;
    for (;;) {
      this.#skipSpace();
      if (src[this.#i] !== QUOTE) throw new InvalidJson(this.#i >= src.length ? 'unexpected end of body' : `expected a key at ${this.#i}`);
      const keyStart = this.#len;
      this.#string();
      const keyEnd = this.#len;
      this.#skipSpace();
      if (src[this.#i] !== COLON) throw new InvalidJson(this.#i >= src.length ? 'unexpected end of body' : `expected ':' at ${this.#i}`);
      this.#i++;
      this.#putByte(COLON);
      this.#value(depth);
      if (ordered && members.length > base && this.#compareKeys(members[members.length - 3]!, members[members.length - 2]!, keyStart, keyEnd) >= 0) ordered = false;
      members.push(keyStart, keyEnd, this.#len);
      this.#skipSpace();
      const c = src[this.#i];
      this.#i++;
      if (c === COMMA) this.#putByte(COMMA);
      else if (c === RBRACE) break;
      else throw new InvalidJson(c === undefined ? 'unexpected end of body' : `expected ',' or '}' at ${this.#i - 1}`);
    }
    if (!ordered) this.#rearrange(base);
    members.length = base;
    this.#putByte(RBRACE);
  }

  /** the members written since `base`, rewritten in key order, the last of equal keys kept */
  #rearrange(base: number): void {
    const members = this.#members;
    const count = (members.length - base) / 3;
    const order = this.#order;
    order.length = 0;
    let dupes = false;
    if (count <= 16) {
      // insertion sort (objects here have a few keys; stable: equal keys stay in source order)
      for (let m = base; m < members.length; m += 3) {
        let k = order.length;
        order.push(m);
        while (k > 0) {
          const prev = order[k - 1]!;
          const c = this.#compareKeys(members[prev]!, members[prev + 1]!, members[m]!, members[m + 1]!);
          if (c === 0) dupes = true;
          if (c <= 0) break;
          order[k] = prev;
          k--;
        }
        order[k] = m;
      }
    } else {
      for (let m = base; m < members.length; m += 3) order.push(m);
      order.sort((a, b) => this.#compareKeys(members[a]!, members[a + 1]!, members[b]!, members[b + 1]!) || a - b);
      dupes = true; // not tracked by the sort: look
    }
    if (dupes) {
      // equal keys sit together in source order: only the last of them counts (compared
      // before the output is rewritten, as the keys are read from it)
      for (let k = 0; k + 1 < order.length; k++) {
        const m = order[k]!;
        const next = order[k + 1]!;
        if (this.#compareKeys(members[m]!, members[m + 1]!, members[next]!, members[next + 1]!) === 0) order[k] = -1;
      }
    }
    const from = members[base]!;
    const to = this.#len;
    this.#movable -= to - from;
    if (this.#movable < 0) throw new TooComplex('too much to rearrange');
    if (this.#aside.length < to - from) this.#aside = Buffer.allocUnsafeSlow(Math.max(to - from, this.#aside.length * 2));
    const aside = this.#aside;
    this.#out.copy(aside, 0, from, to);
    this.#len = from;
    let first = true;
    for (let k = 0; k < order.length; k++) {
      const m = order[k]!;
      if (m < 0) continue;
      if (!first) this.#putByte(COMMA);
      first = false;
      this.#put(aside, members[m]! - from, members[m + 2]! - from);
    }
  }

  /**
   * Compares two keys written in the output (with their quotes) as JavaScript compares the
   * strings. Bytes compare the same way while neither has an escape or a character outside
   * the BMP (UTF-8 orders by code point, JavaScript by UTF-16 unit); otherwise decode both.
   */
  #compareKeys(aStart: number, aEnd: number, bStart: number, bEnd: number): number {
    const out = this.#out;
    const aLength = aEnd - aStart;
    const bLength = bEnd - bStart;
    const n = Math.min(aLength, bLength) - 1;
    for (let k = 1; k < n; k++) {
      const x = out[aStart + k]!;
      const y = out[bStart + k]!;
      if (x === y) {
        if (x === BACKSLASH || x >= 0xf0) return this.#compareDecoded(aStart, aEnd, bStart, bEnd);
        continue;
      }
      if (x === BACKSLASH || y === BACKSLASH || x >= 0xf0 || y >= 0xf0 || x === QUOTE || y === QUOTE) return this.#compareDecoded(aStart, aEnd, bStart, bEnd);
      return x - y;
    }
    return aLength - bLength;
  }

  #compareDecoded(aStart: number, aEnd: number, bStart: number, bEnd: number): number {
    const a = JSON.parse(this.#out.toString('utf8', aStart, aEnd)) as string;
    const b = JSON.parse(this.#out.toString('utf8', bStart, bEnd)) as string;
    return a < b ? -1 : a > b ? 1 : 0;
  }
}

const EMPTY = Buffer.alloc(0);
