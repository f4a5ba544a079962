// Checks a 2xx JSON answer without building it. JSON.parse makes every string and object of an
// answer (the whole message text) only for the checks to read a few top-level fields; here one
// walk over the bytes validates the JSON grammar exactly and keeps just the fields the dialect
// reads (DialectRules.jsonView): their values, the fields of a nested object it names, or, for
// the big arrays (choices, content, data), whether they are empty.
//
// The walk only ever says "a valid object, and here is its view"; anything else (malformed,
// truncated, not an object, nested too deep, an escaped key) is left undecided and the caller
// parses the body whole, so every failure verdict still comes from JSON.parse. "Valid" is
// RFC 8259 exactly: strings hold no raw control byte and only JSON's escapes; numbers, literals
// and whitespace as in the grammar; nothing after the root object. Bytes >= 0x80 in strings are
// not checked as UTF-8: Buffer#toString replaces a bad sequence and JSON.parse accepts the result,
// and UTF-8 never puts an ASCII byte inside a multi-byte character, so both see one structure.
// Duplicate keys: the last wins, as in JSON.parse.
//
// Cost: the run of plain bytes inside a string (message text) is checked four bytes at a time;
// the rest is a byte loop. Nothing is allocated but the view and the values it keeps.

/**
 * What a view keeps of a field: its 'value' (as JSON.parse gives it), for an array only its
 * 'emptiness' (a shared frozen [] when empty, else a shared frozen [undefined]: only the
 * length may be read), or, for an object, the view of the fields it names (any other value is
 * kept whole).
 */
export type JsonFieldUse = 'value' | 'emptiness' | JsonFields;

export interface JsonFields {
  readonly [key: string]: JsonFieldUse;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** deeper values are left to JSON.parse (answers nest a handful of levels) */
const MAX_DEPTH = 64;

/** after a backslash: " \ / b f n r t (u is checked on its own) */
const ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** JsonFields with the names as bytes, so keys are compared without making strings */
export class JsonViewPlan {
  readonly names: readonly string[];
  readonly bytes: readonly Buffer[];
  /** the fields whose names have each length in bytes: a key is compared with those only */
  readonly byLength: readonly (readonly number[] | undefined)[];
  readonly uses: readonly ('value' | 'emptiness' | JsonViewPlan)[];

