// The proxy port's edge (issue 8, defects 4, 6, 7, 9, 12, 13): what is refused before anything
// is forwarded with the endpoint's key, and how long and how many connections the port holds.
// Raw sockets (test/support/raw.ts) send what fetch would normalise away; the fake provider's
// records prove that a refused request never reached it.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, TEST_KEY, waitFor, type Rig } from '../support/rig.ts';
import { openSocket, rawBody, rawExchange, rawHeader, rawRequest } from '../support/raw.ts';

const LIMITS = { headersTimeoutMs: 500, bodyIdleMs: 500, checkEveryMs: 100 };

let rig: Rig;
let port: number;
beforeAll(async () => {
  rig = await startRig({
    fakes: 1,
    limits: LIMITS,
    upstreams: ([a]) => [
      { name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }], breaker: { volumeThreshold: 1000 } },
      { name: 'anthropic', api: 'anthropic', endpoints: [{ name: 'only', url: `${a!.url}/v1`, auth: { env: 'BREAKWATER_TEST_KEY', header: 'x-api-key' } }], breaker: { volumeThreshold: 1000 } },
    ],
  });
  port = rig.proxy.port;
});
afterAll(async () => rig.close());

const fakeRequests = () => rig.fakes[0]!.stats().requests;
const CHAT = chatBody();

describe('defect 7: methods are allow-listed', () => {
  for (const method of ['TRACE', 'PROPFIND', 'OPTIONS']) {
    it(`a ${method} request is refused with 405 and Allow, and never reaches the provider`, async () => {
      rig.fakes[0]!.resetStats();
      const r = await rawRequest(port, method, '/openai/models');
      expect(r.status).toBe(405);
      expect(rawHeader(r, 'allow')).toBe('GET, HEAD, POST, PUT, PATCH, DELETE');
      expect(rawHeader(r, 'x-should-retry')).toBe('false');
      expect((rawBody(r) as { error: { code: string } }).error.code).toBe('method_not_allowed');
      expect(fakeRequests()).toBe(0);
    });
  }

  it('TRACK and CONNECT requests are refused and never reach the provider', async () => {
    rig.fakes[0]!.resetStats();
    // Node's parser answers TRACK with 400 and closes a CONNECT nobody listens for; the
    // allow-list is the second line if either ever reaches the handler
    for (const [method, target] of [['TRACK', '/openai/models'], ['CONNECT', '/openai/models'], ['CONNECT', `127.0.0.1:${rig.fakes[0]!.port}`]] as const) {
      const r = await rawRequest(port, method, target);
      expect(r.closed).toBe(true);
      expect(r.status === undefined || r.status >= 400, r.text).toBe(true);
    }
    expect(fakeRequests()).toBe(0);
  });

  it('GET, POST and DELETE still pass', async () => {
    rig.fakes[0]!.resetStats();
    expect((await rawRequest(port, 'GET', '/openai/models')).status).toBe(200);
    expect((await rawRequest(port, 'POST', '/openai/chat/completions', { 'content-type': 'application/json' }, CHAT)).status).toBe(200);
    expect(rawHeader(await rawRequest(port, 'DELETE', '/openai/files/file-abc'), 'x-breakwater-error')).toBeUndefined();
    expect(fakeRequests()).toBe(3);
  });
});

