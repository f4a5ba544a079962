// LLMUpstream status, with one writer: the Lease holder. The verdicts come from the same
// compile path the sidecars run (validateDocument, the named rules, the Secret resolver), so
// Accepted says whether a sidecar can apply the spec, and ResolvedRefs whether every Secret
// and key it names can be read. Messages name fields and Secrets, never a key's value.
import { compileUpstream, ConfigError, type AuthResolver, type ConfigErrorReason } from '../config/compile.ts';
import type { Condition, UpstreamStatus } from '../config/schema.ts';
import { toDocument, type UpstreamObject } from '../config/sources/kubernetes.ts';
import { paths, type KubeClient } from '../kube/client.ts';

export type ConditionType = 'Accepted' | 'ResolvedRefs';
export type Reason = 'Valid' | ConfigErrorReason;

interface Verdict {
  ok: boolean;
  reason: Reason;
  message: string;
}

const VALID: Verdict = { ok: true, reason: 'Valid', message: '' };

function verdictOf(err: ConfigError): Verdict {
  return { ok: false, reason: err.reason, message: `${err.path}: ${err.detail}`.slice(0, 1024) };
}

/** Every secretRef, each tried on its own: the first that fails decides ResolvedRefs. */
function resolvedRefs(obj: UpstreamObject, resolve: AuthResolver): Verdict {
  const doc = toDocument(obj);
  const endpoints = Array.isArray(doc.spec?.endpoints) ? doc.spec.endpoints : [];
  let count = 0;
  for (const [i, e] of endpoints.entries()) {
    if (!e?.auth?.secretRef) continue;
    count++;
    try {
      resolve(e.auth, { document: `LLMUpstream "${doc.metadata.name}"`, path: `spec.endpoints[${i}].auth`, namespace: doc.metadata.namespace });
    } catch (err) {
      if (err instanceof ConfigError) return verdictOf(err);
      throw err;
    }
  }
  return { ...VALID, message: count === 0 ? 'no Secret references' : `${count} Secret reference${count === 1 ? '' : 's'} resolved` };
}

/**
 * The status this object should have. Throws SecretPendingError while a Secret it names has
 * not been read yet (no verdict: try again).
 */
export function desiredStatus(obj: UpstreamObject, resolve: AuthResolver, previous: UpstreamStatus | undefined, now = new Date()): UpstreamStatus {
  const generation = obj.metadata?.generation ?? 0;
  let accepted: Verdict;
  try {
    compileUpstream(toDocument(obj), resolve);
    accepted = { ...VALID, message: 'the sidecars can apply this spec' };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    accepted = verdictOf(err);
  }
  const refs = resolvedRefs(obj, resolve);
  const endpoints = (obj.spec as { endpoints?: unknown } | undefined)?.endpoints;
  const condition = (type: ConditionType, v: Verdict): Condition => {
    const status = v.ok ? 'True' : 'False';
    const before = previous?.conditions?.find((c) => c.type === type);
    return {
      type,
      status,
      reason: v.reason,
      message: v.message,
      observedGeneration: generation,
      lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
  };
  return {
    observedGeneration: generation,
    endpoints: Array.isArray(endpoints) ? endpoints.length : 0,
    conditions: [condition('Accepted', accepted), condition('ResolvedRefs', refs)],
  };
}

/** Equal apart from lastTransitionTime (which only moves when a status flips). */
export function sameStatus(a: UpstreamStatus | undefined, b: UpstreamStatus): boolean {
  if (!a || a.observedGeneration !== b.observedGeneration || a.endpoints !== b.endpoints) return false;
  const key = (c: Condition) => `${c.type}|${c.status}|${c.reason}|${c.message}|${c.observedGeneration}`;
  const as = (a.conditions ?? []).map(key).sort().join('\n');
  const bs = (b.conditions ?? []).map(key).sort().join('\n');
  return as === bs;
}

/**
 * Writes `status` (a merge patch of the status subresource). The object's resourceVersion is a
 * precondition: if it moved since it was read, the API server answers 409 and the sync retries
 * on fresh data. Call it only right after checking the lease (fencing).
 */
export async function patchStatus(client: KubeClient, obj: UpstreamObject, status: UpstreamStatus, fieldManager: string): Promise<void> {
  await client.request('PATCH', paths.upstreamStatus(obj.metadata!.namespace!, obj.metadata!.name!), {
    query: { fieldManager },
    contentType: 'application/merge-patch+json',
    body: { metadata: { resourceVersion: obj.metadata?.resourceVersion }, status },
  });
}
