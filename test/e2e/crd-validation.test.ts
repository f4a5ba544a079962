// One validator, two places: every fixture in test/fixtures/{invalid,valid} goes to the real API
// server (the generated CRD's structural schema and CEL rules) and to the file source's
// validator (TypeBox + the TS halves of the same named rules); the verdicts and the field they
// name must agree. Refused specs never reach the sidecar: it keeps serving (issue 4, item 2).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/compile.ts';
import { parseYamlStream, startFileSource } from '../../src/config/sources/file.ts';
import { validateDocument } from '../../src/config/validate.ts';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { startSidecar, type Sidecar } from './support/breakwater.ts';
import { applyJson, llmUpstream, REPO, secret, setupCluster } from './support/cluster.ts';
import { chat } from './support/traffic.ts';
import { waitUntil } from './support/wait.ts';

const NS = 'fixtures';
const KEY = 'sk-e2e-fixtures-0001';
const FIXTURES = join(REPO, 'test', 'fixtures');

interface Fixture {
  file: string;
  path: string;
  /** the field both validators must name (`# expect:` line); invalid fixtures only */
  expect: string | undefined;
}

function fixtures(kind: 'invalid' | 'valid'): Fixture[] {
  return readdirSync(join(FIXTURES, kind))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => {
      const path = join(FIXTURES, kind, file);
      const expect = /^# expect: (\S+)$/m.exec(readFileSync(path, 'utf8'))?.[1];
      return { file, path, expect };
    });
}

