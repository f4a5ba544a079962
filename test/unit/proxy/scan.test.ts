// The top-level field scan (src/proxy/scan.ts) against JSON.parse: the same fields, on hand-made
// edge cases and on seeded random documents, without the scan ever building the body.
import { describe, expect, it } from 'vitest';
import { scanBody, type BodyFields } from '../../../src/proxy/scan.ts';
import { seeded } from '../../support/random.ts';

/** what the request path read from a JSON.parse'd body before the scan existed */
function viaParse(text: string): BodyFields {
  const json = JSON.parse(text) as Record<string, unknown>;
  let maxTokens: number | undefined;
  for (const [k, v] of Object.entries(json)) {
    if (k === 'max_tokens' || k === 'max_completion_tokens' || k === 'max_output_tokens') maxTokens = typeof v === 'number' ? v : undefined;
  }
  return {
    model: typeof json.model === 'string' ? json.model : undefined,
    stream: json.stream === true,
    background: json.background === true,
    maxTokens,
    temperature: typeof json.temperature === 'number' ? json.temperature : undefined,
    n: typeof json.n === 'number' ? json.n : undefined,
  };
}

function scanned(text: string): BodyFields {
  const scan = scanBody(Buffer.from(text));
  if (scan.kind !== 'object') throw new Error(`not scanned as an object: ${JSON.stringify(scan)}`);
  return scan.fields;
}

describe('scanBody reads top-level fields only', () => {
  it.each([
    ['a plain chat body', '{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":64,"temperature":0}'],
    ['"model" inside message content', '{"messages":[{"role":"user","content":"say \\"model\\": \\"evil\\""}],"model":"real"}'],
    ['a nested "model" key', '{"metadata":{"model":"nested","stream":true},"tools":[{"model":"x"}],"model":"top"}'],
    ['escaped quotes and backslashes before the key', '{"a":"x\\\\","model":"after-backslash","b":"\\\\\\"q"}'],
    ['an escaped model name', '{"model":"gpt\\u002d4.1\\n"}'],
    ['a key written with an escape', '{"mod\\u0065l":"escaped-key"}'],
    ['duplicate keys: the last wins', '{"model":"first","stream":true,"model":"second","stream":false}'],
    ['whitespace everywhere', ' \n{ "model" : "spaced" ,\t"stream" :\ntrue , "temperature" : 0.7 } \n'],
    ['wrong types are absent', '{"model":42,"stream":"true","max_tokens":"64","temperature":null,"background":1}'],
    ['a model whose value is an object', '{"model":{"name":"x"}}'],
    ['max_completion_tokens and max_output_tokens', '{"max_completion_tokens":100,"max_output_tokens":7}'],
    ['numbers with exponents and signs', '{"temperature":-0.0,"max_tokens":1e3}'],
    ['non-ASCII content around the fields', '{"messages":[{"content":"héllo \\"wörld\\" 🚀"}],"model":"ünïcode-ø"}'],
    ['an empty object', '{}'],
    ['background true', '{"model":"m","background":true,"input":"x"}'],
    ['n choices, and a key that only starts like one', '{"n":3,"nn":4,"model":"m"}'],
  ])('%s', (_name, text) => {
    expect(scanned(text)).toEqual(viaParse(text));
  });

  it('agrees with JSON.parse on 500 seeded random bodies', () => {
    const random = seeded(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const word = () => pick(['model', 'stream', 'temperature', 'max_tokens', '"', '\\', '{', '}', '[', ']', ':', ',', 'é', 'x', ' ', '\\"']);
    const text = () => Array.from({ length: Math.floor(random() * 8) }, word).join('');
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.3) return pick([text(), 0, 0.5, -3, true, false, null, 1e21]);
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      return object(depth + 1);
    };
    const object = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      for (let k = Math.floor(random() * 6); k > 0; k--) o[pick(['model', 'stream', 'temperature', 'max_tokens', 'background', 'messages', 'n', text()])] = value(depth);
      return o;
    };
    for (let n = 0; n < 500; n++) {
      const body = JSON.stringify(object(0), null, random() < 0.5 ? 0 : 2);
      expect(scanned(body), body).toEqual(viaParse(body));
    }
  });
});

describe('scanBody and malformed bodies', () => {
  it.each([
    ['an unterminated string', '{"model":"gpt'],
    ['a missing closing brace', '{"model":"gpt","messages":[{"content":"x"}]'],
    ['an extra closing bracket', '{"model":"gpt"}]'],
    ['data after the root object', '{"model":"gpt"} {"model":"other"}'],
    ['an empty body', '   '],
    ['a bare word', 'model=gpt'],
  ])('refuses %s', (_name, text) => {
    expect(scanBody(Buffer.from(text)).kind).toBe('malformed');
  });

  it.each([['an array', '[{"model":"x"}]'], ['a string', '"model"'], ['a number', '42']])('says %s is not an object', (_name, text) => {
    expect(scanBody(Buffer.from(text))).toEqual({ kind: 'not_object' });
  });
});
