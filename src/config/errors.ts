// Why a config cannot be applied, said once for every source: the error every source, the
// parse worker and main.ts share. Free of the validator and the schema runtime, so the sidecar's
// main thread can name a bad config without loading TypeBox.
import type { AuthSpec, UpstreamDocument } from './schema.ts';
import type { Secret } from './runtime.ts';
import { redactUrlsIn } from './url.ts';

/** Why a document could not be applied. `reason` doubles as the Kubernetes condition reason. */
export type ConfigErrorReason = 'Invalid' | 'SecretNotFound' | 'KeyNotFound' | 'Forbidden' | 'Unresolvable';

/**
 * A config that cannot be applied. Its message ends up in logs, Events, status conditions and
 * /debug/state, so any URL in the detail is redacted here, whoever wrote the detail.
 */
export class ConfigError extends Error {
  readonly code = 'BREAKWATER_CONFIG_INVALID';
  readonly reason: ConfigErrorReason;
  readonly document: string;
  readonly path: string;
  readonly detail: string;
  constructor(document: string, path: string, detail: string, reason: ConfigErrorReason = 'Invalid') {
    const safe = redactUrlsIn(detail);
    super(`${document}: ${path}: ${safe}`);
    this.name = 'ConfigError';
    this.document = document;
    this.path = path;
    this.detail = safe;
    this.reason = reason;
  }
}

/** Turns an endpoint's auth spec into the key. Throws ConfigError (never includes the key). */
export type AuthResolver = (auth: AuthSpec, where: { document: string; path: string; namespace: string | undefined }) => Secret;

export function describeDocument(doc: unknown, index: number): string {
  const name = (doc as UpstreamDocument | undefined)?.metadata?.name;
  return typeof name === 'string' ? `document ${index + 1} (LLMUpstream "${name}")` : `document ${index + 1}`;
}
