// The real binary: it runs on the pinned Node 24, an invalid config at start exits non-zero
// with one line naming the document, field and reason, and SIGTERM drains in-flight streams.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { upstreamsYaml, TEST_KEY_ENV } from '../support/rig.ts';

const BIN = join(import.meta.dirname, '../../bin/breakwater');
const dir = mkdtempSync(join(tmpdir(), 'breakwater-process-'));
let fake: FakeProvider | undefined;
afterAll(async () => fake?.close());

describe('the breakwater process', () => {
  it('tests run on the pinned Node 24, not the machine\'s node', () => {
    expect(process.version).toMatch(/^v24\./);
    const r = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('breakwater proxy');
  });

  it('exits non-zero at start on an invalid config, with one line naming document, field and reason', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(
      path,
      upstreamsYaml([
        { name: 'good', endpoints: [{ name: 'a', url: 'https://api.openai.com/v1' }] },
        { name: 'bad', endpoints: [{ name: 'a', url: 'http://api.example.com/v1' }] },
      ]),
    );
    const r = spawnSync(BIN, ['proxy', '--config', path, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { encoding: 'utf8', env: { ...process.env, [TEST_KEY_ENV]: 'k' }, timeout: 20_000 });
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('document 2 (LLMUpstream "bad")');
    expect(lines[0]).toContain('spec.endpoints[0].url');
    expect(lines[0]).toContain('https');
  });

  // Issue 8, defect 10: the URL is in the message, its password is not; a bad port is a config
  // error like any other, not a stack trace.
  it.each([
    ['http://user:PASS-d10@api.example.com:99999/v1'],
    ['https://user:PASS-d10@api.example.com:99999/v1'],
    ['https://api.example.com:99999/v1?key=PASS-d10'],
  ])('a config URL with a credential and a bad port (%s) exits with one line that never prints the credential', (url) => {
    const path = join(dir, 'credential-url.yaml');
    writeFileSync(path, upstreamsYaml([{ name: 'leaky', endpoints: [{ name: 'a', url }] }]));
    const r = spawnSync(BIN, ['proxy', '--config', path, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { encoding: 'utf8', env: { ...process.env, [TEST_KEY_ENV]: 'k' }, timeout: 20_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^breakwater: invalid config: /);
    expect(lines[0]).toContain('spec.endpoints[0].url');
    expect(r.stderr + r.stdout).not.toContain('PASS-d10');
  });

  it('rejects a bad flag with one clear line', () => {
    const r = spawnSync(BIN, ['proxy', '--config', 'x.yaml', '--drain', 'soon'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe('breakwater: --drain: "soon" is not a duration (e.g. 10s)');
  });

  it('the controller exits non-zero at start on a bad --injection-config, with one line naming the field', () => {
    const path = join(dir, 'sidecar-values.yaml');
    writeFileSync(path, 'image: breakwater:1\nreadiness: sometimes\n');
    const r = spawnSync(BIN, ['controller', '--injection-config', path], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe(`breakwater: invalid --injection-config: ${path}: readiness: must be one of breakers, local`);
  });

  it('rejects a --max-connections that is not a whole number >= 1', () => {
    const r = spawnSync(BIN, ['proxy', '--config', 'x.yaml', '--max-connections', '0'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe('breakwater: --max-connections: "0" is not a whole number >= 1');
  });

  it('on SIGTERM stops accepting, lets an in-flight stream finish, then exits 0', async () => {
    fake = await startFake();
    const path = join(dir, 'good.yaml');
    writeFileSync(path, upstreamsYaml([{ name: 'openai', endpoints: [{ name: 'a', url: `${fake.url}/v1` }] }]));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(BIN, ['proxy', '--config', path, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--drain', '10s'], {
      env: { ...process.env, [TEST_KEY_ENV]: 'k' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 200 && !output.includes('proxy listening'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(output).toContain('proxy listening');
      // a stream of 10 events, 150 ms apart: it is in flight when SIGTERM arrives
      const res = await fetch(`http://127.0.0.1:${port}/openai/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-fake-fault': 'slow', 'x-fake-delay-ms': '150', 'x-fake-events': '10' },
        body: JSON.stringify({ model: 'gpt-4.1', stream: true, messages: [] }),
      });
      expect(res.status).toBe(200);
      child.kill('SIGTERM');
      const text = await res.text();
      expect(text).toContain('data: [DONE]');
      expect(await exited).toBe(0);
      const refused = await fetch(`http://127.0.0.1:${port}/openai/models`).then(() => false, () => true);
      expect(refused).toBe(true);
      expect(output).toContain('shutting down');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
