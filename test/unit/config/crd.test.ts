// The committed CRD is what hack/gen-crd.ts generates from schema.ts and rules.ts (so `make test`
// fails when someone changes either and forgets `make crd`), and it is a structural schema with a
// bound on every number, string, list and map, and every rule's CEL at its location.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildCrd, CHART_CRD_PATH, CRD_PATH, renderCrd, schemaAt, toStructural } from '../../../hack/gen-crd.ts';
import { RULES } from '../../../src/config/rules.ts';
import { Type } from '@sinclair/typebox';

type Node = Record<string, unknown>;

interface Version {
  name: string;
  served: boolean;
  storage: boolean;
  subresources: { status?: object };
  additionalPrinterColumns: { name: string; type: string; jsonPath: string; priority?: number }[];
  schema: { openAPIV3Schema: Node };
}

const crd = buildCrd() as { metadata: { name: string }; spec: { group: string; scope: string; names: Record<string, unknown>; versions: Version[] } };
const version = crd.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;

/** every schema node, with its path */
function walk(node: Node, path: string, visit: (node: Node, path: string) => void): void {
  visit(node, path);
  for (const [name, sub] of Object.entries((node.properties as Record<string, Node> | undefined) ?? {})) walk(sub, path ? `${path}.${name}` : name, visit);
  if (node.items) walk(node.items as Node, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties as Node, `${path}{}`, visit);
}

describe('crds/llmupstreams.breakwater.dev.yaml', () => {
  it('is up to date with src/config/schema.ts and src/config/rules.ts (run `make crd`)', () => {
    expect(readFileSync(CRD_PATH, 'utf8'), 'the committed CRD is stale: run `make crd` and commit it').toBe(renderCrd());
  });

  it('is copied byte for byte into the chart (charts/breakwater/crds/; run `make crd`)', () => {
    expect(readFileSync(CHART_CRD_PATH, 'utf8'), 'the chart\'s CRD differs from crds/: run `make crd` and commit both').toBe(readFileSync(CRD_PATH, 'utf8'));
  });

  it('parses back to the generated object', () => {
    expect(parse(readFileSync(CRD_PATH, 'utf8'))).toEqual(JSON.parse(JSON.stringify(crd)));
  });

  it('names the resource as DESIGN.md section 3 does', () => {
    expect(crd.metadata.name).toBe('llmupstreams.breakwater.dev');
    expect(crd.spec.group).toBe('breakwater.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'LLMUpstream', plural: 'llmupstreams', shortNames: ['llmu'] });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
    expect(version.subresources.status).toEqual({});
  });

  it('has the printer columns Endpoints, Required, Accepted and Age', () => {
    const shown = version.additionalPrinterColumns.filter((c) => c.priority === undefined);
    expect(shown.map((c) => c.name)).toEqual(['Endpoints', 'Required', 'Accepted', 'Age']);
    expect(shown.map((c) => c.jsonPath)).toEqual([
      '.status.endpoints',
      '.spec.required',
      '.status.conditions[?(@.type=="Accepted")].status',
      '.metadata.creationTimestamp',
    ]);
  });

  it('is structural: a type everywhere, no JSON Schema the API server refuses', () => {
    walk(root, '', (node, path) => {
      expect(node.type, `${path} has no type`).toBeTypeOf('string');
      for (const banned of ['anyOf', 'oneOf', 'allOf', 'not', 'const', 'patternProperties', '$id', '$ref']) {
        expect(node, `${path} has ${banned}`).not.toHaveProperty(banned);
      }
      expect(node.additionalProperties === false, `${path} has additionalProperties: false`).toBe(false);
    });
  });

  it('bounds every number, string, list and map under spec and status', () => {
    for (const top of ['spec', 'status']) {
      walk((root.properties as Record<string, Node>)[top]!, top, (node, path) => {
        if (node.type === 'integer' || node.type === 'number') {
          expect(node, `${path} needs a minimum`).toHaveProperty('minimum');
          expect(node, `${path} needs a maximum`).toHaveProperty('maximum');
        }
        if (node.type === 'string' && node.enum === undefined) expect(node, `${path} needs a maxLength`).toHaveProperty('maxLength');
        if (node.type === 'array') expect(node, `${path} needs maxItems`).toHaveProperty('maxItems');
        if (node.type === 'object' && node.additionalProperties) expect(node, `${path} needs maxProperties`).toHaveProperty('maxProperties');
      });
    }
  });

  it('turns records into additionalProperties with the value bounds kept', () => {
    const models = schemaAt(root, 'spec.endpoints[].models');
    expect(models).toMatchObject({ type: 'object', maxProperties: 64, additionalProperties: { type: 'string', maxLength: 4096 } });
  });

  it('turns unions of literals into enums', () => {
    expect(schemaAt(root, 'spec.api')).toMatchObject({ type: 'string', enum: ['openai', 'anthropic'] });
    expect((schemaAt(root, 'spec.breaker.failOn').items as Node).enum).toEqual(['throttled', 'server_error', 'timeout', 'connect', 'invalid_response']);
  });

  it('puts every named rule\'s CEL and message at its location, once', () => {
    const placed: { rule: string; message: string }[] = [];
    walk(root, '', (node) => placed.push(...((node['x-kubernetes-validations'] as { rule: string; message: string }[] | undefined) ?? [])));
    expect(placed).toHaveLength(RULES.length);
    for (const rule of RULES) {
      const validations = schemaAt(root, rule.at)['x-kubernetes-validations'] as { rule: string; message: string; fieldPath?: string }[];
      expect(validations, rule.name).toContainEqual({ rule: rule.cel, message: rule.message, ...(rule.fieldPath ? { fieldPath: rule.fieldPath } : {}) });
    }
  });

  it('validates the route prefix (metadata.name) as the file source does', () => {
    expect(schemaAt(root, 'metadata.name')).toMatchObject({ type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
  });

  it('refuses a schema keyword it cannot translate, rather than dropping it', () => {
    expect(() => toStructural(Type.Object({ x: Type.Union([Type.String(), Type.Number()]) }) as unknown as Node)).toThrow(/only unions of literals/);
    expect(() => toStructural({ type: 'string', contentEncoding: 'base64' })).toThrow(/contentEncoding/);
    expect(() => schemaAt(root, 'spec.nope')).toThrow(/no property "nope"/);
  });
});
