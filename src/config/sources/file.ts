// The file source: a YAML stream of LLMUpstream documents, hot-reloaded. The whole file is
// one unit: a bad edit (an empty or truncated file included) rejects the file and the last
// good snapshot keeps serving. Change events are debounced on the injected clock, the file is
// capped at 1 MiB, and a reload of a large file parses and validates in a worker thread
// (parse-thread.ts), so that it cannot stall the requests being served. A small file is checked
// here without the TypeBox runtime (quick.ts: the generated check and the rules); only a
// document that check refuses goes to the worker, whose validator names the field. Either way
// this thread lowers documents already validated (lower.ts) and never loads TypeBox.
import { closeSync, fstatSync, openSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { systemClock, type Clock } from '../../clock.ts';
import { ConfigError, type AuthResolver } from '../errors.ts';
import { lowerConfig } from '../lower.ts';
import { Secret } from '../runtime.ts';
import type { ConfigSink } from '../sink.ts';
import { debounce } from './debounce.ts';
import { parseInWorker, parseInWorkerSync, type ParseJob } from './parse-thread.ts';
import { quickDocuments } from './quick.ts';

export { parseYamlStream } from './yaml-stream.ts';

/** As a ConfigMap: a config file larger than this is refused unread. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Quiet time after the last change event before a reload (an editor's truncate + write is one change). */
export const DEFAULT_DEBOUNCE_MS = 250;
/**
 * A reload of a file up to this many characters is checked inline: parsing is linear, well under
 * a millisecond per KiB, and a worker thread takes longer to start than such a file to parse.
 */
export const INLINE_PARSE_MAX_CHARS = 32 * 1024;

/** Off Kubernetes, keys come from the environment or a file (a mounted Secret). */
export const envOrFileAuth: AuthResolver = (auth, where) => {
  if (auth.env !== undefined) {
    // a Secret fed through the environment often ends in a newline, which no header may carry
    const value = process.env[auth.env]?.trim();
    if (value === undefined || value === '') throw new ConfigError(where.document, where.path, `environment variable ${auth.env} is not set`, 'SecretNotFound');
    return new Secret(value);
  }
  if (auth.file !== undefined) {
    let value: string;
    try {
      value = readFileSync(auth.file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(where.document, where.path, `cannot read key file ${auth.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'SecretNotFound');
    }
    if (value === '') throw new ConfigError(where.document, where.path, `key file ${auth.file} is empty`, 'KeyNotFound');
    return new Secret(value);
  }
  throw new ConfigError(where.document, where.path, 'secretRef needs the Kubernetes source (--kubernetes); use env or file with --config', 'Unresolvable');
};

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** The file's text, refused before it is read when it is over the cap. Throws ConfigError. */
export function readConfigText(path: string, maxBytes = MAX_CONFIG_BYTES): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw new ConfigError(path, '(file)', `config file is ${mib(size)} (${size} bytes); the limit is ${mib(maxBytes)} (${maxBytes} bytes), as for a ConfigMap`);
    const text = readFileSync(fd, 'utf8');
    // it may have grown between the stat and the read
    const read = Buffer.byteLength(text);
    if (read > maxBytes) throw new ConfigError(path, '(file)', `config file is over ${mib(maxBytes)} (${read} bytes read); the limit is ${mib(maxBytes)} (${maxBytes} bytes), as for a ConfigMap`);
    return text;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, '(file)', `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface FileSource {
  close(): void;
  /** re-reads the file now, even unchanged (tests and SIGHUP); resolves once applied or rejected */
  reload(): Promise<void>;
}

export interface FileSourceOptions {
  path: string;
  sink: ConfigSink;
  auth?: AuthResolver;
  /** quiet time after the last change event; default DEFAULT_DEBOUNCE_MS */
  debounceMs?: number;
  clock?: Clock;
  /** default MAX_CONFIG_BYTES */
  maxBytes?: number;
}

/**
 * Loads the file once, waiting for the parse worker (throws ConfigError on a bad file: the caller exits non-zero),
 * then watches its directory, because editors and ConfigMap mounts replace files rather than
 * write them. Reloads run one at a time; a change during a reload is picked up right after it.
 */
export function startFileSource(options: FileSourceOptions): FileSource {
  const path = resolvePath(options.path);
  const fileName = basename(path);
  const source = `file:${path}`;
  const auth = options.auth ?? envOrFileAuth;
  const clock = options.clock ?? systemClock;
  const maxBytes = options.maxBytes ?? MAX_CONFIG_BYTES;
  /** the text last tried, good or bad: a watch event on unchanged text is skipped */
  let lastText: string | undefined;
  let closed = false;

  /** documents the parse worker validated: lowered here, never validated again */
  const apply = (docs: readonly unknown[]): void => {
    const config = lowerConfig(docs, auth, source, 0);
    options.sink.apply([...config.upstreams.values()], source);
  };

  // at start nothing is being served yet: check inline whatever the size (the worker, waited
  // for, only to explain a refused document), and let a bad file throw
  lastText = readConfigText(path, maxBytes);
  apply(quickDocuments(lastText, fileName) ?? parseInWorkerSync({ text: lastText, fileName }));

  let job: ParseJob | undefined;
  const reloadOnce = async (force: boolean): Promise<void> => {
    const text = readConfigText(path, maxBytes);
    if (text === lastText && !force) return;
    lastText = text;
    if (text.length <= INLINE_PARSE_MAX_CHARS) {
      const docs = quickDocuments(text, fileName);
      if (docs) return apply(docs);
    }
    job = parseInWorker({ text, fileName }, { clock });
    try {
      const docs = await job.result;
      if (!closed) apply(docs);
    } finally {
      job = undefined;
    }
  };

  let running: Promise<void> | undefined;
  let queued: { force: boolean } | undefined;
  const drain = async (): Promise<void> => {
    try {
      while (queued && !closed) {
        const next = queued;
        queued = undefined;
        try {
          await reloadOnce(next.force);
        } catch (err) {
          if (closed) break;
          const error = err instanceof ConfigError ? err : new ConfigError(path, '(file)', (err as Error).message ?? String(err));
          options.sink.reject(error, source);
        }
      }
    } finally {
      running = undefined; // in the same turn as the last `queued` check: no change can slip between
    }
  };
  // never throws: this runs from a timer or a signal handler, and a bad edit must not kill the proxy
  const reload = (force: boolean): Promise<void> => {
    queued = { force: force || (queued?.force ?? false) };
    running ??= Promise.resolve().then(drain);
    return running;
  };

  const changed = debounce(clock, options.debounceMs ?? DEFAULT_DEBOUNCE_MS, () => void reload(false));
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, name) => {
    if (name !== null && name !== fileName && !name.startsWith('..')) return;
    changed.trigger();
  });

  return {
    // an explicit reload (SIGHUP) re-reads even unchanged text: a key file may have rotated
    reload: () => reload(true),
    close() {
      closed = true;
      changed.cancel();
      job?.cancel();
      watcher.close();
    },
  };
}