  constructor(fields: JsonFields) {
    this.names = Object.keys(fields);
    this.bytes = this.names.map((n) => Buffer.from(n, 'utf8'));
    const byLength: number[][] = [];
    this.bytes.forEach((name, f) => (byLength[name.length] ??= []).push(f));
    this.byLength = byLength;
    this.uses = this.names.map((n) => {
      const use = fields[n]!;
      return typeof use === 'string' ? use : new JsonViewPlan(use);
    });
  }
}

/** -1: the walk cannot decide */
const UNDECIDED = -1;

// One walk runs at a time (it is synchronous): the body as 32-bit words and the stack of open
// brackets are kept here rather than allocated per walk. b[i] is a byte of words[(i + offset) >> 2].
const NO_WORDS = new Uint32Array(0);
let words = NO_WORDS;
let offset = 0;
/** the closing bracket of each open array or object inside the value being skipped */
const stack = new Uint8Array(MAX_DEPTH);

function space(b: Buffer, i: number): number {
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/**
 * The end of the run of plain bytes from i, a word at a time. A word holds a byte below 0x20, a
 * '"' or a '\\' exactly when the classic tests for a byte below n, (w - n*0x01010101) & ~w &
 * 0x80808080, and for a zero byte after an xor say so; then its bytes are looked at one by one.
 */
function plainEnd(b: Buffer, i: number): number {
  const n = b.length;
  for (; i < n && ((i + offset) & 3) !== 0; i++) if (!isPlain(b[i]!)) return i;
  let k = (i + offset) >> 2;
  for (const last = (n + offset) >> 2; k < last; k++) {
    const w = words[k]!;
    const quote = w ^ 0x22222222;
    const backslash = w ^ 0x5c5c5c5c;
    if ((((w - 0x20202020) & ~w) | ((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash)) & 0x80808080) break;
  }
  for (i = Math.max(i, k * 4 - offset); i < n; i++) if (!isPlain(b[i]!)) return i;
  return n;
}

/** a byte that may stand in a string as it is: not '"', not '\\', no control byte */
function isPlain(c: number): boolean {
  return c >= 0x20 && c !== QUOTE && c !== BACKSLASH;
}

/** whether the last string() read an escape */
let escaped = false;

/** the position after the string whose opening quote is at i */
function string(b: Buffer, i: number): number {
  const n = b.length;
  escaped = false;
  i++;
  for (;;) {
    i = plainEnd(b, i);
    if (i >= n) return UNDECIDED;
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH || i + 1 >= n) return UNDECIDED; // a raw control byte, or the body ends
    const e = b[i + 1]!;
    escaped = true;
    if (ESCAPE[e] === 1) i += 2;
    else if (e === 0x75 && i + 5 < n && HEX[b[i + 2]!] === 1 && HEX[b[i + 3]!] === 1 && HEX[b[i + 4]!] === 1 && HEX[b[i + 5]!] === 1) i += 6;
    else return UNDECIDED;
  }
}

function digits(b: Buffer, i: number): number {
  const n = b.length;
  while (i < n && isDigit(b[i]!)) i++;
  return i;
}

/** the position after the number starting at i (RFC 8259's grammar) */
function number(b: Buffer, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else if (i < b.length && isDigit(b[i]!)) i = digits(b, i + 1);
  else return UNDECIDED;
  if (b[i] === DOT) {
    const end = digits(b, i + 1);
    if (end === i + 1) return UNDECIDED;
    i = end;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === PLUS || b[i] === MINUS) i++;
    const end = digits(b, i);
    if (end === i) return UNDECIDED;
    i = end;
  }
  return i;
}

function literal(b: Buffer, i: number): number {
  const c = b[i];
  const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : c === 0x6e ? NULL : undefined;
  if (word === undefined || i + word.length > b.length) return UNDECIDED;
  for (let k = 1; k < word.length; k++) if (b[i + k] !== word[k]) return UNDECIDED;
  return i + word.length;
}

/** after '{' or ',' in an object: a key and its colon; the position of the value */
function key(b: Buffer, i: number): number {
  if (b[i] !== QUOTE) return UNDECIDED;
  i = string(b, i);
  if (i < 0) return UNDECIDED;
  i = space(b, i);
  if (b[i] !== COLON) return UNDECIDED;
  return space(b, i + 1);
}

/** the position after a whole value starting at i (no space before it): one loop over a stack of open brackets, not recursion */
function value(b: Buffer, i: number): number {
  let depth = 0;
  for (;;) {
    // a value starts at i
    const c = b[i];
    if (c === QUOTE) i = string(b, i);
    else if (c === LBRACE || c === LBRACKET) {
      if (depth === MAX_DEPTH) return UNDECIDED;
      const close = c === LBRACE ? RBRACE : RBRACKET;
      const next = space(b, i + 1);
      if (b[next] === close) i = next + 1; // empty: the value is whole
      else {
        stack[depth++] = close;
        i = c === LBRACE ? key(b, next) : next;
        if (i < 0) return UNDECIDED;
        continue;
      }
    } else if (c === MINUS || (c !== undefined && isDigit(c))) i = number(b, i);
    else i = literal(b, i);
    if (i < 0) return UNDECIDED;
    // a value ended at i: close brackets until a comma asks for the next value
    for (;;) {
      if (depth === 0) return i;
      i = space(b, i);
      const d = b[i];
      if (d === COMMA) {
        const next = space(b, i + 1);
        i = stack[depth - 1] === RBRACE ? key(b, next) : next;
        if (i < 0) return UNDECIDED;
        break;
      }
      if (d !== stack[depth - 1]) return UNDECIDED;
      depth--;
      i++;
    }
  }
}

/** the plan's field the key string() just read at [start, end) (quotes included) names: its index, -1 for none, -2 when escaped */
function field(b: Buffer, start: number, end: number, plan: JsonViewPlan): number {
  if (escaped) return -2;
  const length = end - start - 2;
  const candidates = plan.byLength[length];
  if (candidates === undefined) return -1;
  for (const f of candidates) {
    const name = plan.bytes[f]!;
    let k = 0;
    while (k < length && b[start + 1 + k] === name[k]) k++;
    if (k === length) return f;
  }
  return -1;
}

/** the valid JSON value at b[start, end) as JSON.parse gives it; the common small ones without a string of their JSON */
function valueOf(b: Buffer, start: number, end: number): unknown {
  const c = b[start];
  if (c === QUOTE) {
    let k = start + 1;
    while (k < end - 1 && b[k] !== BACKSLASH) k++;
    if (k === end - 1) return b.toString('utf8', start + 1, end - 1); // no escapes: the text between the quotes
  } else if (c !== undefined && isDigit(c) && end - start <= 15) {
    // a small whole number (token counts): exact in a double
    let n = 0;
    let k = start;
    while (k < end && isDigit(b[k]!)) n = n * 10 + b[k++]! - ZERO;
    if (k === end) return n;
  } else if (c === 0x6e) return null;
  else if (c === 0x74) return true;
  else if (c === 0x66) return false;
  return JSON.parse(b.toString('utf8', start, end));
}

/** an 'emptiness' array's stand-ins, shared: frozen, and only their length is ever read */
const EMPTY_ARRAY: readonly unknown[] = Object.freeze([]);
const NON_EMPTY_ARRAY: readonly unknown[] = Object.freeze([undefined]);

/** where the last viewObject() ended (a second result, without an object for the pair) */
let viewEnd = 0;

/** the view of the object at i (viewEnd: the position after it); undefined when the walk cannot decide */
function viewObject(b: Buffer, i: number, plan: JsonViewPlan): Record<string, unknown> | undefined {
  const view: Record<string, unknown> = {};
  i = space(b, i + 1);
  if (b[i] === RBRACE) {
    viewEnd = i + 1;
    return view;
  }
  for (;;) {
    if (b[i] !== QUOTE) return undefined;
    const keyStart = i;
    const keyEnd = string(b, i);
    if (keyEnd < 0) return undefined;
    const f = field(b, keyStart, keyEnd, plan);
    if (f === -2) return undefined; // "\u0065rror" is "error": rare enough to leave to JSON.parse
    i = space(b, keyEnd);
    if (b[i] !== COLON) return undefined;
    const start = space(b, i + 1);
    let end: number;
    if (f < 0) {
      end = value(b, start);
      if (end < 0) return undefined;
    } else {
      const use = plan.uses[f]!;
      const first = b[start];
      if (use instanceof JsonViewPlan && first === LBRACE) {
        const inner = viewObject(b, start, use); // as deep as the plan: a level or two
        if (inner === undefined) return undefined;
        end = viewEnd;
        view[plan.names[f]!] = inner;
      } else {
        end = value(b, start);
        if (end < 0) return undefined;
        view[plan.names[f]!] = use === 'emptiness' && first === LBRACKET ? (b[space(b, start + 1)] === RBRACKET ? EMPTY_ARRAY : NON_EMPTY_ARRAY) : valueOf(b, start, end);
      }
    }
    i = space(b, end);
    const c = b[i];
    if (c === RBRACE) {
      viewEnd = i + 1;
      return view;
    }
    if (c !== COMMA) return undefined;
    i = space(b, i + 1);
  }
}

/**
 * The fields of `plan` in the JSON object `b` (only those present), when `b` is one valid JSON
 * object; undefined when the walk cannot decide: then parse the body whole.
 */
export function viewJsonObject(b: Buffer, plan: JsonViewPlan): Record<string, unknown> | undefined {
  offset = b.byteOffset & 3;
  words = new Uint32Array(b.buffer as ArrayBuffer, b.byteOffset - offset, (b.length + offset) >> 2);
  const start = space(b, 0);
  const view = b[start] === LBRACE ? viewObject(b, start, plan) : undefined;
  words = NO_WORDS; // holds no body past its walk
  return view !== undefined && space(b, viewEnd) === b.length ? view : undefined;
}
