// spec -> RuntimeConfig for documents nobody has checked yet (the Kubernetes source, the
// controller, tests): validate (TypeBox schema, then the named rules), then lower.ts. The one
// path every unchecked document goes through; the file source validates in its parse worker and
// lowers on the main thread, so a --config sidecar never loads TypeBox there.
import { ConfigError, type AuthResolver } from './errors.ts';
import { lowerConfig, lowerUpstream } from './lower.ts';
import type { UpstreamDocument } from './schema.ts';
import type { RuntimeConfig, UpstreamConfig } from './runtime.ts';
import { validateDocument } from './validate.ts';

export { ConfigError, describeDocument, type AuthResolver, type ConfigErrorReason } from './errors.ts';
export { normalizePath } from './lower.ts';

export function compileUpstream(doc: UpstreamDocument, resolve: AuthResolver, document = `LLMUpstream "${doc.metadata.name}"`): UpstreamConfig {
  const violations = validateDocument(doc);
  if (violations.length > 0) throw new ConfigError(document, violations[0]!.path, violations[0]!.message);
  return lowerUpstream(doc, resolve, document);
}

/** Compiles a whole set of documents; the first bad one rejects the set (last good config keeps serving). */
export function compileConfig(docs: readonly unknown[], resolve: AuthResolver, source: string, generation: number, now = Date.now()): RuntimeConfig {
  return lowerConfig(docs, resolve, source, generation, now, compileUpstream);
}
