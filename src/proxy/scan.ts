// Reads the few top-level fields of a JSON request body the request path needs (model, stream,
// background, max tokens, temperature) without parsing the body. Real prompts are 10–200 KB and
// JSON.parse builds every message string only to have it thrown away; here the walk jumps from
// quote to quote with Buffer.indexOf (native), so its cost grows with the number of strings and
// brackets, not with the bytes inside the strings. Nested values are skipped by depth.
//
// UTF-8 never puts the bytes of '"' or '\' inside a multi-byte character, so a byte walk finds
// the same string boundaries as a character walk. Duplicate keys: the last wins, as in JSON.parse.
// The walk checks structure (strings closed, brackets balanced, nothing after the root object)
// but not every detail of the grammar: a body that needs a rewrite is parsed whole anyway
// (fallback.ts), and the provider rejects the rest.
import { BACKSLASH, COLON, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } from './json-bytes.ts';

export interface BodyFields {
  model: string | undefined;
  /** `"stream": true` */
  stream: boolean;
  /** `"background": true` (a Responses call that creates work on the provider) */
  background: boolean;
  /** max_tokens, max_completion_tokens or max_output_tokens, whichever comes last */
  maxTokens: number | undefined;
  temperature: number | undefined;
  /** choices to generate (OpenAI `n`) */
  n: number | undefined;
}

export type BodyScan =
  | { kind: 'object'; fields: BodyFields }
  /** valid-looking JSON that is not an object (an array, a string...) */
  | { kind: 'not_object' }
  | { kind: 'malformed'; reason: string };

type Field = 'model' | 'stream' | 'background' | 'maxTokens' | 'temperature' | 'n';

const FIELDS: ReadonlyMap<string, Field> = new Map([
  ['model', 'model'],
  ['stream', 'stream'],
  ['background', 'background'],
  ['max_tokens', 'maxTokens'],
  ['max_completion_tokens', 'maxTokens'],
  ['max_output_tokens', 'maxTokens'],
  ['temperature', 'temperature'],
  ['n', 'n'],
]);
/** no key we read is longer: longer keys are never decoded */
const LONGEST_KEY = 'max_completion_tokens'.length;

const KEY_BYTES: readonly (readonly [Buffer, Field])[] = [...FIELDS].map(([key, field]) => [Buffer.from(key, 'latin1'), field] as const);

/** the field a key at [start, end) names, compared byte by byte (no string is made for a key) */
function keyField(b: Buffer, start: number, end: number): Field | undefined {
  const length = end - start;
  if (length > LONGEST_KEY) return undefined;
  for (const [key, field] of KEY_BYTES) {
    if (key.length !== length) continue;
    let k = 0;
    while (k < length && b[start + k] === key[k]) k++;
    if (k === length) return field;
  }
  // a key written with escapes ("mod\u0065l") is rare: decode it
  for (let k = start; k < end; k++) if (b[k] === BACKSLASH) return FIELDS.get(decodeString(b, start - 1, end) ?? '');
  return undefined;
}

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

const SHORT_STRING = 48;

