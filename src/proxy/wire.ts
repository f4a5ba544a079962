// One attempt's exchange on the wire, through undici's dispatch() with a handler object. Compared
// with request(), there is no BodyReadable, no async iterator and no promise per chunk: undici
// calls this handler, and the handler hands each chunk to the one Sink attached at the time
// (collect a whole body, scan a stream up to its commit point, relay it to the app). Backpressure
// is the DispatchController's pause()/resume(): while no sink is attached the exchange is paused,
// and a sink pauses it when the app's socket is full.
//
// A compressed body (content-encoding gzip, deflate or br) goes through a zlib stream first, in
// 16 KiB pieces that are produced only as they are taken, so a small body that inflates without
// end is cut by the sink's own limits. Providers rarely compress a stream; whole bodies are
// collected raw and inflated in one call by the caller (cheapest for the usual small body).
import type { IncomingHttpHeaders } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate, type Gunzip } from 'node:zlib';
import type { Dispatcher } from 'undici';

export type Coding = 'gzip' | 'deflate' | 'br';

export function codingOf(encoding: string | string[] | undefined): Coding | undefined {
  const e = (Array.isArray(encoding) ? encoding[0] : encoding)?.trim().toLowerCase();
  if (e === 'gzip' || e === 'x-gzip') return 'gzip';
  if (e === 'deflate') return 'deflate';
  if (e === 'br') return 'br';
  return undefined;
}

/** Where the body goes, chunk by chunk. Exactly one of end() or error() ends it. */
export interface Sink {
  data(chunk: Buffer): void;
  end(): void;
  error(error: Error): void;
}

export type DispatchOptions = Dispatcher.DispatchOptions;
type Dispatch = Pick<Dispatcher, 'dispatch'>;
type Controller = Dispatcher.DispatchController;

/** what arrived with no sink attached is at most one parser chunk: undici stops after a paused one */
export class Exchange implements Dispatcher.DispatchHandler {
  status = 0;
  headers: IncomingHttpHeaders = {};
  #controller: Controller | undefined;
  #abortReason: Error | undefined;
  #head: { resolve(): void; reject(error: Error): void } | undefined;
  #headed = false;
  #sink: Sink | undefined;
  #decoder: Gunzip | undefined;
  /** chunks that arrived while no sink was attached (raw, and already inflated) */
  #held: Buffer[] = [];
  #heldInflated: Buffer[] = [];
  #end: { error: Error | undefined } | undefined;
  /** the sink asked for a pause (the app is not reading) */
  #sinkPaused = false;
  /** the decoder's input is full */
  #decoderFull = false;

