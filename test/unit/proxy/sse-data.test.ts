// SseData: the questions the SSE rules ask of an event's data (is it exactly, does it start
// with, does it contain), answered on a range of bytes, give the answers the decoded text gives;
// bytes outside the range never count.
import { describe, expect, it } from 'vitest';
import { Needle, SseData } from '../../../src/proxy/sse-data.ts';
import { seeded } from '../../support/random.ts';

/** `text` placed in the middle of a larger buffer, so that bytes on either side could be misread */
function view(text: string, before = 'data: {"usage":{"a":1}}\n', after = '\n"usage":{[DONE]'): SseData {
  const b = Buffer.from(before + text + after);
  const start = Buffer.byteLength(before);
  const data = new SseData();
  data.set(b, start, start + Buffer.byteLength(text));
  return data;
}

describe('SseData', () => {
  it('is() is exact equality of the data', () => {
    expect(view('[DONE]').is('[DONE]')).toBe(true);
    expect(view('[DONE] ').is('[DONE]')).toBe(false);
    expect(view('[DONE').is('[DONE]')).toBe(false); // the ']' after the range does not count
    expect(view('').is('')).toBe(true);
  });

  it('startsWith() looks only inside the range', () => {
    expect(view('{"error":{"message":"x"}}').startsWith('{"error"')).toBe(true);
    expect(view('{"err').startsWith('{"error"')).toBe(false);
    expect(view(' {"error":{}}').startsWith('{"error"')).toBe(false);
  });

  it('includes() finds a needle at the start, in the middle and at the very end of the range, and not past it', () => {
    expect(view('"usage":{"prompt_tokens":1}').includes(new Needle('"usage":{'))).toBe(true);
    expect(view('{"choices":[],"usage":{"prompt_tokens":1}}').includes(new Needle('"usage":{'))).toBe(true);
    expect(view('{"x":1,"usage":{').includes(new Needle('"usage":{'))).toBe(true);
    expect(view('{"x":1,"usage":').includes(new Needle('"usage":{'))).toBe(false); // the '{' just after the range does not count
    expect(view('{"usage":null}').includes(new Needle('"usage":{'))).toBe(false);
    expect(view('').includes(new Needle('"usage":{'))).toBe(false);
  });

  it('includes() handles repeated and overlapping prefixes of the needle', () => {
    expect(view('""usage""usage":{').includes(new Needle('"usage":{'))).toBe(true);
    expect(view('aaab').includes(new Needle('aab'))).toBe(true);
    expect(view('abababc').includes(new Needle('ababc'))).toBe(true);
    expect(view('abababd').includes(new Needle('ababc'))).toBe(false);
  });

  it('answers as the decoded text does, on random data with multi-byte characters (seeded)', () => {
    const random = seeded(11);
    const alphabet = ['"', 'u', 's', 'a', 'g', 'e', ':', '{', '}', '[', 'D', 'O', 'N', 'E', ']', 'é', '👋', ' ', 'x'];
    const needles = ['"usage":{', '[DONE]', '{"error"'];
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 24);
      let text = '';
      for (let k = 0; k < length; k++) text += alphabet[Math.floor(random() * alphabet.length)];
      if (random() < 0.3) text = text.slice(0, Math.floor(random() * text.length)) + needles[n % 3] + text.slice(Math.floor(random() * text.length));
      const data = view(text);
      const decoded = Buffer.from(text).toString(); // a pair cut by the slicing above is a lone surrogate, which UTF-8 turns into U+FFFD
      for (const needle of needles) {
        expect(data.includes(new Needle(needle)), `${JSON.stringify(text)} includes ${needle}`).toBe(decoded.includes(needle));
        expect(data.startsWith(needle), `${JSON.stringify(text)} startsWith ${needle}`).toBe(decoded.startsWith(needle));
        expect(data.is(needle)).toBe(decoded === needle);
      }
      expect(data.text()).toBe(decoded);
    }
  });

  it('clear() lets go of the bytes: the view is empty', () => {
    const data = view('[DONE]');
    data.clear();
    expect([data.length, data.text(), data.is('[DONE]')]).toEqual([0, '', false]);
  });
});
