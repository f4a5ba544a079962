// LLMUpstream status computation: the same compile path the sidecars run decides Accepted, each
// Secret reference decides ResolvedRefs, and a status flips its lastTransitionTime only when a
// condition changes.
import { describe, expect, it } from 'vitest';
import { ConfigError, type AuthResolver } from '../../../src/config/compile.ts';
import { Secret } from '../../../src/config/runtime.ts';
import type { UpstreamObject } from '../../../src/config/sources/kubernetes.ts';
import { desiredStatus, sameStatus } from '../../../src/controller/status.ts';

const T1 = new Date('2026-01-01T00:00:00.000Z');
const T2 = new Date('2026-01-01T00:05:00.000Z');

function upstream(spec: Record<string, unknown>, generation = 1): UpstreamObject {
  return { apiVersion: 'breakwater.dev/v1alpha1', kind: 'LLMUpstream', metadata: { name: 'openai', namespace: 'shop', generation }, spec } as UpstreamObject;
}

const withSecret = { endpoints: [{ name: 'primary', url: 'https://api.openai.com/v1', auth: { secretRef: { name: 'openai', key: 'apiKey' } } }] };
const found: AuthResolver = () => new Secret('sk-test');
const missing: AuthResolver = (_auth, where) => {
  throw new ConfigError(where.document, `${where.path}.secretRef`, 'Secret "openai" not found in namespace "shop"', 'SecretNotFound');
};

describe('status computation', () => {
  it('accepts a valid spec whose Secrets resolve', () => {
    const status = desiredStatus(upstream(withSecret, 3), found, undefined, T1);
    expect(status).toEqual({
      observedGeneration: 3,
      endpoints: 1,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Valid', message: 'the sidecars can apply this spec', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z' },
        { type: 'ResolvedRefs', status: 'True', reason: 'Valid', message: '1 Secret reference resolved', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z' },
      ],
    });
  });

  it('refuses an invalid spec with the field in the message', () => {
    const status = desiredStatus(upstream({ endpoints: [{ name: 'a', url: 'http://api.example.com/v1' }] }), found, undefined, T1);
    const accepted = status.conditions?.find((c) => c.type === 'Accepted');
    expect(accepted).toMatchObject({ status: 'False', reason: 'Invalid', message: expect.stringContaining('spec.endpoints[0].url') });
  });

  it('a missing Secret makes both conditions False with its reason', () => {
    const status = desiredStatus(upstream(withSecret), missing, undefined, T1);
    expect(status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual(['Accepted=False/SecretNotFound', 'ResolvedRefs=False/SecretNotFound']);
  });

  it('keeps lastTransitionTime while a condition keeps its status, and moves it on a flip', () => {
    const first = desiredStatus(upstream(withSecret), found, undefined, T1);
    const same = desiredStatus(upstream(withSecret), found, first, T2);
    expect(same.conditions?.map((c) => c.lastTransitionTime)).toEqual(['2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z']);
    const flipped = desiredStatus(upstream(withSecret), missing, first, T2);
    expect(flipped.conditions?.map((c) => c.lastTransitionTime)).toEqual(['2026-01-01T00:05:00Z', '2026-01-01T00:05:00Z']);
  });

  it('compares statuses apart from lastTransitionTime', () => {
    const a = desiredStatus(upstream(withSecret), found, undefined, T1);
    const b = desiredStatus(upstream(withSecret), found, undefined, T2);
    expect(sameStatus(a, b)).toBe(true);
    expect(sameStatus(undefined, b)).toBe(false);
    expect(sameStatus(a, desiredStatus(upstream(withSecret, 2), found, undefined, T1))).toBe(false);
    expect(sameStatus(a, desiredStatus(upstream(withSecret), missing, undefined, T1))).toBe(false);
  });
});