  /** Sends the request; resolves when the response's status and headers have arrived. */
  start(dispatcher: Dispatch, options: DispatchOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#head = { resolve, reject };
      try {
        dispatcher.dispatch(options, this);
      } catch (error) {
        this.#failHead(error as Error);
      }
    });
  }

  /** Aborts the exchange: an error reaches the pending head promise or the attached sink. */
  abort(reason: Error): void {
    if (this.#abortReason) return;
    this.#abortReason = reason;
    if (this.#controller) this.#controller.abort(reason);
    // still queued for a connection: answer now; the request is aborted when undici starts it
    else this.#failHead(reason);
  }

  get aborted(): boolean {
    return this.#abortReason !== undefined;
  }

  /**
   * Attaches the sink that takes the body from here on; what arrived meanwhile goes first.
   * `coding`: inflate on the way (streams only).
   */
  attach(sink: Sink, coding?: Coding): void {
    if (coding !== undefined && this.#decoder === undefined) this.#decoder = this.#createDecoder(coding);
    this.#sink = sink;
    const inflated = this.#heldInflated;
    const held = this.#held;
    this.#heldInflated = [];
    this.#held = [];
    for (const chunk of inflated) sink.data(chunk);
    for (const chunk of held) this.#deliver(chunk);
    if (this.#end) this.#finish(this.#end.error);
    else this.#flow();
  }

  /** No sink for now: the exchange pauses (the caller attaches the next one soon). */
  detach(): void {
    this.#sink = undefined;
    this.#flow();
  }

  /** The sink's backpressure: the app's socket is full (pause) or has room again (resume). */
  pause(): void {
    this.#sinkPaused = true;
    this.#flow();
  }

  resume(): void {
    this.#sinkPaused = false;
    this.#flow();
  }

  // --- undici's side -----------------------------------------------------------------------

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.#abortReason) controller.abort(this.#abortReason);
  }

  onResponseStart(controller: Controller, status: number, headers: IncomingHttpHeaders): void {
    this.status = status;
    this.headers = headers;
    this.#headed = true;
    controller.pause(); // until a sink is attached
    const head = this.#head;
    this.#head = undefined;
    head?.resolve();
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#sink === undefined) this.#held.push(chunk);
    else this.#deliver(chunk);
  }

  onResponseEnd(): void {
    if (this.#decoder) this.#decoder.end();
    else this.#ended(undefined);
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (!this.#headed) {
      this.#failHead(error);
      return;
    }
    this.#decoder?.destroy();
    this.#ended(error);
  }

  // --- inside ------------------------------------------------------------------------------

  #failHead(error: Error): void {
    const head = this.#head;
    this.#head = undefined;
    head?.reject(error);
  }

  #deliver(chunk: Buffer): void {
    if (this.#decoder === undefined) {
      this.#sink!.data(chunk);
      return;
    }
    if (!this.#decoder.write(chunk)) {
      this.#decoderFull = true;
      this.#flow();
    }
  }

  #ended(error: Error | undefined): void {
    if (this.#end) return;
    this.#end = { error };
    if (this.#sink) this.#finish(error);
  }

  #finish(error: Error | undefined): void {
    const sink = this.#sink!;
    this.#sink = undefined;
    if (error) sink.error(error);
    else sink.end();
  }

  /** pauses or resumes the provider's side to match the reasons to wait */
  #flow(): void {
    const controller = this.#controller;
    if (this.#decoder) {
      if (this.#sinkPaused || this.#sink === undefined) this.#decoder.pause();
      else this.#decoder.resume();
    }
    if (!controller || this.#end || controller.aborted) return;
    const wait = this.#sink === undefined || this.#decoderFull || (this.#sinkPaused && this.#decoder === undefined);
    if (wait && !controller.paused) controller.pause();
    else if (!wait && controller.paused) controller.resume();
  }

  #createDecoder(coding: Coding): Gunzip {
    const decoder = coding === 'gzip' ? createGunzip() : coding === 'deflate' ? createInflate() : createBrotliDecompress();
    decoder.on('data', (chunk: Buffer) => {
      if (this.#sink) this.#sink.data(chunk);
      else this.#heldInflated.push(chunk);
    });
    decoder.on('end', () => this.#ended(undefined));
    decoder.on('error', (error: Error) => {
      this.#controller?.abort(error);
      this.#ended(error);
    });
    decoder.on('drain', () => {
      this.#decoderFull = false;
      this.#flow();
    });
    return decoder as Gunzip;
  }
}

/** A sink that gathers a whole body up to `limit` bytes (past it: an error with code BREAKWATER_RESPONSE_TOO_LARGE). */
export function collect(exchange: Exchange, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    exchange.attach({
      data(chunk) {
        if (over) return;
        size += chunk.length;
        if (size > limit) {
          over = true;
          chunks.length = 0;
          const error = Object.assign(new Error('response body over the limit'), { code: 'BREAKWATER_RESPONSE_TOO_LARGE' });
          exchange.abort(error);
          reject(error);
          return;
        }
        chunks.push(chunk);
      },
      end() {
        if (!over) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      },
      error(error) {
        if (!over) reject(error);
      },
    });
  });
}
