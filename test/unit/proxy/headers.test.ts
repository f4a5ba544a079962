// One list of hop-by-hop and credential headers (issue 8, defects 12 and 13): what the proxy
// strips from requests and responses, and what logs censor, cannot disagree.
import { describe, expect, it } from 'vitest';
import { CREDENTIAL_HEADERS, requestHeaders, responseHeaders } from '../../../src/proxy/headers.ts';
import { createLogger } from '../../../src/telemetry/log.ts';

function logLine(obj: Record<string, unknown>): string {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
  log.info(obj, 'line');
  return lines.join('');
}

describe('credential headers', () => {
  it('x-goog-api-key (and every other key header the proxy drops) is censored in logs', () => {
    for (const name of ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'proxy-authorization', 'cookie', 'set-cookie']) {
      const line = logLine({ headers: { [name]: 'sk-secret-value' }, req: { headers: { [name]: 'sk-secret-value' } } });
      expect(line, name).not.toContain('sk-secret-value');
      expect(line, name).toContain('[redacted]');
    }
  });

  it('every name the proxy strips from app requests as a credential is censored in logs, and the other way round', () => {
    for (const name of CREDENTIAL_HEADERS) {
      expect(requestHeaders({ [name]: 'v' }), name).toEqual({});
      expect(responseHeaders({ [name]: 'v' }), name).toEqual({});
      expect(logLine({ headers: { [name]: 'sk-secret-value' } }), name).not.toContain('sk-secret-value');
    }
  });
});

describe('requestHeaders', () => {
  it('drops hop-by-hop headers, the ones Connection names, framing and x-breakwater-* controls', () => {
    const out = requestHeaders({
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      host: '127.0.0.1:7878',
      'content-length': '10',
      'accept-encoding': 'gzip',
      expect: '100-continue',
      'x-breakwater-timeout': '5s',
      'content-type': 'application/json',
      'openai-beta': 'assistants=v2',
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'openai-beta': 'assistants=v2' });
  });

  it('with the usual Connection: keep-alive or close keeps every end-to-end header (and drops the listed ones otherwise)', () => {
    const app = { 'content-type': 'application/json', 'x-trace': 't' };
    for (const connection of ['keep-alive', 'Keep-Alive', 'close', 'Close']) {
      expect(requestHeaders({ connection, ...app }), connection).toEqual(app);
    }
    expect(requestHeaders({ connection: 'Keep-Alive, X-Trace', ...app })).toEqual({ 'content-type': 'application/json' });
  });
});

describe('responseHeaders', () => {
  it('drops what the provider\'s Connection header names, every x-breakwater-* and Set-Cookie', () => {
    const out = responseHeaders({
      connection: 'close, X-Per-Hop',
      'x-per-hop': 'a',
      'transfer-encoding': 'chunked',
      'content-length': '5',
      'set-cookie': ['a=1'],
      'x-breakwater-endpoint': 'forged',
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'x-request-id': 'req_1',
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-request-id': 'req_1' });
  });

  it('drops Content-Encoding only when the body was decoded here', () => {
    expect(responseHeaders({ 'content-encoding': 'gzip' }, true)).toEqual({});
  });
});
