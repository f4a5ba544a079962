// Issue 8, defect 5: the admin port cannot starve the data plane. The real binary runs under a
// file-descriptor limit of 256 (prlimit); 300 connections to the admin port stall with
// half-sent headers; app requests through the proxy port still succeed, and the provider's
// breaker is charged nothing (a local EMFILE is never the provider's fault).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../../src/fake/server.ts';
import { chatBody, TEST_KEY_ENV, upstreamsYaml, waitFor } from '../../support/rig.ts';
import { openSocket } from '../../support/raw.ts';

const BIN = join(import.meta.dirname, '../../../bin/breakwater');
const FD_LIMIT = 256;
const STALLED = 300;

let fake: FakeProvider;
let child: ChildProcess;
let dir: string;
let proxyPort = 0;
let adminPort = 0;

beforeAll(async () => {
  fake = await startFake();
  dir = mkdtempSync(join(tmpdir(), 'breakwater-fd-'));
  const config = join(dir, 'upstreams.yaml');
  writeFileSync(config, upstreamsYaml([{ name: 'openai', endpoints: [{ name: 'only', url: `${fake.url}/v1` }] }]));
  child = spawn('prlimit', [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--', BIN, 'proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    env: { ...process.env, [TEST_KEY_ENV]: 'sk-fd-test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of out.split('\n')) {
      const admin = /"admin":"127\.0\.0\.1:([0-9]+)"/.exec(line);
      if (admin) adminPort = Number(admin[1]);
      const listen = /"listen":"127\.0\.0\.1:([0-9]+)"/.exec(line);
      if (listen) proxyPort = Number(listen[1]);
    }
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  await waitFor(() => proxyPort > 0 && adminPort > 0, 'the proxy and admin ports', 20_000);
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

/** a connection that sends half a request and then nothing; undefined when it was refused */
async function stall(port: number): Promise<Socket | undefined> {
  try {
    const socket = await openSocket(port);
    socket.on('error', () => undefined);
    socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nx-slow: ');
    return socket;
  } catch {
    return undefined;
  }
}

describe('a process at its file-descriptor limit', () => {
  it('keeps serving app requests while 300 admin connections stall, and charges the provider nothing', async () => {
    const stalled: (Socket | undefined)[] = [];
    try {
      for (let i = 0; i < STALLED; i++) stalled.push(await stall(adminPort));
      await new Promise((r) => setTimeout(r, 300));

      const statuses: (number | string)[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`http://127.0.0.1:${proxyPort}/openai/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: chatBody(),
        }).then(async (res) => (await res.text(), res.status), (err: unknown) => String((err as { cause?: unknown }).cause ?? err));
        statuses.push(r);
      }
      expect(statuses).toEqual(Array(20).fill(200));
    } finally {
      for (const s of stalled) s?.destroy();
    }

    // once the stalled sockets are gone the admin port answers again: the breaker saw no failure
    let state: { upstreams: { endpoints: { breaker: { kind: string; window: { failures: number } } }[] }[] } | undefined;
    for (let i = 0; i < 50 && state === undefined; i++) {
      state = await fetch(`http://127.0.0.1:${adminPort}/debug/state`).then((r) => r.json() as Promise<NonNullable<typeof state>>, () => undefined);
      if (state === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    const breaker = state!.upstreams[0]!.endpoints[0]!.breaker;
    expect(breaker.kind).toBe('closed');
    expect(breaker.window.failures).toBe(0);
  }, 60_000);
});
