// The injection decision: a pure function of pod + sidecar values, so every case is a plain test.
import { describe, expect, it } from 'vitest';
import { SIDECAR_NAME, sidecarContainer } from '../../../src/cli.ts';
import { injection, parseEnvAnnotation, type ContainerLike, type PodLike } from '../../../src/controller/inject.ts';
import { review } from '../../../src/controller/webhook.ts';
import { sidecarValues } from '../../../src/sidecar.ts';

const sidecar = sidecarContainer(sidecarValues({ image: 'breakwater:test' }));

function pod(opts: { labelled?: boolean; env?: string; containers?: ContainerLike[]; inits?: { name: string }[] } = {}): PodLike {
  return {
    metadata: {
      name: 'app',
      namespace: 'shop',
      labels: opts.labelled === false ? { app: 'shop' } : { app: 'shop', 'breakwater.dev/inject': 'enabled' },
      ...(opts.env === undefined ? {} : { annotations: { 'breakwater.dev/env': opts.env } }),
    },
    spec: { containers: opts.containers ?? [{ name: 'app' }], ...(opts.inits ? { initContainers: opts.inits } : {}) },
  };
}

/** applies the add-only JSON Patch the injector emits */
function apply(p: PodLike, ops: { op: 'add'; path: string; value: unknown }[]): PodLike {
  const doc = structuredClone(p) as Record<string, unknown>;
  for (const op of ops) {
    const parts = op.path.split('/').slice(1);
    const last = parts.pop()!;
    let at: unknown = doc;
    for (const part of parts) at = (at as Record<string, unknown>)[part];
    if (Array.isArray(at)) {
      if (last === '-') at.push(op.value);
      else at.splice(Number(last), 0, op.value);
    } else (at as Record<string, unknown>)[last] = op.value;
  }
  return doc as PodLike;
}

