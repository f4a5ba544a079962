// Generates crds/llmupstreams.breakwater.dev.yaml from src/config/schema.ts (structure and
// bounds) and src/config/rules.ts (each named rule's CEL, placed at its `at` location).
//
//   node hack/gen-crd.ts           # writes the file, and the same bytes into the chart
//   node hack/gen-crd.ts --check   # exits 1 when either committed copy is stale
//
// The chart (charts/breakwater/crds/) carries a byte-identical copy: Helm installs CRDs only
// from a chart's own crds/ directory, and a symlink would not survive `helm package`.
//
// TypeBox emits JSON Schema; a CRD wants a *structural* OpenAPI v3 schema. The conversion:
//   - Type.Record (patternProperties)        -> additionalProperties: <value schema>
//   - additionalProperties: false            -> dropped (the API server prunes unknown fields)
//   - unions of literals (anyOf of const)    -> enum
//   - every bound (min/max, lengths, items, properties, pattern) is kept
// Any keyword this file does not know is an error, so a schema change cannot vanish silently.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { API_GROUP, API_VERSION, KIND, MetadataSchema, PLURAL, SpecSchema, StatusSchema } from '../src/config/schema.ts';
import { RULES, type CrossFieldRule } from '../src/config/rules.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CRD_PATH = join(REPO, 'crds', `${PLURAL}.${API_GROUP}.yaml`);
export const CHART_CRD_PATH = join(REPO, 'charts', 'breakwater', 'crds', `${PLURAL}.${API_GROUP}.yaml`);

export const SHORT_NAME = 'llmu';

type JsonSchema = Record<string, unknown>;

/** Keywords copied as they are. */
const KEEP = new Set([
  'type', 'description', 'format', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties',
  'required', 'enum', 'default', 'nullable',
]);

function fail(path: string, message: string): never {
  throw new Error(`gen-crd: ${path || '(root)'}: ${message}`);
}

/** A union of literals becomes one enum of their common type. */
function literalUnion(variants: JsonSchema[], path: string): JsonSchema {
  const values = variants.map((v, i) => ('const' in v ? v.const : fail(`${path}.anyOf[${i}]`, 'only unions of literals can become a CRD schema')));
  const types = new Set(variants.map((v) => v.type));
  if (types.size !== 1) fail(path, `a union of literals of mixed types (${[...types].join(', ')})`);
  return { type: [...types][0], enum: values };
}

export function toStructural(schema: JsonSchema, path = ''): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (KEEP.has(key) || key.startsWith('x-kubernetes-')) {
      out[key] = value;
    } else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([name, sub]) => [name, toStructural(sub, path ? `${path}.${name}` : name)]),
      );
    } else if (key === 'items') {
      out.items = toStructural(value as JsonSchema, `${path}[]`);
    } else if (key === 'patternProperties') {
      const patterns = Object.values(value as Record<string, JsonSchema>);
      if (patterns.length !== 1) fail(path, 'a record must have exactly one key pattern');
      out.additionalProperties = toStructural(patterns[0]!, `${path}{}`);
    } else if (key === 'additionalProperties') {
      if (value !== false) fail(path, 'additionalProperties other than false is not supported (use Type.Record)');
    } else if (key === 'anyOf') {
      Object.assign(out, literalUnion(value as JsonSchema[], path));
    } else if (key === 'const') {
      out.enum = [value];
    } else {
      fail(path, `keyword "${key}" has no CRD translation in hack/gen-crd.ts`);
    }
  }
  if (out.type === undefined) fail(path, 'a structural schema needs a type at every level');
  return ordered(out);
}

/** type and description first, nested schemas last: easier to read in the YAML. */
const LATE = ['required', 'properties', 'items', 'additionalProperties'];
function ordered(node: JsonSchema): JsonSchema {
  const keys = Object.keys(node);
  const early = ['type', 'description'].filter((k) => k in node);
  const late = LATE.filter((k) => k in node);
  const rest = keys.filter((k) => !early.includes(k) && !late.includes(k));
  return Object.fromEntries([...early, ...rest, ...late].map((k) => [k, node[k]]));
}

