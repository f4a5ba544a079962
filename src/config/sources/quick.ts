// The main thread's own look at a small config file: the YAML (yaml-stream.ts), the generated
// structural check (check.generated.ts: TypeBox's compiled check as plain code) and the named
// cross-field rules, in document order as validate.ts does them. The TypeBox runtime is never
// loaded: a document the structural check refuses returns `undefined`, and the caller asks the
// parse worker (parse-thread.ts), whose full validator names the field and the reason.
import { checkDocument } from '../check.generated.ts';
import { ConfigError, describeDocument } from '../errors.ts';
import { checkRules } from '../rules.ts';
import type { UpstreamDocument } from '../schema.ts';
import { parseNonEmpty } from './yaml-stream.ts';

/** Valid documents, or undefined when one needs the full validator to say why it is not. Throws ConfigError. */
export function quickDocuments(text: string, fileName: string): unknown[] | undefined {
  const docs = parseNonEmpty(text, fileName);
  for (const [i, doc] of docs.entries()) {
    if (doc === undefined) continue;
    if (!checkDocument(doc)) return undefined;
    const violation = checkRules((doc as UpstreamDocument).spec)[0];
    if (violation) throw new ConfigError(describeDocument(doc, i), violation.path, violation.message);
  }
  return docs;
}
