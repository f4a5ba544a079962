// The JSON answer walk (src/proxy/json-view.ts) against JSON.parse: it may only call a body a
// valid object when JSON.parse accepts it, and then its view must be what the parsed body holds
// in the planned fields; classifyJsonAnswer must give the verdict and usage of a whole parse.
import { describe, expect, it } from 'vitest';
import { classifyJsonAnswer, classifyJsonBody } from '../../../src/proxy/classify.ts';
import { anthropic } from '../../../src/proxy/dialects/anthropic.ts';
import { openai } from '../../../src/proxy/dialects/openai.ts';
import type { DialectRules, PathKind } from '../../../src/proxy/dialects/types.ts';
import { JsonViewPlan, viewJsonObject, type JsonFields } from '../../../src/proxy/json-view.ts';
import { seeded } from '../../support/random.ts';

const USAGE: JsonFields = { prompt_tokens: 'value', completion_tokens: 'value' };
const FIELDS: JsonFields = { error: 'value', object: 'value', choices: 'emptiness', usage: USAGE };
const PLAN = new JsonViewPlan(FIELDS);

/** what the view of a JSON.parse'd value under `fields` must be */
function project(value: Record<string, unknown>, fields: JsonFields): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const [name, use] of Object.entries(fields)) {
    if (!Object.hasOwn(value, name)) continue;
    const v = value[name];
    if (use === 'emptiness' && Array.isArray(v)) view[name] = v.length === 0 ? [] : [undefined];
    else if (typeof use === 'object' && typeof v === 'object' && v !== null && !Array.isArray(v)) view[name] = project(v as Record<string, unknown>, use);
    else view[name] = v;
  }
  return view;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const view = (text: string) => viewJsonObject(Buffer.from(text), PLAN);