/** Walks `spec.endpoints[].auth` through properties/items to the schema node it names. */
export function schemaAt(root: JsonSchema, at: string): JsonSchema {
  let node = root;
  for (const part of at.split('.')) {
    const m = /^([A-Za-z0-9_]+)((?:\[\])*)$/.exec(part);
    if (!m) fail(at, `cannot read location part "${part}"`);
    const props = node.properties as Record<string, JsonSchema> | undefined;
    const next = props?.[m[1]!];
    if (!next) fail(at, `no property "${m[1]}" in the schema`);
    node = next;
    for (let i = 0; i < m[2]!.length / 2; i++) {
      if (!node.items) fail(at, `"${m[1]}" is not a list`);
      node = node.items as JsonSchema;
    }
  }
  return node;
}

function placeRules(root: JsonSchema, rules: readonly CrossFieldRule[]): void {
  const seen = new Set<string>();
  for (const rule of rules) {
    if (seen.has(rule.name)) fail(rule.at, `rule "${rule.name}" is defined twice`);
    seen.add(rule.name);
    const node = schemaAt(root, rule.at);
    const list = (node['x-kubernetes-validations'] ??= []) as Record<string, string>[];
    const validation: Record<string, string> = { rule: rule.cel, message: rule.message };
    if (rule.fieldPath !== undefined) validation.fieldPath = rule.fieldPath;
    list.push(validation);
  }
}

export function buildCrd(rules: readonly CrossFieldRule[] = RULES): JsonSchema {
  const metadataName = toStructural(MetadataSchema.properties.name as unknown as JsonSchema, 'metadata.name');
  const openAPIV3Schema: JsonSchema = {
    type: 'object',
    description: `${KIND}: the resilience policy for one LLM provider route (requests to /<metadata.name>/... on the Breakwater sidecar).`,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object', properties: { name: metadataName } },
      spec: toStructural(SpecSchema as unknown as JsonSchema, 'spec'),
      status: toStructural(StatusSchema as unknown as JsonSchema, 'status'),
    },
  };
  placeRules(openAPIV3Schema, rules);
  const accepted = '.status.conditions[?(@.type=="Accepted")]';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: KIND.toLowerCase(), shortNames: [SHORT_NAME], categories: ['breakwater'] },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          // Endpoints: JSONPath cannot count .spec.endpoints, so the controller writes the count
          // to .status.endpoints along with the conditions (empty until a controller has seen it).
          additionalPrinterColumns: [
            { name: 'Endpoints', type: 'integer', jsonPath: '.status.endpoints', description: 'endpoints in the observed spec' },
            { name: 'Required', type: 'boolean', jsonPath: '.spec.required', description: 'counts for the sidecar\'s readiness' },
            { name: 'Accepted', type: 'string', jsonPath: `${accepted}.status`, description: 'whether the sidecars can apply this spec' },
            { name: 'Reason', type: 'string', jsonPath: `${accepted}.reason`, priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export function renderCrd(rules: readonly CrossFieldRule[] = RULES): string {
  const header = [
    '# Generated by hack/gen-crd.ts from src/config/schema.ts and src/config/rules.ts. Do not edit:',
    '# change the schema or a rule and run `make crd`.',
  ].join('\n');
  return `${header}\n${stringify(buildCrd(rules), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}

function main(argv: string[]): void {
  const text = renderCrd();
  if (argv.includes('--check')) {
    let stale = false;
    for (const path of [CRD_PATH, CHART_CRD_PATH]) {
      let committed = '';
      try {
        committed = readFileSync(path, 'utf8');
      } catch {
        // missing counts as stale
      }
      if (committed !== text) {
        console.error(`${path} is stale: run \`make crd\` and commit the result`);
        stale = true;
      }
    }
    if (stale) process.exit(1);
    return;
  }
  for (const path of [CRD_PATH, CHART_CRD_PATH]) {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
