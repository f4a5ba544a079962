// The file source on real files and a real fs.watch: parse, apply, reject a bad edit while the
// last good config keeps serving, resolve keys from env and files. Real timers, short debounce.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../src/config/compile.ts';
import type { UpstreamConfig } from '../../../src/config/runtime.ts';
import type { ConfigSink } from '../../../src/config/sink.ts';
import { systemClock } from '../../../src/clock.ts';
import { envOrFileAuth, INLINE_PARSE_MAX_CHARS, parseYamlStream, startFileSource, type FileSource } from '../../../src/config/sources/file.ts';
import { readConfigDocuments } from '../../../src/config/sources/parse.ts';

const WAIT = { timeout: 5000, interval: 10 };

/** One LLMUpstream document; `spec` lines go under spec:, `endpoint` lines under its one endpoint. */
function upstreamYaml(name: string, extra: { spec?: string; endpoint?: string } = {}): string {
  return `apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata:
  name: ${name}
spec:
${extra.spec ? `  ${extra.spec}\n` : ''}  endpoints:
    - name: primary
      url: https://api.openai.com/v1
${extra.endpoint ? `      ${extra.endpoint}\n` : ''}`;
}

class RecordingSink implements ConfigSink {
  applied: { upstreams: readonly UpstreamConfig[]; source: string }[] = [];
  rejected: { error: ConfigError; source: string }[] = [];
  apply(upstreams: readonly UpstreamConfig[], source: string): void {
    this.applied.push({ upstreams, source });
  }
  reject(error: ConfigError, source: string): void {
    this.rejected.push({ error, source });
  }
  get names(): string[][] {
    return this.applied.map((a) => a.upstreams.map((u) => u.name));
  }
}

