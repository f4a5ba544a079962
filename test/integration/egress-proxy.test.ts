// Egress honours HTTPS_PROXY/HTTP_PROXY and NO_PROXY: with a proxy set, attempts to a provider
// go through it (CONNECT); a host listed in NO_PROXY is reached directly.
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, type Rig } from '../support/rig.ts';

let proxy: Server;
const tunnels: string[] = [];
let rig: Rig;

beforeAll(async () => {
  // a minimal forward proxy (absolute-URI requests for http, CONNECT tunnels for https), recording each target
  proxy = createServer((req, res) => {
    const target = new URL(req.url ?? '');
    tunnels.push(target.host);
    // names under .example are the test's own: this proxy resolves them to loopback
    if (target.hostname.endsWith('.example')) target.hostname = '127.0.0.1';
    const out = request(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  proxy.on('connect', (req, socket, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  process.env.HTTP_PROXY = proxyUrl;
  process.env.HTTPS_PROXY = proxyUrl;
  process.env.NO_PROXY = 'localhost';
  rig = await startRig({
    fakes: 2,
    upstreams: ([a, b]) => [
      // a plain-http endpoint that is not local: only the proxy knows where it is
      { name: 'via-proxy', endpoints: [{ name: 'a', url: `http://fake-a.example:${a!.port}/v1`, insecure: true }] },
      // issue 8 (defect 8): a plain-http loopback endpoint never goes through the proxy, whatever NO_PROXY says
      { name: 'loopback', endpoints: [{ name: 'a', url: `${a!.url}/v1` }] },
      // "localhost" is listed in NO_PROXY below: reached directly
      { name: 'direct', endpoints: [{ name: 'b', url: `http://localhost:${b!.port}/v1` }] },
    ],
  });
});
afterAll(async () => {
  await rig.close();
  proxy.closeAllConnections();
  proxy.close();
  delete process.env.HTTP_PROXY;
  delete process.env.HTTPS_PROXY;
  delete process.env.NO_PROXY;
});

describe('egress proxy', () => {
  it('sends attempts through HTTP(S)_PROXY and honours NO_PROXY', async () => {
    const [a, b] = rig.fakes;
    expect((await post(`${rig.base}/via-proxy/chat/completions`, chatBody())).status).toBe(200);
    expect(tunnels).toContain(`fake-a.example:${a!.port}`);
    expect((await post(`${rig.base}/direct/chat/completions`, chatBody())).status).toBe(200);
    expect(b!.stats().requests).toBe(1);
    expect(tunnels.some((t) => t.endsWith(`:${b!.port}`))).toBe(false);
  });
});

describe('egress proxy and keys (issue 8, defect 8)', () => {
  it('a plain-http loopback endpoint bypasses HTTP_PROXY, so the key never crosses the proxy in cleartext', async () => {
    const before = tunnels.length;
    const [a] = rig.fakes;
    const served = a!.stats().requests;
    expect((await post(`${rig.base}/loopback/chat/completions`, chatBody())).status).toBe(200);
    expect(a!.stats().requests).toBe(served + 1);
    expect(tunnels.slice(before)).toEqual([]);
  });
});
