// Canonical JSON from a body's bytes (the cache key's input): the same bytes as
// canonicalJson(JSON.parse(body)) for every valid body, whatever its key order, whitespace,
// escapes or number spelling; JSON.parse's verdict on invalid bodies; duplicate keys as
// JSON.parse reads them (the last wins); deep nesting refused without a stack overflow.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/proxy/cache.ts';
import { CanonicalWriter, InvalidJson, MAX_DEPTH, TooComplex } from '../../../src/proxy/canonical.ts';
import { seeded } from '../../support/random.ts';

const writer = new CanonicalWriter();
function canonical(text: string): string {
  writer.start();
  writer.writeCanonical(Buffer.from(text));
  const out = writer.bytes.toString('utf8');
  writer.finish(0);
  return out;
}
const expected = (text: string) => canonicalJson(JSON.parse(text));

// keys that sort differently by UTF-8 bytes and by UTF-16 units (😀 is a surrogate pair, below U+FFFF in UTF-16), escapes, index-like keys
const KEYS = ['a', 'b', 'ab', 'ba', '', 'é', '日本', '😀', '\uffff', 'a"b', 'a\\b', '\n', '\u0001', 'Z', '10', '2', '1', '__proto__', 'content', 'role'];
const LEAVES: unknown[] = [0, 1, -1, 1.5, 1e21, 1e-7, 123456789012345678, 0.1, true, false, null, ...KEYS];

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const r = random();
  if (depth > 4 || r < 0.3) return pick(LEAVES);
  if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const o: Record<string, unknown> = {};
  for (let k = Math.floor(random() * 5); k > 0; k--) o[pick(KEYS)] = randomValue(random, depth + 1);
  return o;
}

/** the same value written otherwise: whitespace around every separator, escapes for plain characters */
const respelled = (text: string) => text.replace(/,/g, ' ,\n\t').replace(/:/g, ' : ').replace(/é/g, '\\u00e9').replace(/"a"/g, '"\\u0061"');