/** "spec.endpoints[1].url" names "spec.endpoints" and itself, not "spec.endpoints[0]" or "spec.endpointsX". */
function names(path: string, field: string): boolean {
  return path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`);
}

/** The field paths in a kubectl error: `The LLMUpstream "chat" is invalid: spec.x: Invalid value...` (one or a `* ` list). */
function apiServerPaths(stderr: string): string[] {
  const body = stderr.slice(stderr.indexOf('is invalid:') + 'is invalid:'.length);
  return [...body.matchAll(/(?:^|\n|\* |: )\s*((?:spec|metadata)[\w.[\]]*): /g)].map((m) => m[1]!);
}

/** The fixture as JSON, moved to the test namespace (a fixture may name its own). */
function inNamespace(path: string): string {
  const doc = parseYamlStream(readFileSync(path, 'utf8'), path)[0] as { metadata: Record<string, unknown> };
  return JSON.stringify({ ...doc, metadata: { ...doc.metadata, namespace: NS } });
}

describe('the CRD and the file source give identical verdicts', () => {
  let cp: ControlPlane;
  let fake: FakeProvider;
  let sidecar: Sidecar;
  const invalid = fixtures('invalid');
  const valid = fixtures('valid');

  beforeAll(async () => {
    cp = await startControlPlane();
    fake = await startFake({ name: 'fixtures' });
    await setupCluster(cp, NS, ['openai']);
    sidecar = await startSidecar(cp, NS);
    // the last good config: "chat", the name every fixture uses
    await applyJson(cp, [
      secret(NS, 'openai', { apiKey: KEY }),
      llmUpstream(NS, 'chat', { endpoints: [{ name: 'primary', url: `${fake.url}/v1`, auth: { secretRef: { name: 'openai', key: 'apiKey' } } }] }),
    ]);
    await waitUntil('chat to serve', async () => (await chat(sidecar.base, 'chat')).ok, 10_000);
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await sidecar?.stop();
    await fake?.close();
    await cp?.stop();
  }, 60_000);

  it('has the fixtures the issue lists', () => {
    expect(invalid.map((f) => f.file)).toEqual(
      expect.arrayContaining([
        'duplicate-endpoint-names.yaml',
        'negative-threshold.yaml',
        'backoff-max-below-initial.yaml',
        'plain-http-public-host.yaml',
        'too-many-endpoints.yaml',
        'fallback-cycle.yaml',
      ]),
    );
    for (const f of invalid) expect(f.expect, `${f.file} needs an "# expect: <field>" line`).toBeDefined();
  });

  it.each(invalid.map((f) => [f.file, f] as const))('refuses %s in both places, naming the same field', async (_name, f) => {
    const res = await cp.kubectl(['apply', '-n', NS, '-f', '-'], { input: inNamespace(f.path) });
    expect(res.code, `the API server accepted ${f.file}`).not.toBe(0);
    expect(res.stderr).toContain('is invalid');
    const apiPaths = apiServerPaths(res.stderr);
    expect(apiPaths.some((p) => names(p, f.expect!)), `API server error names ${f.expect}: ${res.stderr}`).toBe(true);

    const doc = parseYamlStream(readFileSync(f.path, 'utf8'), f.file)[0];
    const violations = validateDocument(doc);
    expect(violations.length, `validateDocument accepted ${f.file}`).toBeGreaterThan(0);
    expect(names(violations[0]!.path, f.expect!), `validateDocument names ${f.expect}: ${JSON.stringify(violations)}`).toBe(true);

    // and the file source itself refuses to start on it, naming the same field
    const dir = mkdtempSync(join(tmpdir(), 'bw-fixture-'));
    try {
      const file = join(dir, 'upstreams.yaml');
      writeFileSync(file, readFileSync(f.path));
      let thrown: unknown;
      try {
        startFileSource({ path: file, sink: { apply: () => undefined, reject: () => undefined } }).close();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect(names((thrown as ConfigError).path, f.expect!), (thrown as Error).message).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(valid.map((f) => [f.file, f] as const))('accepts %s in both places', async (_name, f) => {
    const res = await cp.kubectl(['apply', '--dry-run=server', '-n', NS, '-f', '-'], { input: inNamespace(f.path) });
    expect(res.code, res.stderr).toBe(0);
    expect(validateDocument(parseYamlStream(readFileSync(f.path, 'utf8'), f.file)[0])).toEqual([]);
  });

  // issue 8, defect 10: URL validity is one grammar in CEL and TS, since Go's and Node's URL
  // parsers disagree at the edges (a port above 65535, a bad %-escape, an IPv4 out of range)
  it.each([
    'https://api.openai.com/v1',
    'http://127.0.0.1:8080/v1',
    'http://[::1]:8000/v1',
    'https://[2001:db8::7]:443/v1',
    'https://x.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21',
    'https://bedrock.example.com/model/claude-3:0/%7Einvoke',
    'https://api.example.com:65535',
    'https://api.example.com:65536/v1',
    'http://127.0.0.1:99999/v1',
    'https://user:PASS@api.example.com/v1',
    'https://@api.example.com/v1',
    'https://api.example.com:/v1',
    'https://300.1.1.1/v1',
    'https://1.2.3/v1',
    'https://[:::1]/v1',
    'https://api.example.com/v1/%zz',
    'https://api.example.com/v1#x',
    'https:///v1',
  ])('gives the same verdict on %s in both places', async (url) => {
    const spec = { endpoints: [{ name: 'primary', url }] };
    const res = await cp.kubectl(['apply', '--dry-run=server', '-n', NS, '-f', '-'], { input: JSON.stringify(llmUpstream(NS, 'chat', spec)) });
    const violations = validateDocument({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'LLMUpstream', metadata: { name: 'chat' }, spec });
    expect(res.code === 0, `API server: ${res.stderr || 'accepted'}; file source: ${JSON.stringify(violations)}`).toBe(violations.length === 0);
    if (violations.length > 0) expect(apiServerPaths(res.stderr)).toContain('spec.endpoints[0].url');
    expect(res.stderr).not.toContain('PASS');
  });

  it('keeps serving the last good config: nothing refused ever reached the sidecar', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await chat(sidecar.base, 'chat');
      expect(res.ok, res.body).toBe(true);
    }
    expect(fake.stats().recent.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
    const applied = sidecar.lines().filter((l) => l.msg === 'config applied');
    expect(applied.at(-1)?.upstreams).toEqual(['chat']);
    expect(sidecar.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('config rejected'))).toEqual([]);
  });
});