describe('viewJsonObject', () => {
  it.each([
    ['a chat completion', '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'],
    ['pretty-printed, as OpenAI sends it', '{\n  "object": "chat.completion",\n  "choices": [\n    {\n      "index": 0\n    }\n  ],\n  "usage": {\n    "prompt_tokens": 1\r\n  }\n}\n'],
    ['empty choices', '{"choices":[],"object":"chat.completion"}'],
    ['empty choices with space inside', '{"choices":[ \n ]}'],
    ['error null', '{"error":null,"choices":[{}]}'],
    ['an error object', '{"error":{"message":"x","type":"server_error","param":null,"code":null}}'],
    ['duplicate keys: the last wins', '{"choices":[],"object":"a","choices":[{}],"object":"b","usage":{"prompt_tokens":1},"usage":null}'],
    ['choices that is not an array is kept whole', '{"choices":{"a":[1,2]}}'],
    ['usage that is not an object is kept whole', '{"usage":[1,2]}'],
    ['usage with odd numbers', '{"usage":{"prompt_tokens":1.5e1,"completion_tokens":-0,"x":123456789012345678901}}'],
    ['big and exact numbers', '{"usage":{"prompt_tokens":123456789012345678,"completion_tokens":9007199254740993}}'],
    ['escapes in values and nested keys', '{"object":"a\\"b\\\\c\\u00e9\\n","choices":[{"c\\u0068oices":"\\/"}]}'],
    ['non-ASCII text', '{"object":"héllo 👋","choices":[{"content":"wörld ✨"}]}'],
    ['every literal and number form', '{"a":[true,false,null,0,-0,1,-1.5,2e10,2E-3,3e+2,0.0],"object":null}'],
    ['an empty object', '{}'],
    ['space around everything', ' \t\r\n{ "object" : "x" , "choices" : [ ] } \n'],
    ['a long string (the word loop)', `{"choices":[{"content":"${'0123456789abcdef'.repeat(100)}"}],"object":"${'x'.repeat(37)}"}`],
    ['a long string with an escape at the end of a word', `{"object":"${'x'.repeat(35)}\\"${'y'.repeat(40)}"}`],
    ['a key the plan names inside a nested object is not top-level', '{"data":{"error":"nested","choices":[]},"object":"top"}'],
  ])('%s: the fields JSON.parse reads', (_label, text) => {
    expect(view(text)).toEqual(project(JSON.parse(text) as Record<string, unknown>, FIELDS));
  });

  it.each([
    ['empty', ''],
    ['only space', ' \n'],
    ['truncated', '{"choices":[{"index":0'],
    ['truncated inside a string', '{"object":"chat.compl'],
    ['truncated after a backslash', '{"object":"a\\'],
    ['a trailing comma in an object', '{"a":1,}'],
    ['a trailing comma in an array', '{"a":[1,]}'],
    ['a missing comma', '{"a":1 "b":2}'],
    ['a missing colon', '{"a" 1}'],
    ['a missing value', '{"a":}'],
    ['a leading comma', '{,"a":1}'],
    ['a leading zero', '{"a":01}'],
    ['a bare minus', '{"a":-}'],
    ['a dot without digits', '{"a":1.}'],
    ['a leading dot', '{"a":.5}'],
    ['an exponent without digits', '{"a":1e}'],
    ['a plus sign', '{"a":+1}'],
    ['NaN', '{"a":NaN}'],
    ['Infinity', '{"a":Infinity}'],
    ['a misspelt literal', '{"a":tru}'],
    ['a literal cut short at the end', '{"a":nul'],
    ['single quotes', "{'a':1}"],
    ['an unquoted key', '{a:1}'],
    ['a raw newline in a string', '{"a":"x\ny"}'],
    ['a raw tab in a string', '{"a":"x\ty"}'],
    ['a raw NUL in a long string', `{"a":"${'x'.repeat(40)}\u0000${'x'.repeat(40)}"}`],
    ['an unknown escape', '{"a":"\\x41"}'],
    ['a short unicode escape', '{"a":"\\u12"}'],
    ['a non-hex unicode escape', '{"a":"\\u12G4"}'],
    ['an extra closing brace', '{"a":1}}'],
    ['a mismatched bracket', '{"a":[1}'],
    ['data after the object', '{"a":1} x'],
    ['two objects', '{}{}'],
    ['a comment', '{"a":1 /* c */}'],
    ['a byte-order mark', '\ufeff{"a":1}'],
    ['a form feed as space', '{"a":\f1}'],
    ['non-ASCII outside strings', '{"a":1é}'],
  ])('%s: not a valid object, so never a view', (_label, text) => {
    expect(parsed(text) === undefined || typeof parsed(text) !== 'object').toBe(true); // the case is invalid JSON indeed
    expect(view(text)).toBeUndefined();
  });

  it.each([
    ['an array', '[{"choices":[]}]'],
    ['a string', '"ok"'],
    ['null', 'null'],
    ['a number', '42'],
    ['nested deeper than the walk goes', `{"a":${'['.repeat(100)}${']'.repeat(100)}}`],
    ['a top-level key written with an escape', '{"\\u0065rror":{"message":"x"}}'],
  ])('%s: left to JSON.parse (undecided)', (_label, text) => {
    expect(view(text)).toBeUndefined();
  });

  it('a body in the middle of a larger buffer is read within its bounds', () => {
    const text = '{"object":"x","choices":[]}';
    const big = Buffer.from(`xxx${text}{"trailing":1}`);
    expect(viewJsonObject(big.subarray(3, 3 + text.length), PLAN)).toEqual({ object: 'x', choices: [] });
    expect(viewJsonObject(big.subarray(3, 3 + text.length - 1), PLAN)).toBeUndefined();
  });

  it('a long string at every alignment in its buffer', () => {
    for (let offset = 0; offset < 8; offset++) {
      for (const special of ['', '\\"', '\\\\', '\u0001', '"']) {
        const text = `{"object":"${'a'.repeat(20 + offset)}${special}${'b'.repeat(30)}"}`;
        const buffer = Buffer.concat([Buffer.alloc(offset, 0x20), Buffer.from(text)]).subarray(offset);
        const expected = parsed(text);
        expect(viewJsonObject(buffer, PLAN), `${offset} ${JSON.stringify(special)}`).toEqual(expected === undefined ? undefined : project(expected as Record<string, unknown>, FIELDS));
      }
    }
  });

  it('agrees with JSON.parse on 3000 seeded random bodies and their mutations', () => {
    const random = seeded(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const text = () => Array.from({ length: Math.floor(random() * 6) }, () => pick(['error', 'choices', '"', '\\', '{', '}', ':', ',', 'é', '👋', 'x', ' ', '\n', 'u'])).join('');
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.35) return pick([text(), 0, 0.5, -3, 12, 1e21, 2.5e-7, true, false, null, '']);
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let k = Math.floor(random() * 4); k > 0; k--) o[pick(['error', 'object', 'choices', 'usage', 'prompt_tokens', 'completion_tokens', text()])] = value(depth + 1);
      return o;
    };
    const mutate = (s: string): string => {
      const at = Math.floor(random() * (s.length + 1));
      switch (Math.floor(random() * 4)) {
        case 0:
          return s.slice(0, at) + s.slice(at + 1); // a byte (a character) dropped
        case 1:
          return s.slice(0, at) + pick(['"', ',', '}', ']', '\\', ':', '0', '-', '\u0001', ' ', 'e']) + s.slice(at);
        case 2:
          return s.slice(0, at); // truncated
        default:
          return s;
      }
    };
    let decided = 0;
    for (let n = 0; n < 3000; n++) {
      const root = value(0);
      const object = typeof root === 'object' && root !== null && !Array.isArray(root) ? root : { choices: root };
      const whole = JSON.stringify(object, null, random() < 0.3 ? 2 : undefined);
      for (const candidate of [whole, mutate(whole)]) {
        const got = view(candidate);
        const expected = parsed(Buffer.from(candidate).toString()); // as the proxy parses: bytes decoded (a cut surrogate pair is U+FFFD)
        if (got !== undefined) {
          decided++;
          expect(typeof expected === 'object' && expected !== null && !Array.isArray(expected), candidate).toBe(true);
          expect(got, candidate).toEqual(project(expected as Record<string, unknown>, FIELDS));
        }
      }
      // a valid object is always decided, unless a key the walk reads (top level, usage's) needs an escape (left to JSON.parse)
      const plainKeys = (o: object): boolean => Object.keys(o).every((k) => JSON.stringify(k) === `"${k}"`);
      const usage = (object as Record<string, unknown>).usage;
      if (plainKeys(object) && (typeof usage !== 'object' || usage === null || plainKeys(usage))) expect(view(whole), whole).toBeDefined();
    }
    expect(decided).toBeGreaterThan(3000);
  });
});