/** index of the quote closing a string whose content starts at `from`, or -1 */
export function closingQuote(b: Buffer, from: number): number {
  // most strings are short (keys, roles, model names): a loop beats a call into native code,
  // which pays off only for the long ones (message content)
  const near = Math.min(b.length, from + SHORT_STRING);
  let i = from;
  for (; i < near; i++) {
    const c = b[i];
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i;
  }
  if (i > near) i = near; // a backslash at the edge skipped past it: look again from there
  for (;;) {
    const q = b.indexOf(QUOTE, i);
    if (q < 0) return -1;
    let slashes = 0;
    for (let k = q - 1; k >= from && b[k] === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q;
    i = q + 1;
  }
}

/** the string between quotes at [start, end] (both quotes included), unescaped */
function decodeString(b: Buffer, start: number, end: number): string | undefined {
  let escaped = false;
  for (let k = start + 1; k < end && !escaped; k++) escaped = b[k] === BACKSLASH;
  if (!escaped) return b.toString('utf8', start + 1, end);
  try {
    return JSON.parse(b.toString('utf8', start, end + 1)) as string;
  } catch {
    return undefined;
  }
}

/** a bare token (number, true, false, null) from `start`: its end (exclusive) */
function tokenEnd(b: Buffer, start: number): number {
  let i = start;
  while (i < b.length) {
    const c = b[i]!;
    if (c === COMMA || c === RBRACE || c === RBRACKET || isSpace(c)) break;
    i++;
  }
  return i;
}

export function scanBody(b: Buffer): BodyScan {
  const fields: BodyFields = { model: undefined, stream: false, background: false, maxTokens: undefined, temperature: undefined, n: undefined };
  let i = 0;
  while (isSpace(b[i])) i++;
  if (i >= b.length) return { kind: 'malformed', reason: 'empty body' };
  if (b[i] !== LBRACE) {
    if (b[i] === LBRACKET || b[i] === QUOTE || b[i] === 0x2d || (b[i]! >= 0x30 && b[i]! <= 0x39) || b[i] === 0x74 || b[i] === 0x66 || b[i] === 0x6e) return { kind: 'not_object' };
    return { kind: 'malformed', reason: `unexpected byte at ${i}` };
  }
  let depth = 0;
  /** at depth 1: the next string is a key */
  let expectKey = false;
  /** at depth 1: the field the value being read belongs to (undefined: a key we skip) */
  let field: Field | undefined;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const end = closingQuote(b, i + 1);
      if (end < 0) return { kind: 'malformed', reason: 'unterminated string' };
      if (depth === 1) {
        if (expectKey) {
          field = keyField(b, i + 1, end);
          expectKey = false;
        } else if (field === 'model') {
          fields.model = decodeString(b, i, end);
        } else if (field !== undefined) {
          setLiteral(fields, field, undefined); // a string where a number or boolean belongs: not one
        }
      }
      i = end;
      continue;
    }
    if (c === LBRACE || c === LBRACKET) {
      if (depth === 1 && field !== undefined) setLiteral(fields, field, undefined);
      depth++;
      if (depth === 1) expectKey = true;
      continue;
    }
    if (c === RBRACE || c === RBRACKET) {
      depth--;
      if (depth < 0) return { kind: 'malformed', reason: `unbalanced bracket at ${i}` };
      if (depth === 0) {
        for (i++; i < b.length; i++) if (!isSpace(b[i])) return { kind: 'malformed', reason: `data after the root object at ${i}` };
        return { kind: 'object', fields };
      }
      continue;
    }
    if (depth !== 1 || isSpace(c) || c === COLON) continue;
    if (c === COMMA) {
      expectKey = true;
      field = undefined;
      continue;
    }
    // a bare value at the top level
    const end = tokenEnd(b, i);
    if (field !== undefined) setLiteral(fields, field, b.toString('latin1', i, end));
    i = end - 1;
  }
  return { kind: 'malformed', reason: 'unexpected end of body' };
}

function setLiteral(fields: BodyFields, field: Field, token: string | undefined): void {
  switch (field) {
    case 'model':
      fields.model = undefined;
      return;
    case 'stream':
      fields.stream = token === 'true';
      return;
    case 'background':
      fields.background = token === 'true';
      return;
    case 'maxTokens':
    case 'temperature':
    case 'n': {
      const n = token === undefined || token === 'true' || token === 'false' || token === 'null' ? Number.NaN : Number(token);
      fields[field] = Number.isFinite(n) ? n : undefined;
      return;
    }
  }
}

/** The whole body as an object (for a rewrite or a cache key), or why not. */
export function parseObject(bytes: Buffer): { kind: 'object'; value: Record<string, unknown> } | { kind: 'invalid'; message: string } {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return { kind: 'object', value: value as Record<string, unknown> };
    return { kind: 'invalid', message: 'not a JSON object' };
  } catch (err) {
    return { kind: 'invalid', message: (err as Error).message };
  }
}