describe('defect 6: browser pages cannot use the key', () => {
  it('a request with an Origin header is refused with 403 and never reaches the provider', async () => {
    rig.fakes[0]!.resetStats();
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${port}`]) {
      const r = await post(`${rig.base}/openai/chat/completions`, CHAT, { origin });
      expect(r.status, origin).toBe(403);
      expect(r.headers.get('x-should-retry')).toBe('false');
      expect((JSON.parse(r.text) as { error: { code: string } }).error.code).toBe('forbidden');
    }
    expect(fakeRequests()).toBe(0);
  });

  it('the refusal is in the upstream\'s dialect', async () => {
    const r = await post(`${rig.base}/anthropic/messages`, JSON.stringify({ model: 'claude', max_tokens: 5, messages: [] }), { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
  });

  it('a CORS preflight is refused with 403 and never forwarded', async () => {
    rig.fakes[0]!.resetStats();
    const r = await rawRequest(port, 'OPTIONS', '/openai/chat/completions', { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    expect(r.status).toBe(403);
    expect(rawHeader(r, 'access-control-allow-origin')).toBeUndefined();
    expect(fakeRequests()).toBe(0);
  });

  it('a browser request marked cross-site, same-site or same-origin by Sec-Fetch-Site is refused with 403', async () => {
    rig.fakes[0]!.resetStats();
    for (const site of ['cross-site', 'same-site', 'same-origin']) {
      const r = await rawRequest(port, 'GET', '/openai/models', { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors' });
      expect(r.status, site).toBe(403);
    }
    expect(fakeRequests()).toBe(0);
    // a navigation the user typed (Sec-Fetch-Site: none) carries no attacker
    expect((await rawRequest(port, 'GET', '/openai/models', { 'sec-fetch-site': 'none' })).status).toBe(200);
  });

  it('a request whose Host is not a loopback name (DNS rebinding) is refused with 403 and never reaches the provider', async () => {
    rig.fakes[0]!.resetStats();
    for (const host of ['rebind.attacker.example:7878', 'localhost.attacker.example', '127.0.0.1.nip.io']) {
      const r = await rawRequest(port, 'POST', '/openai/chat/completions', { host, 'content-type': 'application/json' }, CHAT);
      expect(r.status, host).toBe(403);
    }
    expect(fakeRequests()).toBe(0);
    for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, '10.1.2.3:7878']) {
      expect((await rawRequest(port, 'GET', '/openai/models', { host })).status, host).toBe(200);
    }
  });
});

describe('defect 9: paths cannot leave the endpoint\'s base path', () => {
  const escapes = [
    '/openai/../admin',
    '/openai/files/../../secret',
    '/openai/./models',
    '/openai/%2e%2e/admin',
    '/openai/%2E%2e/admin',
    '/openai/..%2fadmin',
    '/openai/files%2f..%2f..%2fadmin',
    '/openai/..\\admin',
    '/openai/files\\x',
    '/openai/%5c..%5cadmin',
    '/openai/%252e%252e/admin',
    '/openai/..;/admin',
    '/openai/models/..',
    '/openai/models/..?x=1',
  ];
  for (const target of escapes) {
    it(`${target} is refused with 400 and never reaches the provider`, async () => {
      rig.fakes[0]!.resetStats();
      const r = await rawRequest(port, 'GET', target);
      expect(r.status).toBe(400);
      expect((rawBody(r) as { error: { code: string } }).error.code).toBe('invalid_request');
      expect(fakeRequests()).toBe(0);
    });
  }

  it('dots inside a segment and a query with dots still pass', async () => {
    rig.fakes[0]!.resetStats();
    for (const target of ['/openai/files/report.v2..txt', '/openai/files/...', '/openai/models?after=../x']) {
      const r = await rawRequest(port, 'GET', target);
      expect(rawHeader(r, 'x-breakwater-error'), target).toBeUndefined();
    }
    expect(fakeRequests()).toBe(3);
  });
});

describe('defect 4: the proxy port has timeouts and a connection cap', () => {
  it('half-sent headers are closed after headersTimeout', async () => {
    rig.fakes[0]!.resetStats();
    const r = await rawExchange(port, ['POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nx-partial: '], { waitMs: 8_000 });
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
    expect(fakeRequests()).toBe(0);
  });

  it('a connection that never sends a byte is closed after headersTimeout', async () => {
    const r = await rawExchange(port, [], { waitMs: 8_000 });
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('an idle keep-alive connection outlives headersTimeout and serves the next request', async () => {
    const socket = await openSocket(port);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const get = 'GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    try {
      socket.write(get);
      await waitFor(() => text.includes('"object"'), 'the first response');
      await new Promise((r) => setTimeout(r, LIMITS.headersTimeoutMs * 3));
      expect(socket.destroyed).toBe(false);
      text = '';
      socket.write(get);
      await waitFor(() => text.includes('"object"'), 'the second response on the same connection');
      expect(text).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      socket.destroy();
    }
  });

  it('a buffered body that stalls gets a 408 in the dialect\'s shape and never reaches the provider', async () => {
    rig.fakes[0]!.resetStats();
    const head = `POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${CHAT.length}\r\n\r\n`;
    const r = await rawExchange(port, [head + CHAT.slice(0, 10)], { waitMs: 8_000 });
    expect(r.status).toBe(408);
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
    expect((rawBody(r) as { error: { code: string } }).error.code).toBe('request_timeout');
    expect(fakeRequests()).toBe(0);
  });

  it('a body that keeps coming, slower than every edge timer in total, still goes through', async () => {
    rig.fakes[0]!.resetStats();
    const head = `POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${CHAT.length}\r\nconnection: close\r\n\r\n`;
    const parts = [head, ...CHAT.match(/.{1,8}/g)!];
    const r = await rawExchange(port, parts, { gapMs: 150, waitMs: 15_000 });
    expect(r.ms).toBeGreaterThan(LIMITS.headersTimeoutMs + LIMITS.bodyIdleMs);
    expect(r.status).toBe(200);
    expect(fakeRequests()).toBe(1);
  });

  it('a long streamed upload (a non-buffered path) with pauses longer than the body idle timer still works', async () => {
    rig.fakes[0]!.resetStats();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${rig.base}/openai/files`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      let n = 0;
      const tick = () => {
        if (n++ === 4) return void req.end('end');
        req.write('x'.repeat(1000));
        setTimeout(tick, LIMITS.bodyIdleMs + 200);
      };
      tick();
    });
    expect(status).toBe(200);
    expect(rig.fakes[0]!.stats().recent.at(-1)?.path).toBe('/v1/files');
  });
});

