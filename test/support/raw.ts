// Raw HTTP over node:net, for what fetch and node:http refuse to send: dot segments and
// backslashes kept as typed, TRACE/CONNECT, half-sent headers and stalled bodies.
import { connect, type Socket } from 'node:net';

export interface RawExchange {
  /** everything the server sent before it closed (or before `waitMs` passed) */
  text: string;
  /** the status code of the first response, when one arrived */
  status: number | undefined;
  /** the server closed the connection */
  closed: boolean;
  /** ms from the first write to the close (or to the end of the wait) */
  ms: number;
}

export function openSocket(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Sends `parts` (a pause of `gapMs` between them), then collects the answer until the server
 * closes the socket or `waitMs` passes (then the socket is destroyed and `closed` is false).
 */
export async function rawExchange(port: number, parts: string[], opts: { gapMs?: number; waitMs?: number } = {}): Promise<RawExchange> {
  const socket = await openSocket(port);
  const started = Date.now();
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), opts.waitMs ?? 5_000).unref();
  });
  for (let i = 0; i < parts.length; i++) {
    if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
    if (!socket.destroyed) socket.write(parts[i]!);
  }
  const didClose = await closed;
  const ms = Date.now() - started;
  socket.destroy();
  const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(text);
  return { text, status: m ? Number(m[1]) : undefined, closed: didClose, ms };
}

/** One whole request with `Connection: close`; the server's answer when it closes. */
export function rawRequest(port: number, method: string, target: string, headers: Record<string, string> = {}, body = ''): Promise<RawExchange> {
  const lines = [`${method} ${target} HTTP/1.1`];
  const all: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close', ...headers };
  if (body !== '' || method === 'POST') all['content-length'] = String(Buffer.byteLength(body));
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  return rawExchange(port, [`${lines.join('\r\n')}\r\n\r\n${body}`]);
}

/** The JSON body of a raw answer (after the blank line; chunked bodies are not decoded). */
export function rawBody(answer: RawExchange): unknown {
  const i = answer.text.indexOf('\r\n\r\n');
  return JSON.parse(answer.text.slice(i + 4));
}

/** A response header of a raw answer, lowercased name. */
export function rawHeader(answer: RawExchange, name: string): string | undefined {
  const head = answer.text.slice(0, answer.text.indexOf('\r\n\r\n'));
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}
