// Runs readConfigDocuments (parse.ts) in a short-lived worker thread, so that parsing and
// validating a large config file (up to the 1 MiB cap, ~1 s of CPU) never blocks the event
// loop that serves requests. One worker per reload: reloads are rare, and an idle sidecar
// keeps no second V8 heap. The worker has a heap limit and a time limit; it sees no
// environment (keys are resolved by the caller, on the main thread).
import { Worker } from 'node:worker_threads';
import type { Clock } from '../../clock.ts';
import { ConfigError, type ConfigErrorReason } from '../compile.ts';

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

export function parseInWorker(request: ParseRequest, options: ParseThreadOptions): ParseJob {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const heapMb = options.heapMb ?? 128;
  const fail = (detail: string) => new ConfigError(request.fileName, '(file)', detail);
  // a small young generation keeps the process's peak RSS ~100 MB lower for a 1 MiB file, at some CPU
  const worker = new Worker(WORKER, { workerData: request, env: {}, resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 8 }, stdout: false, stderr: false });
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
      settle(() => (reply.ok ? resolve(reply.docs) : reject(new ConfigError(reply.document, reply.path, reply.detail, reply.reason)))),
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
