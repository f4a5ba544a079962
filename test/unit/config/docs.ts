// Builders for LLMUpstream documents in config tests. Each call returns a fresh object.
import { Secret } from '../../../src/config/runtime.ts';
import type { AuthResolver } from '../../../src/config/compile.ts';
import type { Spec, UpstreamDocument } from '../../../src/config/schema.ts';

export const API_VERSION = 'breakwater.dev/v1alpha1';

export function minimalSpec(): Spec {
  return { endpoints: [{ name: 'primary', url: 'https://api.openai.com/v1' }] };
}

/** A document around `spec` (default: the minimal one), named `name`. */
export function doc(spec: Record<string, unknown> = minimalSpec() as Record<string, unknown>, name = 'chat'): UpstreamDocument {
  return { apiVersion: API_VERSION, kind: 'LLMUpstream', metadata: { name }, spec: spec as Spec };
}

/** The minimal spec with `patch` merged over its top level. */
export function withSpec(patch: Record<string, unknown>): UpstreamDocument {
  return doc({ ...minimalSpec(), ...patch });
}

/** Freezes an object graph so that any write into it throws (ES modules run in strict mode). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/** An auth resolver that hands out a fixed key for every source, recording what it was asked. */
export function fakeAuth(key = 'sk-test-0123456789'): AuthResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = ((auth, where) => {
    calls.push(`${where.path}:${auth.secretRef ? 'secretRef' : auth.env ? 'env' : 'file'}`);
    return new Secret(key);
  }) as AuthResolver & { calls: string[] };
  resolve.calls = calls;
  return resolve;
}

/** A resolver for documents without auth: any call is a test failure. */
export const noAuth: AuthResolver = () => {
  throw new Error('no auth expected in this document');
};
