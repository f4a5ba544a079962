// The endpoint URL grammar (one pattern for CEL and TypeScript) and the one URL formatter for
// messages. The grammar must never accept a string Node's URL parser refuses: compile would
// then throw where the API server said yes.
import { describe, expect, it } from 'vitest';
import { celString, ENDPOINT_URL_PATTERN, redactUrl, redactUrlsIn } from '../../../src/config/url.ts';
import { seeded as seededRandom } from '../../support/random.ts';


const grammar = new RegExp(ENDPOINT_URL_PATTERN);

describe('ENDPOINT_URL_PATTERN', () => {
  it.each([
    'https://api.openai.com/v1',
    'http://127.0.0.1:8080/v1',
    'http://[::1]:8000/v1',
    'http://[2001:db8::7]/v1',
    'http://vllm.inference.svc.cluster.local:8000/v1',
    'https://x.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21',
    'https://generativelanguage.googleapis.com/v1beta/openai/',
    'https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3:0/invoke',
    'http://localhost:11434',
  ])('accepts %s', (url) => {
    expect(grammar.test(url)).toBe(true);
    expect(URL.canParse(url)).toBe(true);
  });

  it.each([
    'http://api.example.com:99999/v1',
    'https://api.example.com:65536/v1',
    'http://api.example.com:08080/v1',
    'http://999.1.1.1/v1',
    'http://1.2.3/v1',
    'http://[:::1]/v1',
    'http://[zz]/v1',
    'http://api.example.com/%zz',
    'http://api.example.com/v1#frag',
    'http:///v1',
    'http://-a.example.com/v1',
    'http://a..example.com/v1',
    'http://us er@api.example.com/v1',
  ])('refuses %s', (url) => {
    expect(grammar.test(url)).toBe(false);
  });

  it('accepts nothing that Node\'s URL parser refuses (random strings over the URL alphabet)', () => {
    const random = seededRandom(8);
    const alphabet = 'ab19.:-_/?%@[]#&=fF0';
    let accepted = 0;
    for (let i = 0; i < 50_000; i++) {
      let url = i % 2 === 0 ? 'http://' : 'https://';
      const length = 1 + Math.floor(random() * 14);
      for (let j = 0; j < length; j++) url += alphabet[Math.floor(random() * alphabet.length)];
      if (!grammar.test(url)) continue;
      accepted++;
      expect(URL.canParse(url), url).toBe(true);
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it('is written into CEL as a literal that reads back as the same pattern', () => {
    const literal = celString(ENDPOINT_URL_PATTERN);
    expect(literal.startsWith("'") && literal.endsWith("'")).toBe(true);
    // CEL's escapes are JSON's for \\ and \' : undo them and the pattern comes back
    expect(literal.slice(1, -1).replace(/\\(['\\])/g, '$1')).toBe(ENDPOINT_URL_PATTERN);
  });
});

describe('redactUrl', () => {
  it('drops user info, query values and the fragment, keeping scheme, host, port and path', () => {
    expect(redactUrl('https://user:pass@api.example.com/v1?key=sk-123&x=1')).toBe('https://api.example.com/v1?key=redacted&x=redacted');
    expect(redactUrl('http://user:PASS@host:99999/v1?token#access_token=abc')).toBe('http://host:99999/v1?redacted');
    expect(redactUrl('http://127.0.0.1:8080/v1')).toBe('http://127.0.0.1:8080/v1');
  });

  it('redacts URLs that do not parse, up to the last @ of the authority', () => {
    expect(URL.canParse('https://a:b@c@host:99999/v1')).toBe(false);
    expect(redactUrl('https://a:b@c@host:99999/v1')).toBe('https://host:99999/v1');
    expect(redactUrl('https://host/v1/@team')).toBe('https://host/v1/@team');
  });

  it('redacts every URL inside a message, leaving the punctuation around it', () => {
    expect(redactUrlsIn('url "http://u:PASS@h:1/v1?k=s": bad; see https://x/y.')).toBe('url "http://h:1/v1?k=redacted": bad; see https://x/y.');
  });
});
