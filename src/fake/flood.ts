// Bodies that never end, or that inflate without end: what a broken or hostile provider sends
// to a proxy that buffers. Written only as fast as the client reads, so the fake itself stays
// small, and stopped when the client closes.
import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { Answer } from './respond.ts';

export type FloodKind = 'endless-event' | 'endless-event-mid-stream' | 'endless-comments' | 'gzip-bomb';

const CHUNK = 64 * 1024;
/** a safety stop: nothing legitimate reads this far */
const MAX_BYTES = 4 * 1024 ** 3;
const BOMB_MEMBERS = 1024;
const BOMB_MEMBER_BYTES = 1024 * 1024;

const filler = (unit: string): Buffer => Buffer.from(unit.repeat(Math.ceil(CHUNK / unit.length)));
const BODIES: Record<'endless-event' | 'endless-comments', { sse: [string, Buffer]; json: [string, Buffer] }> = {
  'endless-event': { sse: ['data: {"id":"endless","pad":"', filler('a')], json: ['{"id":"endless","pad":"', filler('a')] },
  'endless-comments': { sse: ['', filler(': keep-alive\n\n')], json: ['', filler(' ')] },
};

const bombs = new Map<boolean, Buffer>();
/**
 * 1 GiB of 'a' after an SSE data prefix (or a JSON string's start), as ~1 MiB of gzip: one
 * compressed 1 MiB member repeated (a gzip stream may hold many members; decoders join them).
 */
function bomb(sse: boolean): Buffer {
  let b = bombs.get(sse);
  if (!b) {
    const member = gzipSync(Buffer.alloc(BOMB_MEMBER_BYTES, 0x61), { level: 9 });
    b = Buffer.concat([gzipSync(sse ? 'data: {"pad":"' : '{"pad":"'), ...Array<Buffer>(BOMB_MEMBERS).fill(member)]);
    bombs.set(sse, b);
  }
  return b;
}

/** resolves when the response can take more, or has closed */
function room(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export async function flood(a: Answer, kind: FloodKind, sse: boolean): Promise<void> {
  const { res, live } = a;
  const headers: Record<string, string> = { ...a.headers, 'content-type': sse ? 'text/event-stream; charset=utf-8' : 'application/json' };
  if (sse) headers['cache-control'] = 'no-cache';
  if (kind === 'gzip-bomb') {
    headers['content-encoding'] = 'gzip';
    res.writeHead(200, headers);
    res.end(bomb(sse));
    return;
  }
  res.writeHead(200, headers);
  const [prefix, chunk] = BODIES[kind === 'endless-comments' ? kind : 'endless-event'][sse ? 'sse' : 'json'];
  if (kind === 'endless-event-mid-stream' && sse) {
    // a real start (the SDK sees content), then the event that never ends
    const plan = a.endpoint.stream!.plan(a.ctx);
    res.write(plan.head.join('') + (plan.content[0] ?? ''));
  }
  res.write(prefix);
  for (let sent = 0; sent < MAX_BYTES && !live.closed; sent += chunk.length) {
    if (!res.write(chunk)) await room(res);
  }
  if (!live.closed) res.end();
}
