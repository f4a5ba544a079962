// The admin server on node:http answers URLs the way it did on express: GET routes answer HEAD
// with the same status and headers and no body, paths match in any letter case and with one
// trailing slash, the query is ignored, other methods get the JSON 404, and a malformed
// percent-encoding in an action path is a 400 (express answered it with a logged 500).
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers.ts';

let stack: Stack;

const yaml = (u: Record<string, string>) => `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  endpoints:
    - { name: a, url: "${u.a}/v1" }
`;

beforeAll(async () => {
  stack = await startStack({ fakes: ['a'], yaml });
});
afterAll(async () => {
  await stack?.close();
});

/** raw node:http, so HEAD's headers and the exact bytes are seen */
function send(method: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: stack.proxy.adminPort, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin routes over node:http', () => {
  it('answer HEAD like GET, with the length of the body they leave out', async () => {
    for (const path of ['/livez', '/readyz', '/metrics', '/debug/state', '/dashboard']) {
      const got = await send('GET', path);
      const head = await send('HEAD', path);
      expect(head.status, path).toBe(got.status);
      expect(head.headers['content-type'], path).toBe(got.headers['content-type']);
      expect(head.headers['cache-control'], path).toBe('no-store');
      expect(head.body, path).toBe('');
      expect(Number(head.headers['content-length']), path).toBeGreaterThan(0);
      expect(Number(got.headers['content-length']), path).toBe(Buffer.byteLength(got.body));
    }
  });

  it('match paths in any case, with one trailing slash, ignoring the query', async () => {
    for (const path of ['/LIVEZ', '/livez/', '/livez?verbose=1', '/Debug/State/']) {
      const r = await send('GET', path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type'], path).toBe('application/json; charset=utf-8');
    }
    const reset = await send('POST', '/ADMIN/upstreams/chat/endpoints/a/reset/?x=1');
    expect(reset.status).toBe(200);
    expect(JSON.parse(reset.body)).toMatchObject({ ok: true, action: 'reset', upstream: 'chat' });
  });

  it('answer other methods and unknown paths with the JSON 404, and a malformed encoding with 400', async () => {
    expect(await send('POST', '/livez')).toMatchObject({ status: 404, body: '{"error":"no admin route POST /livez"}' });
    expect(await send('DELETE', '/nope?q=1')).toMatchObject({ status: 404, body: '{"error":"no admin route DELETE /nope"}' });
    expect(await send('GET', '//livez')).toMatchObject({ status: 404 });
    expect(await send('GET', '/admin/upstreams/chat/endpoints/a/reset')).toMatchObject({ status: 404, body: '{"error":"no admin route GET /admin/upstreams/chat/endpoints/a/reset"}' });
    expect(await send('POST', '/admin/upstreams/%ZZ/endpoints/a/reset')).toMatchObject({ status: 400, body: '{"error":"malformed percent-encoding in the path"}' });
    const decoded = await send('POST', '/admin/upstreams/ch%61t/endpoints/a%2Fb/reset');
    expect(decoded.status).toBe(404);
    expect(JSON.parse(decoded.body)).toEqual({ error: 'upstream "chat" has no endpoint named "a/b"; it has a' });
  });
});