describe('defect 4: connection cap', () => {
  let capped: Rig;
  beforeAll(async () => {
    capped = await startRig({ fakes: 1, limits: { maxConnections: 4 }, upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }] }] });
  });
  afterAll(async () => capped.close());

  it('past the connection cap a new connection is closed at once; a freed slot serves again', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 4; i++) held.push(await openSocket(capped.proxy.port));
    await new Promise((r) => setTimeout(r, 100));
    const over = await rawRequest(capped.proxy.port, 'GET', '/openai/models');
    expect(over.closed).toBe(true);
    expect(over.status).toBeUndefined();
    held.pop()!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await rawRequest(capped.proxy.port, 'GET', '/openai/models')).status).toBe(200);
    for (const s of held) s.destroy();
  });
});

describe('defects 12 and 13: headers in both directions', () => {
  let provider: Server;
  let leaky: Rig;
  beforeAll(async () => {
    provider = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ id: 'x', object: 'chat.completion', model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
        res.writeHead(200, {
          'content-type': 'application/json',
          connection: 'keep-alive, x-hop-secret',
          'x-hop-secret': 'per-connection',
          'x-breakwater-endpoint': 'forged',
          'x-breakwater-attempts': '99',
          'x-breakwater-fallback-model': 'forged-model',
          'set-cookie': ['session=abc; HttpOnly', 'other=1'],
          'x-api-key': 'echoed',
          'x-request-id': 'req_kept',
        });
        res.end(body);
      });
    });
    await new Promise<void>((r) => provider.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1`;
    leaky = await startRig({ fakes: 1, upstreams: () => [{ name: 'openai', endpoints: [{ name: 'leaky', url }] }] });
  });
  afterAll(async () => {
    await leaky.close();
    await new Promise((r) => provider.close(r));
  });

  it('provider headers named in Connection, x-breakwater-* and Set-Cookie never reach the app', async () => {
    const r = await post(`${leaky.base}/openai/chat/completions`, CHAT);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-hop-secret')).toBeNull();
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(r.headers.get('x-api-key')).toBeNull();
    expect(r.headers.get('x-breakwater-endpoint')).toBe('leaky');
    expect(r.headers.get('x-breakwater-attempts')).toBe('1');
    expect(r.headers.get('x-breakwater-fallback-model')).toBeNull();
    expect(r.headers.get('x-request-id')).toBe('req_kept');
  });

  it('the app\'s credential headers and cookies never reach the provider', async () => {
    rig.fakes[0]!.resetStats();
    const r = await post(`${rig.base}/openai/chat/completions`, CHAT, { 'x-goog-api-key': 'app-goog', 'x-api-key': 'app-x', 'api-key': 'app-azure', cookie: 'session=app', authorization: 'Bearer app-own' });
    expect(r.status).toBe(200);
    const seen = rig.fakes[0]!.stats().recent.at(-1)!.headers;
    expect(seen['x-goog-api-key']).toBeUndefined();
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen['api-key']).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen.authorization).toBe(`Bearer ${TEST_KEY}`);
  });
});
