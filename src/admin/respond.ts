// Requests and answers of the admin servers, on plain node:http (express earned nothing here:
// README, design notes). Paths are matched as express matched them, so URLs that worked keep
// working: the pathname before `?`, taken raw; letters in any case; one trailing slash ignored.
// Bodies are strings sent with their length; a HEAD gets the same status and headers and no
// body, as a GET route in express answered it.
import type { IncomingMessage, ServerResponse } from 'node:http';

const JSON_TYPE = 'application/json; charset=utf-8';

/** the raw pathname (no query), as express's req.path */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  if (!url.startsWith('/')) {
    // absolute-form (GET http://host/path): its pathname
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  }
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** what routes compare against: lower case, without one trailing slash */
export function routeKey(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

/** GET routes answer HEAD too */
export function isRead(req: IncomingMessage): boolean {
  return req.method === 'GET' || req.method === 'HEAD';
}

export function send(req: IncomingMessage, res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  send(req, res, status, { ...headers, 'content-type': JSON_TYPE }, JSON.stringify(value));
}
