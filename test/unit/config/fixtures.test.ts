// The example documents in test/fixtures: every valid one compiles, every invalid one is
// rejected at the path its `# expect:` line names, and full.yaml really uses every field.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileConfig } from '../../../src/config/compile.ts';
import { SpecSchema } from '../../../src/config/schema.ts';
import type { UpstreamConfig } from '../../../src/config/runtime.ts';
import { parseYamlStream, startFileSource } from '../../../src/config/sources/file.ts';
import { validateDocument } from '../../../src/config/validate.ts';
import { fakeAuth } from './docs.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const files = (kind: 'valid' | 'invalid') => readdirSync(join(FIXTURES, kind)).filter((f) => f.endsWith('.yaml')).sort();
const read = (kind: 'valid' | 'invalid', file: string) => readFileSync(join(FIXTURES, kind, file), 'utf8');

afterEach(() => vi.unstubAllEnvs());

describe('valid fixtures', () => {
  it('include the minimal and the full example', () => {
    expect(files('valid')).toEqual(expect.arrayContaining(['minimal.yaml', 'full.yaml']));
  });

  it.each(files('valid'))('%s validates and compiles', (file) => {
    const docs = parseYamlStream(read('valid', file), file);
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) expect(validateDocument(d)).toEqual([]);
    const config = compileConfig(docs, fakeAuth(), `file:${file}`, 1);
    expect(config.upstreams.size).toBe(docs.length);
  });

  it('minimal.yaml is one endpoint with a url, and compiles without any auth', () => {
    const [d] = parseYamlStream(read('valid', 'minimal.yaml'), 'minimal.yaml') as { spec: { endpoints: object[] } }[];
    expect(Object.keys(d!.spec)).toEqual(['endpoints']);
    expect(d!.spec.endpoints).toHaveLength(1);
    const auth = fakeAuth();
    compileConfig([d], auth, 'file:minimal.yaml', 1);
    expect(auth.calls).toEqual([]);
  });

  it('full.yaml sets every field the schema has', () => {
    const [d] = parseYamlStream(read('valid', 'full.yaml'), 'full.yaml') as { spec: unknown }[];
    expect(unusedFields(SpecSchema, [d!.spec], 'spec')).toEqual([]);
  });

  it('full.yaml compiles to the values it states', () => {
    const config = compileConfig(parseYamlStream(read('valid', 'full.yaml'), 'full.yaml'), fakeAuth('k'), 'file:full.yaml', 1);
    const u = config.upstreams.get('chat')!;
    expect(u.endpoints.map((e) => [e.name, e.priority])).toEqual([['openai-primary', 0], ['vllm', 1], ['local', 2], ['lab', 3]]);
    expect(u.endpoints.map((e) => e.auth && [e.auth.header, e.auth.value.reveal(), e.auth.source])).toEqual([
      ['authorization', 'Bearer k', 'secret openai/apiKey'],
      ['authorization', 'Bearer k', 'env VLLM_API_KEY'],
      ['api-key', 'k', 'file /run/secrets/local-key'],
      undefined,
    ]);
    expect(u.endpoints[1]!.query).toBe('&api-version=2025-04-01-preview');
    expect(u.breaker.openDurationMs).toBe(30_000);
    expect(u.timeouts.totalMs).toBe(600_000);
    expect(u.fallbacks.get('gpt-4.1')).toEqual([{ model: 'gpt-4.1-mini', maxTokens: 2048 }, { model: 'gpt-4.1-nano', maxTokens: 1024 }]);
  });

  it('anthropic.yaml loads through the file source with its keys in the environment', () => {
    vi.stubEnv('ANTHROPIC_API_KEY', 'sk-ant-fixture');
    vi.stubEnv('GATEWAY_API_KEY', 'gw-fixture');
    const applied: UpstreamConfig[][] = [];
    const source = startFileSource({
      path: join(FIXTURES, 'valid', 'anthropic.yaml'),
      sink: { apply: (u) => applied.push([...u]), reject: (e) => expect.unreachable(e.message) },
    });
    source.close();
    const u = applied[0]![0]!;
    expect(u).toMatchObject({ name: 'claude', namespace: 'shop', api: 'anthropic' });
    expect(u.endpoints.map((e) => [e.auth!.header, e.auth!.value.reveal()])).toEqual([
      ['x-api-key', 'sk-ant-fixture'],
      ['authorization', 'Bearer gw-fixture'],
    ]);
    expect(u.breaker).toMatchObject({ openDurationMs: 90_000, halfOpenRamp: [2, 8] });
  });
});

describe('invalid fixtures', () => {
  it.each(files('invalid'))('%s is rejected at the path its expect line names', (file) => {
    const text = read('invalid', file);
    const expected = /^# expect: (\S+)$/m.exec(text)?.[1];
    expect(expected, 'every invalid fixture says where it fails').toBeDefined();
    const docs = parseYamlStream(text, file);
    const violations = docs.flatMap((d) => validateDocument(d));
    expect(violations.length).toBeGreaterThan(0);
    const named = (path: string) => path === expected || path.startsWith(`${expected}[`) || path.startsWith(`${expected}.`);
    expect(named(violations[0]!.path), JSON.stringify(violations)).toBe(true);
  });
});

/** Schema properties that none of `values` sets, as dotted paths (`[]` for "any item"). Maps count as leaves. */
function unusedFields(schema: unknown, values: unknown[], path: string): string[] {
  const s = schema as { type?: string; properties?: Record<string, unknown>; items?: unknown };
  if (s.type === 'object' && s.properties) {
    return Object.entries(s.properties).flatMap(([key, child]) => {
      const present = values.flatMap((v) => (v !== null && typeof v === 'object' && key in v ? [(v as Record<string, unknown>)[key]] : []));
      return present.length === 0 ? [`${path}.${key}`] : unusedFields(child, present, `${path}.${key}`);
    });
  }
  if (s.type === 'array' && s.items) return unusedFields(s.items, values.flatMap((v) => (Array.isArray(v) ? v : [])), `${path}[]`);
  return [];
}
