// YAML text -> plain documents, in time linear in the text: no validation, no TypeBox. The
// sidecar's main thread parses with it (sources/quick.ts), and so does the parse worker
// (parse.ts, which adds the full validator).
import { isScalar, LineCounter, parseAllDocuments, visit, type Document } from 'yaml';
import { ConfigError } from '../errors.ts';

/** The first key that appears twice in one map, with its offset. Linear: one Set per map. */
function duplicateKey(doc: Document): { key: string; offset: number | undefined } | undefined {
  let found: { key: string; offset: number | undefined } | undefined;
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) {
          found = { key, offset: isScalar(pair.key) ? pair.key.range?.[0] : undefined };
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Parses a YAML stream into plain documents. An empty document (a stray or trailing ---) is
 * kept as undefined, so that every message numbers documents as the file does. Duplicate keys
 * are refused here rather than by the yaml library, whose check compares every key with every
 * other (a 40,000-key map took 36 s).
 */
export function parseYamlStream(text: string, fileName: string): unknown[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false, lineCounter: lines });
  const out: unknown[] = [];
  for (const [i, doc] of docs.entries()) {
    const where = `${fileName} document ${i + 1}`;
    const error = doc.errors[0];
    if (error) throw new ConfigError(where, `line ${error.linePos?.[0]?.line ?? '?'}`, error.message.split('\n')[0] ?? 'invalid YAML');
    const duplicate = duplicateKey(doc);
    if (duplicate) {
      const line = duplicate.offset === undefined ? '?' : lines.linePos(duplicate.offset).line;
      throw new ConfigError(where, `line ${line}`, `Map keys must be unique: "${duplicate.key.slice(0, 64)}" appears twice`);
    }
    let value: unknown;
    try {
      value = doc.toJS(); // throws on an unresolved or runaway alias
    } catch (err) {
      throw new ConfigError(where, '(document)', (err as Error).message.split('\n')[0] ?? 'invalid YAML');
    }
    out.push(value === null ? undefined : value);
  }
  return out;
}

/**
 * parseYamlStream, refusing a file without a single document (empty, or only comments): it is
 * what an editor or `>` leaves for a moment mid-write, and applying it would empty the route table.
 */
export function parseNonEmpty(text: string, fileName: string): unknown[] {
  const docs = parseYamlStream(text, fileName);
  if (docs.every((d) => d === undefined)) {
    throw new ConfigError(fileName, '(file)', 'has no LLMUpstream document (empty, or only comments); refused like any invalid config, since a file caught mid-write looks like this');
  }
  return docs;
}
