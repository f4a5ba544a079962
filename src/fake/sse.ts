// Where response bytes go: straight to the response, or through gzip with a sync flush
// after every write so each SSE event (or JSON piece) reaches the client at once.
import type { ServerResponse } from 'node:http';
import { constants, createGzip, type Gzip } from 'node:zlib';
import { drained } from './io.ts';

export interface Sink {
  write(chunk: string | Buffer): void;
  /** Finish the body cleanly. */
  end(): void;
  /** Resolves when everything written so far has left the process. */
  settle(): Promise<void>;
}

class PlainSink implements Sink {
  private readonly res: ServerResponse;
  constructor(res: ServerResponse) {
    this.res = res;
  }
  write(chunk: string | Buffer): void {
    this.res.write(chunk);
  }
  end(): void {
    this.res.end();
  }
  settle(): Promise<void> {
    return drained(this.res);
  }
}

class GzipSink implements Sink {
  private readonly res: ServerResponse;
  private readonly gz: Gzip;
  constructor(res: ServerResponse) {
    this.res = res;
    const gz = createGzip({ flush: constants.Z_SYNC_FLUSH });
    this.gz = gz;
    gz.on('data', (c: Buffer) => {
      if (!res.destroyed) res.write(c);
    });
    gz.once('end', () => {
      if (!res.destroyed) res.end();
    });
    gz.once('error', () => res.destroy());
    res.once('close', () => gz.destroy());
  }
  write(chunk: string | Buffer): void {
    if (!this.gz.destroyed) this.gz.write(chunk);
  }
  end(): void {
    if (!this.gz.destroyed) this.gz.end();
  }
  async settle(): Promise<void> {
    if (!this.gz.destroyed) {
      await new Promise<void>((r) => this.gz.flush(constants.Z_SYNC_FLUSH, () => r()));
    }
    await drained(this.res);
  }
}

export function openSink(res: ServerResponse, gzip: boolean): Sink {
  return gzip ? new GzipSink(res) : new PlainSink(res);
}
