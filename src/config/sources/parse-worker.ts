// The worker thread body for a file-source reload: text in (workerData), validated documents
// or the ConfigError's fields out (one message), then exit. See parse.ts for why.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from '../compile.ts';
import { readConfigDocuments } from './parse.ts';
import type { ParseReply, ParseRequest } from './parse-thread.ts';

const { text, fileName } = workerData as ParseRequest;
let reply: ParseReply;
try {
  reply = { ok: true, docs: readConfigDocuments(text, fileName) };
} catch (err) {
  const e = err instanceof ConfigError ? err : new ConfigError(fileName, '(file)', (err as Error).message ?? String(err));
  reply = { ok: false, document: e.document, path: e.path, detail: e.detail, reason: e.reason };
}
parentPort!.postMessage(reply);