function caught(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

let dir: string;
let sources: FileSource[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'breakwater-file-source-'));
  sources = [];
});
afterEach(() => {
  for (const s of sources) s.close();
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function start(path: string, sink: ConfigSink, debounceMs = 20): FileSource {
  const source = startFileSource({ path, sink, debounceMs });
  sources.push(source);
  return source;
}

describe('parseYamlStream', () => {
  it('returns each document and keeps empty ones as undefined, so numbering matches the file', () => {
    const text = `${upstreamYaml('a')}---\n# only a comment\n---\n${upstreamYaml('b')}`;
    const docs = parseYamlStream(text, 'upstreams.yaml') as ({ metadata: { name: string } } | undefined)[];
    expect(docs.map((d) => d?.metadata.name)).toEqual(['a', undefined, 'b']);
  });

  it('returns no document for an empty or comment-only file', () => {
    expect(parseYamlStream('', 'u.yaml').filter((d) => d !== undefined)).toEqual([]);
    expect(parseYamlStream('# nothing here yet\n', 'u.yaml').filter((d) => d !== undefined)).toEqual([]);
  });

  it('names the file, the document and the line of a syntax error', () => {
    const first = upstreamYaml('a'); // 8 lines, then --- on line 9
    expect(first.split('\n').length).toBe(9);
    const text = `${first}---\napiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata:\n\tname: b\n`;
    const error = caught(() => parseYamlStream(text, 'upstreams.yaml'));
    expect(error.document).toBe('upstreams.yaml document 2');
    expect(error.path).toBe('line 13');
    expect(error.reason).toBe('Invalid');
    expect(error.message).toMatch(/^upstreams\.yaml document 2: line 13: Tabs are not allowed/);
  });

  it.each([
    ['tabs as indentation', 'a:\n\tb: 1\n', 'line 2'],
    ['an unclosed flow map', 'a: {\n', 'line 2'],
    ['a mapping nested under a plain value', 'key: value\n  bad: indent\n', 'line 1'],
  ])('rejects %s at its line', (_label, text, line) => {
    const error = caught(() => parseYamlStream(text, 'u.yaml'));
    expect(error.document).toBe('u.yaml document 1');
    expect(error.path).toBe(line);
  });
});

describe('envOrFileAuth', () => {
  const where = { document: 'document 1 (LLMUpstream "chat")', path: 'spec.endpoints[0].auth', namespace: undefined };

  it('reads a key from the environment', () => {
    vi.stubEnv('BREAKWATER_TEST_KEY', 'sk-env-123');
    expect(envOrFileAuth({ env: 'BREAKWATER_TEST_KEY' }, where).reveal()).toBe('sk-env-123');
  });

  it.each([
    ['unset', undefined],
    ['empty', ''],
  ])('rejects an %s environment variable as SecretNotFound, naming it', (_label, value) => {
    vi.stubEnv('BREAKWATER_TEST_KEY', value);
    const error = caught(() => envOrFileAuth({ env: 'BREAKWATER_TEST_KEY' }, where));
    expect(error).toMatchObject({ reason: 'SecretNotFound', document: where.document, path: where.path });
    expect(error.detail).toBe('environment variable BREAKWATER_TEST_KEY is not set');
  });

  // A Secret made with `kubectl create secret --from-file` often ends in a newline, and env
  // valueFrom.secretKeyRef passes it on; the key file is trimmed, the variable must be too,
  // or every request carries an invalid header value (undici refuses it) and the breaker opens.
  it('trims the newline a Secret-fed environment variable often carries', () => {
    vi.stubEnv('BREAKWATER_TEST_KEY', 'sk-env-123\n');
    expect(envOrFileAuth({ env: 'BREAKWATER_TEST_KEY' }, where).reveal()).toBe('sk-env-123');
  });

  it('reads a key file, trimming the newline editors and kubectl leave', () => {
    const file = join(dir, 'key');
    writeFileSync(file, '  sk-file-456\n');
    expect(envOrFileAuth({ file }, where).reveal()).toBe('sk-file-456');
  });

  it('rejects a missing key file as SecretNotFound, with the errno code and never a key', () => {
    const file = join(dir, 'missing');
    const error = caught(() => envOrFileAuth({ file }, where));
    expect(error).toMatchObject({ reason: 'SecretNotFound', path: where.path, detail: `cannot read key file ${file}: ENOENT` });
  });

  it('rejects an unreadable key file (a directory) with its errno code', () => {
    expect(caught(() => envOrFileAuth({ file: dir }, where)).detail).toBe(`cannot read key file ${dir}: EISDIR`);
  });

  it('rejects an empty key file as KeyNotFound', () => {
    const file = join(dir, 'empty');
    writeFileSync(file, ' \n');
    expect(caught(() => envOrFileAuth({ file }, where))).toMatchObject({ reason: 'KeyNotFound', detail: `key file ${file} is empty` });
  });

  it('rejects a secretRef as Unresolvable, pointing at --kubernetes', () => {
    const error = caught(() => envOrFileAuth({ secretRef: { name: 'openai', key: 'apiKey' } }, where));
    expect(error.reason).toBe('Unresolvable');
    expect(error.detail).toContain('--kubernetes');
  });
});

describe('startFileSource', () => {
  it('applies a valid file at start, under source file:<absolute path>', () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, `${upstreamYaml('openai')}---\n${upstreamYaml('claude', { spec: 'api: anthropic' })}`);
    const sink = new RecordingSink();
    start(relative(process.cwd(), path), sink);
    expect(sink.names).toEqual([['openai', 'claude']]);
    expect(sink.applied[0]!.source).toBe(`file:${path}`);
    expect(sink.applied[0]!.upstreams[1]!.api).toBe('anthropic');
    expect(sink.rejected).toEqual([]);
  });

  it('throws at start on an invalid file, applying nothing (the caller exits non-zero)', () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai', { spec: 'breaker: { errorThresholdPercentage: -5 }' }));
    const sink = new RecordingSink();
    const error = caught(() => start(path, sink));
    expect(error).toMatchObject({ document: 'document 1 (LLMUpstream "openai")', path: 'spec.breaker.errorThresholdPercentage' });
    expect(sink.applied).toEqual([]);
  });

  it('throws at start on a missing file, naming it', () => {
    const path = join(dir, 'nope.yaml');
    expect(caught(() => start(path, new RecordingSink()))).toMatchObject({ document: path, path: '(file)', detail: 'cannot read config file: ENOENT' });
  });

  it('applies a valid edit', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);
    writeFileSync(path, `${upstreamYaml('openai')}---\n${upstreamYaml('claude')}`);
    await vi.waitFor(() => expect(sink.names).toEqual([['openai'], ['openai', 'claude']]), WAIT);
  });

  it('rejects a bad edit and applies nothing, so the last good config keeps serving; a fixed edit applies', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);

    writeFileSync(path, upstreamYaml('openai', { spec: 'timeouts: { total: ten minutes }' }));
    await vi.waitFor(() => expect(sink.rejected.length).toBeGreaterThan(0), WAIT);
    expect(sink.rejected[0]!.error).toMatchObject({ document: 'document 1 (LLMUpstream "openai")', path: 'spec.timeouts.total' });
    expect(sink.rejected[0]!.source).toBe(`file:${path}`);
    expect(sink.applied.length).toBe(1);

    writeFileSync(path, upstreamYaml('fixed'));
    await vi.waitFor(() => expect(sink.names.at(-1)).toEqual(['fixed']), WAIT);
  });

  // A YAML error in the third document says "document 3"; a validation error there must too.
  it('numbers documents as the file does, counting an empty one, in validation errors too', () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, `${upstreamYaml('a')}---\n---\n${upstreamYaml('b', { spec: 'timeouts: { total: soon }' })}`);
    expect(caught(() => start(path, new RecordingSink())).document).toBe('document 3 (LLMUpstream "b")');
  });

  it('rejects a YAML syntax error in an edit, naming the file and document', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);
    writeFileSync(path, `${upstreamYaml('openai')}---\nspec: [\n`);
    await vi.waitFor(() => expect(sink.rejected.length).toBeGreaterThan(0), WAIT);
    expect(sink.rejected[0]!.error.document).toBe('upstreams.yaml document 2');
    expect(sink.applied.length).toBe(1);
  });

  it('picks up a file replaced by rename, as editors do', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);
    writeFileSync(join(dir, '.upstreams.yaml.swp'), upstreamYaml('renamed'));
    renameSync(join(dir, '.upstreams.yaml.swp'), path);
    await vi.waitFor(() => expect(sink.names.at(-1)).toEqual(['renamed']), WAIT);
  });

  it('picks up a ConfigMap update (the ..data symlink swapped atomically)', async () => {
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'upstreams.yaml'), upstreamYaml('v1'));
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync(join('..data', 'upstreams.yaml'), join(dir, 'upstreams.yaml'));
    const sink = new RecordingSink();
    start(join(dir, 'upstreams.yaml'), sink);
    expect(sink.names).toEqual([['v1']]);

    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'upstreams.yaml'), upstreamYaml('v2'));
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await vi.waitFor(() => expect(sink.names.at(-1)).toEqual(['v2']), WAIT);
  });

  it('does not re-apply on a watch event when the text has not changed', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);
    writeFileSync(path, upstreamYaml('openai'));
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.applied.length).toBe(1);
  });

  it('reload() applies an edit at once, without waiting for the watcher', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, upstreamYaml('now'));
    await source.reload();
    expect(sink.names).toEqual([['openai'], ['now']]);
  });

  it('stops watching after close()', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink).close();
    writeFileSync(path, upstreamYaml('after-close'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sink.applied.length).toBe(1);
  });

  it('resolves env and file keys; a rejected edit never carries a key', async () => {
    const keyFile = join(dir, 'claude.key');
    writeFileSync(keyFile, 'sk-ant-file-789\n');
    vi.stubEnv('BREAKWATER_TEST_OPENAI_KEY', 'sk-openai-env-123');
    const path = join(dir, 'upstreams.yaml');
    const good =
      `${upstreamYaml('openai', { endpoint: 'auth: { env: BREAKWATER_TEST_OPENAI_KEY }' })}---\n` +
      upstreamYaml('claude', { spec: 'api: anthropic', endpoint: `auth: { file: ${keyFile} }` });
    writeFileSync(path, good);
    const sink = new RecordingSink();
    start(path, sink);
    const [openai, claude] = sink.applied[0]!.upstreams;
    expect(openai!.endpoints[0]!.auth).toMatchObject({ header: 'authorization', source: 'env BREAKWATER_TEST_OPENAI_KEY' });
    expect(openai!.endpoints[0]!.auth!.value.reveal()).toBe('Bearer sk-openai-env-123');
    expect(claude!.endpoints[0]!.auth!.value.reveal()).toBe('sk-ant-file-789');

    writeFileSync(path, `${good}---\n${upstreamYaml('openai')}`); // the same upstream twice
    await vi.waitFor(() => expect(sink.rejected.length).toBeGreaterThan(0), WAIT);
    const error = sink.rejected[0]!.error;
    expect(error.detail).toBe('upstream "openai" is defined twice');
    for (const text of [error.message, error.stack ?? '', JSON.stringify(error), inspect(error, { depth: 5 })]) {
      expect(text).not.toContain('sk-openai-env-123');
      expect(text).not.toContain('sk-ant-file-789');
    }
  });

  it('rejects an edit whose key variable is unset, as SecretNotFound', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    start(path, sink);
    vi.stubEnv('BREAKWATER_TEST_UNSET_KEY', undefined);
    writeFileSync(path, upstreamYaml('openai', { endpoint: 'auth: { env: BREAKWATER_TEST_UNSET_KEY }' }));
    await vi.waitFor(() => expect(sink.rejected.length).toBeGreaterThan(0), WAIT);
    expect(sink.rejected[0]!.error).toMatchObject({ reason: 'SecretNotFound', path: 'spec.endpoints[0].auth' });
    expect(sink.applied.length).toBe(1);
  });

  // schema.ts: auth.file is "file holding the key, re-read on every reload (file source)".
  it('re-reads a key file on reload(), so a rotated key is applied though the config text is unchanged', async () => {
    const keyFile = join(dir, 'openai.key');
    writeFileSync(keyFile, 'sk-old\n');
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai', { endpoint: `auth: { file: ${keyFile} }` }));
    const sink = new RecordingSink();
    const source = start(path, sink);
    writeFileSync(keyFile, 'sk-rotated\n');
    await source.reload();
    expect(sink.applied.at(-1)!.upstreams[0]!.endpoints[0]!.auth!.value.reveal()).toBe('Bearer sk-rotated');
  });
});

