// The sidecar injection values: exactly the Helm chart's `sidecar:` block, read by the
// controller from --injection-config. One TypeBox schema gives the type, the defaults and the
// check; a bad file stops the controller at start with the field's path, never at the first
// admission request.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import { DURATION_PATTERN } from './config/schema.ts';
import { pointerToPath } from './config/validate.ts';

const Quantity = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Number({ minimum: 0 })]);
const ResourceList = Type.Record(Type.String({ minLength: 1, maxLength: 253 }), Quantity, { maxProperties: 16 });

/** core/v1 EnvVar: a literal value or a reference (valueFrom is passed through as written). */
export const EnvVarSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$', minLength: 1, maxLength: 256 }),
    value: Type.Optional(Type.String({ maxLength: 32_768 })),
    valueFrom: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const SidecarValuesSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 512, default: 'localhost/breakwater:0.1.0' }),
    imagePullPolicy: Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')], { default: 'IfNotPresent' }),
    resources: Type.Object(
      { requests: Type.Optional(ResourceList), limits: Type.Optional(ResourceList) },
      { additionalProperties: false, default: { requests: { cpu: '25m', memory: '128Mi' }, limits: { memory: '256Mi' } } },
    ),
    readiness: Type.Union([Type.Literal('breakers'), Type.Literal('local')], { default: 'breakers' }),
    unreadyAfter: Type.String({ pattern: DURATION_PATTERN, maxLength: 32, default: '10s' }),
    drain: Type.String({ pattern: DURATION_PATTERN, maxLength: 32, default: '30s' }),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    env: Type.Array(EnvVarSchema, { maxItems: 64, default: [] }),
    proxyPort: Type.Integer({ minimum: 1, maximum: 65535, default: 7878 }),
    adminPort: Type.Integer({ minimum: 1, maximum: 65535, default: 7879 }),
  },
  { additionalProperties: false },
);

export type SidecarValues = Static<typeof SidecarValuesSchema>;
export type EnvVar = Static<typeof EnvVarSchema>;

/** A bad --injection-config: names the file and the field. */
export class SidecarValuesError extends Error {
  readonly code = 'BREAKWATER_SIDECAR_VALUES';
  constructor(where: string, path: string, message: string) {
    super(`${where}: ${path}: ${message}`);
    this.name = 'SidecarValuesError';
  }
}

/** Checks values (the chart's `sidecar:` block, any field optional) and fills the defaults. */
export function sidecarValues(input: unknown, where = 'sidecar values'): SidecarValues {
  const raw = input ?? {};
  const withDefaults = Value.Default(SidecarValuesSchema, structuredClone(raw));
  const error = Value.Errors(SidecarValuesSchema, withDefaults).First();
  if (error) {
    const allowed = (error.schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const).filter((v) => v !== undefined) ?? [];
    throw new SidecarValuesError(where, pointerToPath(error.path) || '(document)', allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : error.message);
  }
  const values = withDefaults as SidecarValues;
  if (values.proxyPort === values.adminPort) throw new SidecarValuesError(where, 'adminPort', 'must differ from proxyPort');
  return values;
}

/** Reads --injection-config (YAML). */
export function loadSidecarValues(file: string): SidecarValues {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SidecarValuesError(file, '(file)', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 0 });
  } catch (err) {
    throw new SidecarValuesError(file, '(yaml)', (err as Error).message.split('\n')[0] ?? 'not YAML');
  }
  return sidecarValues(doc, file);
}