describe('classifyJsonAnswer gives the verdict and usage of a whole parse', () => {
  const ON = { emptyChoices: true, errorInBody: true };
  const OFF = { emptyChoices: false, errorInBody: false };
  const viaParse = (dialect: DialectRules, text: string, checks: typeof ON, path: PathKind) => {
    const { outcome, body } = classifyJsonBody(dialect, text, checks, path);
    return { outcome, usage: outcome.kind === 'ok' ? dialect.readUsage(body) : undefined };
  };
  const bodies: [DialectRules, string][] = [
    [openai, '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'],
    [openai, '{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":9}}'],
    [openai, '{"object":"chat.completion"}'],
    [openai, '{"object":"chat.completion.chunk","choices":{}}'],
    [openai, '{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}'],
    [openai, '{"object":"list","data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":8,"total_tokens":8}}'],
    [openai, '{"error":{"message":"x","type":"server_error","param":null,"code":null}}'],
    [openai, '{"error":null,"object":"chat.completion","choices":[{}]}'],
    [openai, '{"error":false,"choices":[{}]}'],
    [openai, '{"\\u0065rror":{"message":"x"},"choices":[{}]}'],
    [openai, '{"choices":[],"choices":[{}]}'],
    [openai, '{"choices":[{}],"choices":[]}'],
    [openai, '{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":5,"output_tokens":7}}'],
    [openai, '{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":5,"output_tokens":7}}}'],
    [openai, '{"usage":{"prompt_tokens":null,"input_tokens":4,"completion_tokens":"many","output_tokens":3}}'],
    [openai, '{"usage":{"prompt_tokens":-3,"completion_tokens":1e400}}'],
    [openai, '{"usage":"lots"}'],
    [openai, '{"choices":[{}],"usage":{"prompt_tokens":1},"object":"chat.completion"}\n'],
    [openai, '{"choices":[{}]'],
    [openai, '{"choices":[{"content":"a\nb"}]}'],
    [openai, '[]'],
    [openai, '"ok"'],
    [openai, 'null'],
    [openai, ''],
    [anthropic, '{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":20,"output_tokens":4}}'],
    [anthropic, '{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":20,"output_tokens":0}}'],
    [anthropic, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'],
    [anthropic, '{"type":"message","content":[{}],"error":null}'],
    [anthropic, '{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}'],
    [anthropic, '{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":2}'],
  ];
  it.each(bodies.flatMap(([dialect, text]) => (['generation', 'embeddings', 'other'] as const).flatMap((path) => [ON, OFF].map((checks) => [dialect.name, text, path, checks] as const))))('%s %s (%s, %o)', (name, text, path, checks) => {
    const dialect = name === 'openai' ? openai : anthropic;
    expect(classifyJsonAnswer(dialect, Buffer.from(text), checks, path)).toEqual(viaParse(dialect, text, checks, path));
  });
});

describe('each dialect\'s jsonView names every field its checks and usage read', () => {
  /** `value` wrapped so that every property read is recorded as a path (a.b, a.length) */
  const recorded = (value: unknown, path: string, reads: Set<string>): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    return new Proxy(value, {
      get(target, key, receiver) {
        const name = `${path}${String(key)}`;
        reads.add(name);
        return recorded(Reflect.get(target, key, receiver) as unknown, `${name}.`, reads);
      },
    });
  };
  /** the paths a plan lets a rule read: its fields, the fields of nested plans, an emptiness array's length */
  const allowed = (plan: JsonViewPlan, path = ''): string[] =>
    plan.names.flatMap((name, f) => {
      const use = plan.uses[f]!;
      if (use === 'emptiness') return [`${path}${name}`, `${path}${name}.length`];
      if (use instanceof JsonViewPlan) return [`${path}${name}`, ...allowed(use, `${path}${name}.`)];
      return [`${path}${name}`];
    });
  const samples = [
    { object: 'chat.completion', choices: [{ message: { content: 'hi' } }], data: [{}], usage: { prompt_tokens: 1, completion_tokens: 2, input_tokens: 3, output_tokens: 4 }, error: { message: 'x' }, type: 'message', content: [{ type: 'text' }], message: { usage: { input_tokens: 1 } }, response: { usage: { input_tokens: 1 } } },
    { object: 'chat.completion', choices: [], data: [], usage: null, error: null, type: 'error', content: [] },
    { type: 'message', content: [], usage: { output_tokens: 0 }, message: { usage: null }, response: { usage: { output_tokens: 0 } } },
    {},
  ];
  it.each([openai, anthropic])('$name', (dialect) => {
    const ok = new Set(allowed(dialect.jsonView));
    for (const sample of samples) {
      for (const path of ['generation', 'embeddings', 'other'] as const) {
        for (const checks of [{ emptyChoices: true, errorInBody: true }, { emptyChoices: true, errorInBody: false }, { emptyChoices: false, errorInBody: true }]) {
          const reads = new Set<string>();
          dialect.invalidBody(recorded(sample, '', reads), checks, path);
          dialect.readUsage(recorded(sample, '', reads));
          const outside = [...reads].filter((read) => !ok.has(read));
          expect(outside, `${JSON.stringify(sample)} ${path}`).toEqual([]);
        }
      }
    }
  });
});