// issue 8, defect 19: `>` or an editor leaves the file empty for a moment; that emptied the route table
describe('a file with no documents', () => {
  it.each([
    ['empty', ''],
    ['only comments', '# rewriting\n'],
    ['only separators', '---\n---\n'],
  ])('is refused at start (%s), naming the file', (_label, text) => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, text);
    const error = caught(() => start(path, new RecordingSink()));
    expect(error).toMatchObject({ document: 'upstreams.yaml', path: '(file)', reason: 'Invalid' });
    expect(error.detail).toContain('no LLMUpstream document');
  });

  it('is refused on reload while the last good config keeps serving; the rewritten file applies', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, '');
    await source.reload();
    expect(sink.rejected.map((r) => r.error.detail)).toEqual([expect.stringContaining('no LLMUpstream document')]);
    expect(sink.names).toEqual([['openai']]);
    writeFileSync(path, upstreamYaml('openai'));
    await source.reload();
    expect(sink.names).toEqual([['openai'], ['openai']]);
  });
});

describe('the debounce, on virtual time', () => {
  afterEach(() => vi.useRealTimers());

  it('a truncate and a rewrite within the quiet time are one reload of the finished file, 250 ms after the last change', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('v1'));
    const sink = new RecordingSink();
    const realSetTimeout = globalThis.setTimeout; // fs.watch events are real I/O: wait for them in real time
    const realSleep = (ms: number) => new Promise((r) => realSetTimeout(r, ms));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    sources.push(startFileSource({ path, sink, clock: systemClock }));
    writeFileSync(path, '');
    await realSleep(300);
    vi.advanceTimersByTime(200);
    writeFileSync(path, upstreamYaml('v2'));
    await realSleep(300);
    vi.advanceTimersByTime(249);
    await realSleep(50);
    expect(sink.applied.length + sink.rejected.length).toBe(1); // nothing yet: 249 ms of quiet
    vi.advanceTimersByTime(1);
    await vi.waitFor(() => expect(sink.names).toEqual([['v1'], ['v2']]), WAIT);
    expect(sink.rejected).toEqual([]); // the empty file was never loaded
  });
});

