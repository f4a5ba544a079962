// Config file text -> validated LLMUpstream documents: YAML parsing (yaml-stream.ts) and the
// structural and cross-field validation, in time linear in the text. Pure (no I/O, no keys); the
// file source runs it in a worker thread (parse-worker.ts), so that a large edit does not stall
// the data plane and the TypeBox runtime never loads into the sidecar's own heap. Compile (auth,
// defaults) stays with the caller.
import { ConfigError, describeDocument } from '../errors.ts';
import { validateDocument } from '../validate.ts';
import { parseNonEmpty } from './yaml-stream.ts';

export { parseYamlStream } from './yaml-stream.ts';

/**
 * The documents of a config file, each valid (throws the first ConfigError). A file without
 * a single document (empty, or only comments) is refused: it is what an editor or `>` leaves
 * for a moment mid-write, and applying it would empty the route table.
 */
export function readConfigDocuments(text: string, fileName: string): unknown[] {
  const docs = parseNonEmpty(text, fileName);
  docs.forEach((doc, i) => {
    if (doc === undefined) return;
    const violation = validateDocument(doc)[0];
    if (violation) throw new ConfigError(describeDocument(doc, i), violation.path, violation.message);
  });
  return docs;
}
