// Runs readConfigDocuments (parse.ts) in a short-lived worker thread, so that parsing and
// validating a config file (up to the 1 MiB cap, ~1 s of CPU) never blocks the event loop that
// serves requests, and so that the YAML parser and the TypeBox runtime never load into the
// sidecar's own heap (~14 MB of its idle RSS). One worker per load: loads are rare, and an idle
// sidecar keeps no second V8 heap. The worker has a heap limit and a time limit; it sees no
// environment (keys are resolved by the caller, on the main thread). At start, before anything
// is served, the caller waits for it synchronously (parseInWorkerSync).
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { Clock } from '../../clock.ts';
import { ConfigError, type ConfigErrorReason } from '../errors.ts';

export interface ParseRequest {
  text: string;
  fileName: string;
}

export type ParseReply =
  | { ok: true; docs: unknown[] }
  | { ok: false; document: string; path: string; detail: string; reason: ConfigErrorReason };

export interface ParseThreadOptions {
  clock: Clock;
  /** default 30 s */
  timeoutMs?: number;
  /** the worker's old-generation heap; default 128 MiB (a dense valid 1 MiB file needs under 96) */
  heapMb?: number;
}

export interface ParseJob {
  /** the validated documents; rejects with a ConfigError */
  result: Promise<unknown[]>;
  /** stops the worker (the source is closing) */
  cancel(): void;
}

// parse-worker.ts next to this file when running from sources, parse-worker.js in the compiled
// build (tsc rewrites import specifiers, not URLs).
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './parse-worker.ts' : './parse-worker.js', import.meta.url);

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_HEAP_MB = 128;
/** a small young generation keeps the process's peak RSS ~100 MB lower for a 1 MiB file, at some CPU */
const YOUNG_MB = 8;

function fromReply(reply: ParseReply): unknown[] {
  if (reply.ok) return reply.docs;
  throw new ConfigError(reply.document, reply.path, reply.detail, reply.reason);
}

/**
 * The same parse, waited for on this thread (Atomics.wait): for the load at start, when nothing
 * is served yet and the caller needs the verdict before it listens. Throws ConfigError.
 */
export function parseInWorkerSync(request: ParseRequest, options: Omit<ParseThreadOptions, 'clock'> = {}): unknown[] {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const heapMb = options.heapMb ?? DEFAULT_HEAP_MB;
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER, {
    workerData: { ...request, sync: { port: port2, flag } },
    transferList: [port2],
    env: {},
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: YOUNG_MB },
    stdout: false,
    stderr: false,
  });
  try {
    const woke = Atomics.wait(flag, 0, 0, timeoutMs);
    const reply = receiveMessageOnPort(port1)?.message as ParseReply | undefined;
    if (reply) return fromReply(reply);
    // a worker that died (out of its heap) never wakes us: we learn it only when the wait ends
    throw new ConfigError(
      request.fileName,
      '(file)',
      woke === 'timed-out' ? `parsing did not finish within ${timeoutMs / 1000} s (or needed more than ${heapMb} MiB); refused as too complex` : 'the parser stopped without an answer',
    );
  } finally {
    port1.close();
    void worker.terminate();
  }
}

export function parseInWorker(request: ParseRequest, options: ParseThreadOptions): ParseJob {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const heapMb = options.heapMb ?? DEFAULT_HEAP_MB;
  const fail = (detail: string) => new ConfigError(request.fileName, '(file)', detail);
  const worker = new Worker(WORKER, { workerData: request, env: {}, resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: YOUNG_MB }, stdout: false, stderr: false });
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<unknown[]>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      options.clock.clearTimeout(timer);
      fn();
    };
    timer = options.clock.setTimeout(() => {
      settle(() => reject(fail(`parsing took longer than ${timeoutMs / 1000} s; refused as too complex`)));
      void worker.terminate();
    }, timeoutMs);
    worker.once('message', (reply: ParseReply) =>
      settle(() => {
        try {
          resolve(fromReply(reply));
        } catch (err) {
          reject(err);
        }
      }),
    );
    worker.once('error', (err: Error & { code?: string }) =>
      settle(() => reject(fail(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parsing needed more than ${heapMb} MiB; refused as too complex` : `could not be parsed: ${err.message}`))),
    );
    worker.once('exit', (code) => settle(() => reject(fail(`the parser stopped (exit code ${code})`))));
  });
  return {
    result,
    cancel() {
      options.clock.clearTimeout(timer);
      void worker.terminate();
    },
  };
}
