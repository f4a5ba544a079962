// What a `--config` sidecar keeps in its heap: its main thread checks a valid config with the
// generated structural check and the rules, so the TypeBox runtime and the schema never load
// there (the parse worker loads them to explain a refused document), and the Kubernetes client
// is loaded only for --kubernetes. express is gone altogether, and of undici only the Pool is
// loaded (its index pulls in fetch, WebSocket and the rest). Read from the real binary, with
// Node's module hooks recording every module its main thread loads.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.ts';

const BIN = join(import.meta.dirname, '../../bin/breakwater');
const RECORDER = join(import.meta.dirname, '../support/loaded-modules.ts');
const dir = mkdtempSync(join(tmpdir(), 'breakwater-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONFIG = `apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  required: true
  endpoints:
    - { name: local, url: "http://127.0.0.1:9/v1" }
  fallbacks:
    - model: gpt-4.1
      chain: [{ model: gpt-4.1-mini }]
`;

describe('a --config sidecar', () => {
  it("serves without TypeBox, the schema, the Kubernetes client, express or undici's index in its main thread", async () => {
    const config = join(dir, 'upstreams.yaml');
    const out = join(dir, 'modules.txt');
    writeFileSync(config, CONFIG);
    const child = spawn(BIN, ['proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
      env: { ...process.env, NODE_OPTIONS: `--import=${RECORDER}`, BW_MODULES_OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    try {
      const admin = await waitFor('the admin port in the log', () => /"admin":"127\.0\.0\.1:(\d+)"/.exec(logs)?.[1], 20_000);
      // config applied and served: a probe and a scrape ran through the admin server
      await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200, 20_000);
      expect((await fetch(`http://127.0.0.1:${admin}/metrics`)).status).toBe(200);
      child.kill('SIGUSR2');
      await waitFor('the module list', () => existsSync(out), 10_000);
      const loaded = readFileSync(out, 'utf8').split('\n');
      // the recorder works: the data plane and the admin server are in the list
      expect(loaded.some((u) => u.includes('/node_modules/undici/'))).toBe(true);
      // bin/breakwater runs build/dist when it is current, the sources otherwise: either tree counts
      expect(loaded.some((u) => /\/(src|dist)\/admin\/server\.(ts|js)$/.test(u))).toBe(true);
      expect(loaded.some((u) => /\/(src|dist)\/config\/check\.generated\.(ts|js)$/.test(u))).toBe(true);
      for (const absent of ['/node_modules/@sinclair/typebox/', '/node_modules/@kubernetes/client-node/', '/node_modules/express/', '/config/validate.', '/config/schema.', '/config/compile.', '/node_modules/undici/index.js', '/node_modules/undici/lib/web/', '/node_modules/undici/lib/dispatcher/env-http-proxy-agent.js']) {
        expect(loaded.filter((u) => u.includes(absent)), absent).toEqual([]);
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }, 60_000);
});
