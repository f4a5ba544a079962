// The worker thread body for a file-source load: text in (workerData), validated documents
// or the ConfigError's fields out (one message), then exit. See parse.ts for why. For the load at
// start the caller waits synchronously: the reply goes on the port it passed, and the shared
// flag wakes it (parse-thread.ts parseInWorkerSync).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ConfigError } from '../errors.ts';
import { readConfigDocuments } from './parse.ts';
import type { ParseReply, ParseRequest } from './parse-thread.ts';

const { text, fileName, sync } = workerData as ParseRequest & { sync?: { port: MessagePort; flag: Int32Array } };
let reply: ParseReply;
try {
  reply = { ok: true, docs: readConfigDocuments(text, fileName) };
} catch (err) {
  const e = err instanceof ConfigError ? err : new ConfigError(fileName, '(file)', (err as Error).message ?? String(err));
  reply = { ok: false, document: e.document, path: e.path, detail: e.detail, reason: e.reason };
}
if (sync) {
  sync.port.postMessage(reply);
  Atomics.store(sync.flag, 0, 1);
  Atomics.notify(sync.flag, 0);
} else {
  parentPort!.postMessage(reply);
}