// issue 8, defect 11: a 40k-key map (0.55 MiB) blocked the event loop for 10.8 s
describe('large and pathological files', () => {
  it('refuses a config file over 1 MiB before reading it, naming its size', async () => {
    const path = join(dir, 'upstreams.yaml');
    const big = `${upstreamYaml('openai')}${'# padding padding padding padding padding padding padding\n'.repeat(20_000)}`;
    expect(big.length).toBeGreaterThan(1024 * 1024);
    writeFileSync(path, big);
    const error = caught(() => start(path, new RecordingSink()));
    expect(error).toMatchObject({ path: '(file)', reason: 'Invalid' });
    expect(error.detail).toMatch(/^config file is 1\.1 MiB \(\d+ bytes\); the limit is 1\.0 MiB \(1048576 bytes\)/);

    writeFileSync(path, upstreamYaml('openai'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, big);
    await source.reload();
    expect(sink.rejected[0]!.error.detail).toContain('the limit is 1.0 MiB');
    expect(sink.names).toEqual([['openai']]);
  });

  it('parses a 40,000-key map in bounded time and refuses it at the map', () => {
    const entries = Array.from({ length: 40_000 }, (_, i) => `        m${i}: v${i}\n`).join('');
    const text = `${upstreamYaml('openai')}      models:\n${entries}`;
    expect(text.length).toBeLessThan(1024 * 1024);
    const started = performance.now();
    const error = caught(() => readConfigDocuments(text, 'u.yaml'));
    // generous, to catch the quadratic duplicate-key check (36 s here before the fix)
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(error).toMatchObject({ document: 'document 1 (LLMUpstream "openai")', path: 'spec.endpoints[0].models' });
  });

  it('still refuses a duplicate key, naming its line', () => {
    const text = `${upstreamYaml('openai')}      models:\n        a: b\n        c: d\n        a: e\n`;
    const error = caught(() => parseYamlStream(text, 'u.yaml'));
    expect(error).toMatchObject({ document: 'u.yaml document 1', path: 'line 12' });
    expect(error.detail).toBe('Map keys must be unique: "a" appears twice');
  });

  it('a change made during a reload is applied after it: reloads run one at a time, the newest text wins', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('v1'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, upstreamYaml('v2'));
    const first = source.reload();
    writeFileSync(path, upstreamYaml('v3'));
    const second = source.reload();
    await Promise.all([first, second]);
    expect(sink.names.at(-1)).toEqual(['v3']);
    expect(sink.names.length).toBeLessThanOrEqual(3);
  });

  /** More documents than INLINE_PARSE_MAX_CHARS holds: such a reload parses in a worker thread. */
  const manyUpstreams = (prefix: string) => {
    const docs = Array.from({ length: 300 }, (_, i) => upstreamYaml(`${prefix}-${i}`));
    expect(docs.join('').length).toBeGreaterThan(INLINE_PARSE_MAX_CHARS);
    return docs.join('---\n');
  };

  it('applies a large edit parsed in a worker thread, and rejects a large bad one the same way', async () => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('v1'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, manyUpstreams('big'));
    await source.reload();
    expect(sink.names.at(-1)).toHaveLength(300);
    writeFileSync(path, `${manyUpstreams('bad')}---\n${upstreamYaml('x', { spec: 'timeouts: { total: soon }' })}`);
    await source.reload();
    expect(sink.rejected.map((r) => [r.error.document, r.error.path])).toEqual([['document 301 (LLMUpstream "x")', 'spec.timeouts.total']]);
    expect(sink.names.at(-1)?.[0]).toBe('big-0');
  }, 30_000);

  it.each([
    ['small', (v: string) => upstreamYaml(v)],
    ['large (worker thread)', (v: string) => manyUpstreams(v)],
  ])('close() during a reload of a %s file applies nothing', async (_label, text) => {
    const path = join(dir, 'upstreams.yaml');
    writeFileSync(path, upstreamYaml('v1'));
    const sink = new RecordingSink();
    const source = start(path, sink, 60_000);
    writeFileSync(path, text('v2'));
    const pending = source.reload();
    source.close();
    await pending;
    expect(sink.names).toEqual([['v1']]);
    expect(sink.rejected).toEqual([]);
  });
});
