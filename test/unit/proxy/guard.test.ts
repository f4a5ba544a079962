// The proxy port's admission rules (issue 8, defects 6, 7, 9), as a pure function.
import { describe, expect, it } from 'vitest';
import { escapesBase, hostAllowed, refuse } from '../../../src/proxy/guard.ts';

const ok = { method: 'POST', url: '/openai/chat/completions', headers: { host: '127.0.0.1:7878', 'content-type': 'application/json' } };

describe('refuse', () => {
  it('lets an SDK request through', () => {
    expect(refuse(ok)).toBeUndefined();
  });
  it('refuses TRACE with 405 and names the allowed methods', () => {
    expect(refuse({ ...ok, method: 'TRACE' })).toMatchObject({ kind: 'method_not_allowed', headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE' } });
  });
  it('refuses a preflight as forbidden rather than as a method', () => {
    expect(refuse({ ...ok, method: 'OPTIONS', headers: { ...ok.headers, 'access-control-request-method': 'POST' } })?.kind).toBe('forbidden');
  });
  it('refuses an Origin, a non-none Sec-Fetch-Site and a rebindable Host', () => {
    expect(refuse({ ...ok, headers: { ...ok.headers, origin: 'null' } })?.kind).toBe('forbidden');
    expect(refuse({ ...ok, headers: { ...ok.headers, 'sec-fetch-site': 'same-origin' } })?.kind).toBe('forbidden');
    expect(refuse({ ...ok, headers: { ...ok.headers, 'sec-fetch-site': 'none' } })).toBeUndefined();
    expect(refuse({ ...ok, headers: { ...ok.headers, host: 'evil.example' } })?.kind).toBe('forbidden');
  });
  it('refuses a dot segment with 400', () => {
    expect(refuse({ ...ok, url: '/openai/%2e%2e/x?y=1' })?.kind).toBe('invalid_request');
  });
});

describe('hostAllowed', () => {
  it('accepts localhost and IP literals (which cannot be rebound), with or without a port', () => {
    for (const h of [undefined, 'localhost', 'LOCALHOST:7878', '127.0.0.1', '127.0.0.1:7878', '[::1]:7878', '[::1]', '10.0.0.5:7878']) expect(hostAllowed(h), String(h)).toBe(true);
  });
  it('refuses every other name and malformed values', () => {
    for (const h of ['evil.example', 'localhost.evil.example:7878', '127.0.0.1.nip.io', 'localhost:x', '[::1', '::1', '[evil]:1', '']) expect(hostAllowed(h), h).toBe(false);
  });
});

describe('escapesBase', () => {
  it('finds dot segments raw, percent-encoded (once or twice), after a backslash or before a ;param', () => {
    for (const p of ['/a/../b', '/a/./b', '/a/..', '/a/%2e%2E/b', '/a/.%2e/b', '/a/..%2Fb', '/a/%252e%252e/b', '/a\\b', '/a/%5Cb', '/a/..;x/b', '/a/%2e']) expect(escapesBase(p), p).toBe(true);
  });
  it('lets dots inside names and other escapes through', () => {
    for (const p of ['/a/b.c', '/a/...', '/a/..b', '/a/b..', '/a/%20b', '/a/%41', '/a/%zz', '/']) expect(escapesBase(p), p).toBe(false);
  });
});