describe('canonical JSON from bytes', () => {
  it('is byte for byte canonicalJson of the parsed body for 2,000 seeded random bodies, written two ways', () => {
    const random = seeded(10);
    for (let t = 0; t < 2000; t++) {
      const text = JSON.stringify({ v: randomValue(random, 0) });
      expect(canonical(text)).toBe(expected(text));
      expect(canonical(respelled(text))).toBe(expected(text));
    }
  });

  it('sorts keys at every depth, keeps array order and drops whitespace', () => {
    const text = ' {"model" : "m", "temperature":0, "messages":[{"role":"user","content":"hi"}], "x":{"b":1,"a":[2,1]}} ';
    expect(canonical(text)).toBe('{"messages":[{"content":"hi","role":"user"}],"model":"m","temperature":0,"x":{"a":[2,1],"b":1}}');
    expect(canonical('{"b":1,"a":2}')).toBe(canonical('{"a":2,"b":1}'));
    expect(canonical('{"a":[1,2]}')).not.toBe(canonical('{"a":[2,1]}'));
  });

  it('orders keys as JavaScript compares strings (UTF-16 units), not by UTF-8 bytes', () => {
    // U+FFFF sorts after the surrogate pair of 😀 in UTF-16, before its 4-byte UTF-8 form
    const text = '{"😀":1,"\uffff":2,"é":3,"a":4}';
    expect(canonical(text)).toBe(expected(text));
    expect(canonical(text)).toBe('{"a":4,"é":3,"😀":1,"\uffff":2}');
    // the same key spelled with an escape sorts where the character does
    expect(canonical('{"\\u00e9":3,"a":4}')).toBe('{"a":4,"é":3}');
  });

  it('spells numbers as JSON.stringify does: 1.0 is 1, -0 is 0, exponents expanded, overflow is null', () => {
    for (const n of ['1.0', '1', '-0', '0.0', '1e2', '1E+2', '1.5e-3', '123456789012345678', '9007199254740993', '1e21', '1e400', '-1e400', '0.1', '5e-324', '-12']) {
      expect(canonical(`{"x":${n}}`), n).toBe(expected(`{"x":${n}}`));
    }
    expect(canonical('{"t":1.0}')).toBe(canonical('{"t":1}'));
    expect(canonical('{"t":0.0}')).toBe('{"t":0}');
  });

  it('decodes escapes and writes strings as JSON.stringify does, unicode as UTF-8', () => {
    for (const text of ['{"s":"\\u0041\\/\\u00e9"}', '{"s":"日本語 😀"}', '{"s":"\\ud83d\\ude00"}', '{"s":"\\ud800"}', '{"s":"tab\\tquote\\"back\\\\"}', '{"s":"\\u0001"}']) {
      expect(canonical(text), text).toBe(expected(text));
    }
    expect(canonical('{"s":"\\u00e9"}')).toBe(canonical('{"s":"é"}'));
  });

  it('reads duplicate keys as JSON.parse does: the last one wins, in sorted and unsorted objects', () => {
    for (const text of ['{"a":1,"a":2}', '{"b":1,"a":2,"b":3}', '{"temperature":0.7,"model":"m","temperature":0}', `{${Array.from({ length: 20 }, (_, i) => `"k${i % 7}":${i}`).join(',')}}`]) {
      expect(canonical(text), text).toBe(expected(text));
    }
  });

  it('finds the invalid bodies JSON.parse refuses', () => {
    for (const text of ['{"a":01}', '{"a":1,}', '{"a" 1}', '{"a":tru}', '{"a":"\\x"}', '[1,]', '{"a":1}x', '{"a":-}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{a:1}', '{"a":[1 2]}', '{"a":"x}', '{"a":1', '', '{"a":1e}', '{"a":0x1}']) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(() => canonical(text), text).toThrow(InvalidJson);
    }
  });

  it('refuses nesting past MAX_DEPTH as too deep, without a stack overflow', () => {
    const deep = `{"a":${'['.repeat(MAX_DEPTH + 1)}${']'.repeat(MAX_DEPTH + 1)}}`;
    expect(() => canonical(deep)).toThrow(TooComplex);
    const deeper = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => canonical(deeper)).toThrow(TooComplex);
    const fine = `{"a":${'['.repeat(MAX_DEPTH - 1)}${']'.repeat(MAX_DEPTH - 1)}}`;
    expect(canonical(fine)).toBe(expected(fine));
  });

  it('refuses unsorted objects nested so that rearranging would move depth × size bytes, in time linear in the body', () => {
    // every level's keys are out of order, so every level moves everything inside it
    const levels = 400;
    const deep = `${'{"z":1,"a":'.repeat(levels)}"${'x'.repeat(100_000)}"${'}'.repeat(levels)}`;
    const started = performance.now();
    expect(() => canonical(deep)).toThrow(TooComplex);
    expect(performance.now() - started).toBeLessThan(5_000); // depth × size would be 40 MB of copying per body
    // a few such levels are fine
    const shallow = `${'{"z":1,"a":'.repeat(3)}"${'x'.repeat(1000)}"${'}'.repeat(3)}`;
    expect(canonical(shallow)).toBe(expected(shallow));
  });

  it('keys no body that is not valid UTF-8: two bodies a lenient provider reads alike must not share a key by their raw bytes', () => {
    // a provider that reads invalid bytes as U+FFFD sees {"\uFFFD":"one"} and {"\uFFFD":"two"}: neither may answer for the other
    const a = Buffer.concat([Buffer.from('{"m":{"'), Buffer.from([0x81]), Buffer.from('":"two","'), Buffer.from([0x80]), Buffer.from('":"one"}}')]);
    const b = Buffer.concat([Buffer.from('{"m":{"'), Buffer.from([0x80]), Buffer.from('":"one","'), Buffer.from([0x81]), Buffer.from('":"two"}}')]);
    for (const body of [a, b, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])]) {
      writer.start();
      expect(() => writer.writeCanonical(body)).toThrow(TooComplex);
      writer.finish(0);
    }
  });

  it('refuses a body whose numbers would spell out to far more than the body (9e20 is 21 digits), and keeps a few such numbers', () => {
    expect(canonical('{"a":[9e20,1E2,-5e3]}')).toBe('{"a":[900000000000000000000,100,-5000]}');
    const wide = `{"a":[${Array.from({ length: 20_000 }, () => '9e20').join(',')}]}`; // 100 KB that would spell out to 440 KB
    writer.start();
    expect(() => writer.writeCanonical(Buffer.from(wide))).toThrow(TooComplex);
    writer.finish(0);
    expect(canonical('{"b":1,"a":2}')).toBe('{"a":2,"b":1}'); // the writer is fine after it
  });

  it('zeroes what finish() is told is secret', () => {
    writer.start();
    writer.writeString('sk-secret\n');
    writer.writeCanonical(Buffer.from('{"a":1}'));
    const view = writer.bytes;
    writer.finish('sk-secret\n'.length);
    expect(view.toString('utf8')).toBe(`${'\0'.repeat(10)}{"a":1}`);
  });

  it('handles a body larger than its scratch buffer, and a small one after it', () => {
    const big = JSON.stringify({ messages: Array.from({ length: 400 }, (_, i) => ({ role: 'user', content: `message ${i} ${'x'.repeat(1000)}` })), model: 'm' });
    expect(canonical(big)).toBe(expected(big));
    expect(canonical('{"b":1,"a":2}')).toBe('{"a":2,"b":1}');
  });
});
