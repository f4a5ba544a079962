// The file source: a YAML stream of LLMUpstream documents, hot-reloaded. The whole file is
// one unit: a bad edit rejects the file and the last good snapshot keeps serving.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compileConfig, ConfigError, type AuthResolver } from '../compile.ts';
import { Secret } from '../runtime.ts';
import type { ConfigSink } from '../sink.ts';

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

/**
 * Parses a YAML stream into plain documents. An empty document (a stray or trailing ---) is
 * kept as undefined, so that every message numbers documents as the file does.
 */
export function parseYamlStream(text: string, fileName: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const out: unknown[] = [];
  for (const [i, doc] of docs.entries()) {
    const error = doc.errors[0];
    if (error) throw new ConfigError(`${fileName} document ${i + 1}`, `line ${error.linePos?.[0]?.line ?? '?'}`, error.message.split('\n')[0] ?? 'invalid YAML');
    let value: unknown;
    try {
      value = doc.toJS(); // throws on an unresolved or runaway alias
    } catch (err) {
      throw new ConfigError(`${fileName} document ${i + 1}`, '(document)', (err as Error).message.split('\n')[0] ?? 'invalid YAML');
    }
    out.push(value === null ? undefined : value);
  }
  return out;
}

export interface FileSource {
  close(): void;
  /** re-reads the file now (tests and SIGHUP) */
  reload(): void;
}

export interface FileSourceOptions {
  path: string;
  sink: ConfigSink;
  auth?: AuthResolver;
  debounceMs?: number;
}

/**
 * Loads the file once (throws ConfigError on a bad file: the caller exits non-zero), then
 * watches its directory, because editors and ConfigMap mounts replace files rather than write them.
 */
export function startFileSource(options: FileSourceOptions): FileSource {
  const path = resolvePath(options.path);
  const source = `file:${path}`;
  const auth = options.auth ?? envOrFileAuth;
  /** the text last tried, good or bad: a watch event on unchanged text is skipped */
  let lastText: string | undefined;

  const load = (force = false): void => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(path, '(file)', `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (text === lastText && !force) return;
    lastText = text;
    const config = compileConfig(parseYamlStream(text, basename(path)), auth, source, 0);
    options.sink.apply([...config.upstreams.values()], source);
  };

  load();

  // an explicit reload (SIGHUP) re-reads even unchanged text: a key file may have rotated
  const reload = (force = false): void => {
    try {
      load(force);
    } catch (err) {
      // never throw from here: this runs in a timer or a signal handler, and a bad edit must not kill the proxy
      const error = err instanceof ConfigError ? err : new ConfigError(path, '(file)', (err as Error).message ?? String(err));
      options.sink.reject(error, source);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, name) => {
    if (name !== null && name !== basename(path) && !name.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(() => reload(false), options.debounceMs ?? 100);
  });

  return {
    reload: () => reload(true),
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
