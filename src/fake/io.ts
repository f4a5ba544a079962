// Low-level socket helpers: read a body, wait for written bytes to leave, kill a connection.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The whole request body; null if the client went away before the end. */
export function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', () => resolve(null));
    req.once('close', () => {
      if (!req.complete) resolve(null);
    });
  });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Resolves when everything written so far has been handed to the kernel (or the socket died). */
export async function drained(res: ServerResponse): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    const s = res.socket;
    if (!s || s.destroyed) return;
    if (s.writableLength === 0 && res.writableLength === 0 && !s.writableCorked) return;
    await tick();
  }
}

/** Drop the connection: a TCP RST when `reset`, else a plain close (FIN). */
export function kill(res: ServerResponse, reset: boolean): void {
  const s = res.socket;
  if (!s || s.destroyed) return;
  if (reset) s.resetAndDestroy();
  else s.destroy();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
