// One validator for every source: structure (TypeBox, the same schema the CRD is generated
// from) and then the named cross-field rules. Returns violations, never throws.
import { Value } from '@sinclair/typebox/value';
import { DocumentSchema, SpecSchema, type UpstreamDocument } from './schema.ts';
import { checkRules, type Violation } from './rules.ts';

/** /spec/endpoints/0/url -> spec.endpoints[0].url */
export function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .filter((part) => part !== '')
    .map((part) => (/^[0-9]+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('')
    .replace(/^\./, '');
}

function structural(schema: typeof DocumentSchema | typeof SpecSchema, value: unknown, prefix: string): Violation[] {
  const out: Violation[] = [];
  for (const error of Value.Errors(schema, value)) {
    const path = pointerToPath(error.path) || '(document)';
    out.push({ path: prefix ? `${prefix}.${path}` : path, message: error.message });
    if (out.length >= 5) break;
  }
  return out;
}

export function validateSpec(spec: unknown): Violation[] {
  const errors = structural(SpecSchema, spec, 'spec');
  return errors.length > 0 ? errors : checkRules(spec as UpstreamDocument['spec']);
}

export function validateDocument(doc: unknown): Violation[] {
  const errors = structural(DocumentSchema, doc, '');
  return errors.length > 0 ? errors : checkRules((doc as UpstreamDocument).spec);
}
