// The generated structural check (src/config/check.generated.ts) is TypeBox's own compiled
// check of DocumentSchema: committed fresh, and giving Value.Check's verdict on every fixture and
// on documents broken one field at a time. The sidecar's main thread relies on it to accept a
// config without loading TypeBox; a document it refuses is explained by validate.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { generateCheck, CHECK_PATH } from '../../../hack/gen-check.ts';
import { checkDocument } from '../../../src/config/check.generated.ts';
import { DocumentSchema } from '../../../src/config/schema.ts';
import { quickDocuments } from '../../../src/config/sources/quick.ts';
import { readConfigDocuments } from '../../../src/config/sources/parse.ts';
import { parseYamlStream } from '../../../src/config/sources/yaml-stream.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const fixtures = (['valid', 'invalid'] as const).flatMap((kind) =>
  readdirSync(join(FIXTURES, kind))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => [`${kind}/${f}`, readFileSync(join(FIXTURES, kind, f), 'utf8')] as const),
);

const minimal = () => ({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'LLMUpstream', metadata: { name: 'a' }, spec: { endpoints: [{ name: 'e', url: 'https://api.example.com/v1' }] } });

describe('the generated structural check', () => {
  it('is what hack/gen-check.ts generates from the schema today (make crd)', () => {
    expect(readFileSync(CHECK_PATH, 'utf8')).toBe(generateCheck());
  });

  it.each(fixtures)('agrees with Value.Check on %s', (_name, text) => {
    for (const doc of parseYamlStream(text, 'f.yaml')) {
      if (doc !== undefined) expect(checkDocument(doc)).toBe(Value.Check(DocumentSchema, doc));
    }
  });

  it('agrees with Value.Check on documents broken one field at a time', () => {
    const broken: ((d: ReturnType<typeof minimal>) => unknown)[] = [
      (d) => ({ ...d, kind: 'Other' }),
      (d) => ({ ...d, metadata: { name: 'Not_A_Name' } }),
      (d) => ({ ...d, spec: { ...d.spec, endpoints: [] } }),
      (d) => ({ ...d, spec: { ...d.spec, surprise: true } }),
      (d) => ({ ...d, spec: { ...d.spec, timeouts: { total: 'soon' } } }),
      (d) => ({ ...d, spec: { ...d.spec, breaker: { errorThresholdPercentage: 101 } } }),
      (d) => ({ ...d, spec: { ...d.spec, endpoints: [{ name: 'e', url: 'ftp://x' }] } }),
      (d) => ({ ...d, spec: { ...d.spec, endpoints: [{ name: 'e', url: 'https://x', weight: 'heavy' }] } }),
      () => null,
      () => [],
    ];
    expect(checkDocument(minimal())).toBe(true);
    for (const b of broken) {
      const doc = b(minimal());
      expect(checkDocument(doc), JSON.stringify(doc)).toBe(false);
      expect(Value.Check(DocumentSchema, doc)).toBe(false);
    }
  });

  it('gives the file source the same verdicts as the full validator: the documents, a rule\'s error, or "ask the worker"', () => {
    for (const [name, text] of fixtures) {
      let full: unknown[] | Error;
      try {
        full = readConfigDocuments(text, 'f.yaml');
      } catch (err) {
        full = err as Error;
      }
      let quick: unknown[] | undefined | Error;
      try {
        quick = quickDocuments(text, 'f.yaml');
      } catch (err) {
        quick = err as Error;
      }
      if (quick === undefined) expect(full, name).toBeInstanceOf(Error); // structural: the worker explains it
      else if (quick instanceof Error) expect((full as Error).message, name).toBe(quick.message);
      else expect(quick, name).toEqual(full);
    }
  });
});