describe('sidecar injection', () => {
  it('adds the sidecar as the first init container of a labelled pod, with restartPolicy Always', () => {
    const { result, patch, warnings } = injection(pod({ inits: [{ name: 'migrate' }] }), sidecar);
    expect(result).toBe('injected');
    expect(warnings).toEqual([]);
    const out = apply(pod({ inits: [{ name: 'migrate' }] }), patch);
    expect(out.spec?.initContainers?.map((c) => c.name)).toEqual([SIDECAR_NAME, 'migrate']);
    expect(out.spec?.initContainers?.[0]).toMatchObject({ restartPolicy: 'Always', image: 'breakwater:test' });
  });

  it('creates the init container list when the pod has none', () => {
    const { patch } = injection(pod(), sidecar);
    expect(patch).toEqual([{ op: 'add', path: '/spec/initContainers', value: [sidecar] }]);
  });

  it('leaves a pod without the label alone', () => {
    expect(injection(pod({ labelled: false, env: 'OPENAI_BASE_URL=openai' }), sidecar)).toEqual({ result: 'skipped', patch: [], warnings: [] });
  });

  it('leaves a pod labelled with another value alone', () => {
    const p = pod();
    p.metadata!.labels!['breakwater.dev/inject'] = 'disabled';
    expect(injection(p, sidecar).result).toBe('skipped');
  });

  it('is idempotent: an injected pod gets an empty patch', () => {
    const first = pod({ env: 'OPENAI_BASE_URL=openai' });
    const once = apply(first, injection(first, sidecar).patch);
    expect(injection(once, sidecar)).toEqual({ result: 'already_injected', patch: [], warnings: [] });
  });

  it('sets each annotated variable on every app container, pointing at the local proxy', () => {
    const p = pod({ env: 'OPENAI_BASE_URL=openai, ANTHROPIC_BASE_URL=claude', containers: [{ name: 'web' }, { name: 'worker', env: [{ name: 'A' }] }] });
    const out = apply(p, injection(p, sidecar).patch);
    for (const c of out.spec!.containers!) {
      expect(c.env).toEqual(expect.arrayContaining([
        { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' },
        { name: 'ANTHROPIC_BASE_URL', value: 'http://127.0.0.1:7878/claude' },
      ]));
    }
    expect(out.spec!.containers![1]!.env![0]).toEqual({ name: 'A' });
  });

  it('keeps a variable the container sets itself and warns', () => {
    const p = pod({ env: 'OPENAI_BASE_URL=openai,ANTHROPIC_BASE_URL=claude', containers: [{ name: 'web', env: [{ name: 'OPENAI_BASE_URL', value: 'https://mine' }] }] });
    const { result, patch, warnings } = injection(p, sidecar);
    expect(result).toBe('injected');
    const env = apply(p, patch).spec!.containers![0]!.env!;
    expect(env).toEqual([{ name: 'OPENAI_BASE_URL', value: 'https://mine' }, { name: 'ANTHROPIC_BASE_URL', value: 'http://127.0.0.1:7878/claude' }]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/container web sets OPENAI_BASE_URL itself/);
  });

  it('follows a custom proxy port', () => {
    const custom = sidecarContainer(sidecarValues({ proxyPort: 9000 }));
    const p = pod({ env: 'OPENAI_BASE_URL=openai' });
    expect(apply(p, injection(p, custom).patch).spec!.containers![0]!.env).toEqual([{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:9000/openai' }]);
  });

  it.each([
    ['OPENAI_BASE_URL', /does not name an LLMUpstream/],
    ['OPENAI_BASE_URL=Open AI', /does not name an LLMUpstream/],
    ['1X=openai', /not an environment variable name/],
    ['A=openai,A=claude', /named twice/],
    [' , ', /empty/],
  ])('a bad annotation (%s) changes no env, warns, and still injects', (value, reason) => {
    const p = pod({ env: value });
    const { result, patch, warnings } = injection(p, sidecar);
    expect(result).toBe('injected');
    expect(patch).toHaveLength(1);
    expect(patch[0]!.path).toBe('/spec/initContainers');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(reason);
  });

  it('parses the annotation into bindings', () => {
    expect(parseEnvAnnotation('OPENAI_BASE_URL=openai,ANTHROPIC_BASE_URL=claude')).toEqual({
      ok: true,
      bindings: [{ variable: 'OPENAI_BASE_URL', upstream: 'openai' }, { variable: 'ANTHROPIC_BASE_URL', upstream: 'claude' }],
    });
  });
});

describe('admission review', () => {
  const request = (object: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object, ...extra } });

  it('answers a labelled pod with its uid, allowed, and a base64 JSON Patch', () => {
    const { response, result } = review(request(pod()), sidecar);
    expect(result).toBe('injected');
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(response.patch!, 'base64').toString())).toEqual(injection(pod(), sidecar).patch);
  });

  it('allows an unlabelled pod without a patch', () => {
    const { response, result } = review(request(pod({ labelled: false })), sidecar);
    expect(result).toBe('skipped');
    expect(response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('allows, with a warning, a request it cannot read, and counts it as an error', () => {
    for (const body of ['{not json', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }), JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} })]) {
      const { response, result } = review(body, sidecar);
      expect(result).toBe('error');
      expect(response.allowed).toBe(true);
      expect(response.patch).toBeUndefined();
      expect(response.warnings?.[0]).toMatch(/could not read the admission request/);
    }
  });

  it('never injects in an excluded namespace, even if the configuration sends it', () => {
    const { response, result } = review(request(pod(), { namespace: 'kube-system' }), sidecar, ['kube-system', 'breakwater-system']);
    expect(result).toBe('skipped');
    expect(response).toEqual({ uid: 'u-1', allowed: true });
    expect(review(request(pod()), sidecar, ['kube-system']).result).toBe('injected');
  });

  it('skips anything but a Pod CREATE', () => {
    expect(review(request(pod(), { operation: 'UPDATE' }), sidecar).result).toBe('skipped');
  });
});
