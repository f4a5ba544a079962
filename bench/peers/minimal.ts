// The floor `make bench` measures every proxy against: the least a Node reverse proxy can do.
// node:http in, undici `dispatch()` with a handler object out (one keep-alive Pool to the
// upstream), bytes relayed as they arrive with backpressure (the app socket's drain resumes the
// upstream), no parsing, no retries, no failover, no timers of its own. Whatever Breakwater
// costs above this is the price of what it does.
//
//   node_modules/.bin/node bench/peers/minimal.ts --listen 127.0.0.1:PORT --upstream http://127.0.0.1:FAKE
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } }, strict: true });
if (!values.listen || !values.upstream) throw new Error('usage: minimal.ts --listen HOST:PORT --upstream URL');
const [host, port] = splitHostPort(values.listen);
const pool = new Pool(values.upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 });

// hop-by-hop headers (RFC 9110 7.6.1) are not forwarded in either direction
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

function requestHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}

/** undici handler that streams the upstream answer into the app's response. */
class Relay implements Dispatcher.DispatchHandler {
  private readonly res: ServerResponse;
  private controller: Dispatcher.DispatchController | undefined;

  constructor(res: ServerResponse) {
    this.res = res;
    res.on('drain', () => this.controller?.resume());
    res.on('close', () => {
      if (!res.writableFinished) this.controller?.abort(new Error('app went away'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP.has(k)) this.res.setHeader(k, v);
    this.res.writeHead(status);
    this.res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (!this.res.headersSent) {
      this.res.writeHead(502, { 'content-type': 'application/json' });
      this.res.end(JSON.stringify({ error: { message: `upstream: ${err.message}`, type: 'proxy_error' } }));
    } else this.res.destroy(err);
  }
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: requestHeaders(req), body: req }, new Relay(res));
});
server.listen(port, host, () => console.error(`minimal proxy on ${host}:${port} -> ${values.upstream}`));
const shutdown = () => server.close(() => void pool.close().then(() => process.exit(0)));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
