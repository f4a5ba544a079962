// Issue 8, defect 3(a)/(b): a provider's response cannot grow Breakwater's memory without bound.
// An endless SSE event is cut at the event limit, endless comments before the first event at
// the pre-commit limit, a gzip bomb at the same limits (or the JSON size limit), each as an
// invalid_response that fails over before the commit and ends the stream with an SDK error
// after it. Bare-CR line endings are valid SSE. Breakwater runs as its own process here, so
// its peak resident memory (VmHWM) is its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { primaryAndSecondary, TEST_KEY_ENV, upstreamsYaml, waitFor } from '../support/rig.ts';

const BIN = join(import.meta.dirname, '../../bin/breakwater');
const PEAK_RSS_LIMIT_MB = 200;

let primary: FakeProvider;
let secondary: FakeProvider;
let child: ChildProcess;
let base: string;
let dir: string;
let output = '';

beforeAll(async () => {
  [primary, secondary] = await Promise.all([startFake({ name: 'fake-a' }), startFake({ name: 'fake-b' })]);
  dir = mkdtempSync(join(tmpdir(), 'breakwater-limits-'));
  const config = join(dir, 'upstreams.yaml');
  // every test fails over once, quickly: a budget that does not run out (issue 8, defect 1 is another branch)
  const common = { timeouts: { idle: '5s', firstByte: '20s' }, breaker: { volumeThreshold: 1000 }, retry: { budget: { ratio: 1, minPerSecond: 100 } } };
  writeFileSync(
    config,
    upstreamsYaml([
      { name: 'openai', endpoints: primaryAndSecondary(primary, secondary), ...common },
      { name: 'anthropic', api: 'anthropic', endpoints: primaryAndSecondary(primary, secondary, ''), ...common },
    ]),
  );
  child = spawn(BIN, ['proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    env: { ...process.env, [TEST_KEY_ENV]: 'sk-test' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  for (let i = 0; i < 400 && !output.includes('proxy listening'); i++) await new Promise((r) => setTimeout(r, 50));
  const listening = logLines().find((l) => l.msg === 'proxy listening');
  if (!listening) throw new Error(`breakwater did not start:\n${output}`);
  base = `http://${String(listening.listen)}`;
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all([primary?.close(), secondary?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => primary.setFault(null));

function logLines(): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** the outcomes of failed attempts Breakwater logged for one endpoint */
function failedAttempts(endpoint: string): string[] {
  return logLines()
    .filter((l) => String(l.msg).startsWith('attempt failed') && l.endpoint === endpoint)
    .map((l) => String(l.outcome));
}

/** the outcome of the next failed attempt on the primary that Breakwater logs (its log reaches us after the answer may have) */
async function nextPrimaryFailure(run: () => Promise<unknown>): Promise<string> {
  const before = failedAttempts('primary').length;
  await run();
  await waitFor(() => failedAttempts('primary').length > before, 'the failed attempt in the log', 5_000);
  return failedAttempts('primary')[before]!;
}

/** Breakwater's peak resident set size so far, in MB */
function peakRssMb(): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** fails instead of hanging */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no end within ${ms} ms`)), ms))]);
}

const openai = () => new OpenAI({ baseURL: `${base}/openai`, apiKey: 'sk-app', maxRetries: 0, timeout: 60_000 });

async function openaiStream(): Promise<{ endpoint: string | null; attempts: string | null; text: string }> {
  const { data, response } = await openai()
    .chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  let text = '';
  for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
  return { endpoint: response.headers.get('x-breakwater-endpoint'), attempts: response.headers.get('x-breakwater-attempts'), text };
}

describe('bounded memory for what a provider sends', () => {
  it('one endless SSE event is cut at the event limit and the process stays under 200 MB', async () => {
    primary.setFault({ fault: 'endless-event' });
    let result: Awaited<ReturnType<typeof openaiStream>> | undefined;
    const failure = await nextPrimaryFailure(async () => (result = await within(30_000, 'endless event', openaiStream())));
    expect(result).toMatchObject({ endpoint: 'secondary', text: expect.stringContaining('Breakwater') });
    expect(failure).toMatch(/invalid response: .*SSE event over 8 MiB/);
    expect(peakRssMb()).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  it('endless comment lines before the first event are cut at the pre-commit limit and failed over to the secondary', async () => {
    primary.setFault({ fault: 'endless-comments' });
    let result: Awaited<ReturnType<typeof openaiStream>> | undefined;
    const failure = await nextPrimaryFailure(async () => (result = await within(30_000, 'endless comments', openaiStream())));
    expect(result).toMatchObject({ endpoint: 'secondary', text: expect.stringContaining('Breakwater') });
    expect(failure).toMatch(/invalid response: .*over 1 MiB .*before the first event/);
    expect(peakRssMb()).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  it('an endless event after the first content ends the stream with an SDK error, and the process stays under 200 MB', async () => {
    primary.setFault({ fault: 'endless-event-mid-stream' });
    const seen: string[] = [];
    const error = await within(
      30_000,
      'endless event mid-stream',
      (async () => {
        const stream = await openai().chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] });
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })().then(() => undefined, (e: unknown) => e),
    );
    expect(seen.join('')).not.toBe(''); // committed: the app had content from the primary
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toMatch(/SSE event over 8 MiB/);
    expect(peakRssMb()).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  it('a stream with bare-CR line endings completes through the openai SDK', async () => {
    primary.setFault({ fault: 'bare-cr' });
    const result = await within(10_000, 'bare CR', openaiStream());
    expect(result).toMatchObject({ endpoint: 'primary', attempts: '1' });
    expect(result.text).toBe('Hello from the Breakwater fake');
  });

  it('a stream with bare-CR line endings completes through the anthropic SDK', async () => {
    primary.setFault({ fault: 'bare-cr' });
    const client = new Anthropic({ baseURL: `${base}/anthropic`, apiKey: 'sk-ant-app', maxRetries: 0 });
    const { data, response } = await client.messages
      .create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    let stopped = false;
    await within(10_000, 'bare CR', (async () => {
      for await (const event of data) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
        if (event.type === 'message_stop') stopped = true;
      }
    })());
    expect(response.headers.get('x-breakwater-endpoint')).toBe('primary');
    expect({ text, stopped }).toEqual({ text: 'Hello from the Breakwater fake', stopped: true });
  });

  it('a gzip bomb in a stream is cut as invalid_response at the event limit and failed over; the process stays under 200 MB', async () => {
    primary.setFault({ fault: 'gzip-bomb' });
    let result: Awaited<ReturnType<typeof openaiStream>> | undefined;
    const failure = await nextPrimaryFailure(async () => (result = await within(30_000, 'SSE gzip bomb', openaiStream())));
    expect(result).toMatchObject({ endpoint: 'secondary', text: expect.stringContaining('Breakwater') });
    expect(failure).toMatch(/invalid response: .*SSE event over 8 MiB/);
    expect(peakRssMb()).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  // last: it may hold up to the 64 MiB response limit, so the bound above no longer applies after it
  it('a gzip bomb in a JSON answer is cut as invalid_response at the 64 MiB response limit and failed over', async () => {
    primary.setFault({ fault: 'gzip-bomb' });
    let endpoint: string | null = null;
    let content: string | null | undefined;
    const failure = await nextPrimaryFailure(async () => {
      const { data, response } = await within(
        30_000,
        'JSON gzip bomb',
        openai().chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse(),
      );
      endpoint = response.headers.get('x-breakwater-endpoint');
      content = data.choices[0]?.message.content;
    });
    expect(endpoint).toBe('secondary');
    expect(content).toContain('Breakwater');
    expect(failure).toBe('invalid response: response body over the limit');
    expect(peakRssMb()).toBeLessThan(PEAK_RSS_LIMIT_MB + 64 + 64);
  });
});
