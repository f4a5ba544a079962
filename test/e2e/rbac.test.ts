// The chart's RBAC (charts/breakwater through helm template) on a real API server: what the
// sidecar's and the controller's identities may and may not do, asked as those identities with
// `kubectl auth can-i` (issue 4, item 9).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane, type Identity } from './harness.ts';
import { applyJson, CONTROLLER_NAMESPACE, secret, setupCluster } from './support/cluster.ts';

const NS = 'perms';

describe('least-privilege RBAC from the chart', () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane();
    await setupCluster(cp, NS, ['openai']);
    await applyJson(cp, [secret(NS, 'openai', { apiKey: 'sk-e2e-perms-1' }), secret(NS, 'unlisted', { apiKey: 'sk-e2e-perms-2' })]);
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await cp?.stop();
  }, 60_000);

  /** `kubectl auth can-i` as the identity itself (its own client certificate). */
  async function canI(as: Identity, ...args: string[]): Promise<boolean> {
    const res = await cp.kubectl(['auth', 'can-i', ...args], { as });
    const answer = res.stdout.trim();
    if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${res.stderr}`);
    return answer === 'yes';
  }

  it.each([
    ['get an unlisted Secret', ['get', 'secrets/unlisted', '-n', NS]],
    ['list Secrets', ['list', 'secrets', '-n', NS]],
    ['watch every Secret', ['watch', 'secrets', '-n', NS]],
    ['write LLMUpstream status (patch)', ['patch', 'llmupstreams.breakwater.dev', '--subresource=status', '-n', NS]],
    ['write LLMUpstream status (update)', ['update', 'llmupstreams.breakwater.dev', '--subresource=status', '-n', NS]],
    ['edit an LLMUpstream', ['patch', 'llmupstreams.breakwater.dev', '-n', NS]],
    ['create an LLMUpstream', ['create', 'llmupstreams.breakwater.dev', '-n', NS]],
    ['delete an LLMUpstream', ['delete', 'llmupstreams.breakwater.dev', '-n', NS]],
    ['read LLMUpstreams in another namespace', ['list', 'llmupstreams.breakwater.dev', '-n', CONTROLLER_NAMESPACE]],
    ['touch the controller Lease', ['update', 'leases.coordination.k8s.io/breakwater-controller', '-n', CONTROLLER_NAMESPACE]],
  ])('the sidecar may not %s', async (_what, args) => {
    expect(await canI('sidecar', ...args)).toBe(false);
  });

  it.each([
    ['get a listed Secret', ['get', 'secrets/openai', '-n', NS]],
    ['watch a listed Secret by name', ['watch', 'secrets/openai', '-n', NS]],
    ['list LLMUpstreams', ['list', 'llmupstreams.breakwater.dev', '-n', NS]],
    ['watch LLMUpstreams', ['watch', 'llmupstreams.breakwater.dev', '-n', NS]],
    ['create Events', ['create', 'events.events.k8s.io', '-n', NS]],
  ])('the sidecar may %s', async (_what, args) => {
    expect(await canI('sidecar', ...args)).toBe(true);
  });

  it('the sidecar is refused when it really tries (not only on paper)', async () => {
    const listed = await cp.kubectl(['get', 'secret', 'openai', '-n', NS, '-o', 'name'], { as: 'sidecar' });
    expect(listed).toMatchObject({ code: 0, stdout: 'secret/openai\n' });
    const unlisted = await cp.kubectl(['get', 'secret', 'unlisted', '-n', NS], { as: 'sidecar' });
    expect(unlisted.code).not.toBe(0);
    expect(unlisted.stderr).toMatch(/forbidden/i);
    const list = await cp.kubectl(['get', 'secrets', '-n', NS], { as: 'sidecar' });
    expect(list.stderr).toMatch(/forbidden/i);
  });

  it.each([
    ['write LLMUpstream status', ['patch', 'llmupstreams.breakwater.dev', '--subresource=status', '-n', NS], true],
    ['watch LLMUpstreams', ['watch', 'llmupstreams.breakwater.dev', '-n', NS], true],
    ['get a listed Secret', ['get', 'secrets/openai', '-n', NS], true],
    ['hold its Lease', ['update', 'leases.coordination.k8s.io/breakwater-controller', '-n', CONTROLLER_NAMESPACE], true],
    ['create its Lease', ['create', 'leases.coordination.k8s.io', '-n', CONTROLLER_NAMESPACE], true],
    ['edit an LLMUpstream spec', ['patch', 'llmupstreams.breakwater.dev', '-n', NS], false],
    ['get an unlisted Secret', ['get', 'secrets/unlisted', '-n', NS], false],
    ['list Secrets', ['list', 'secrets', '-n', NS], false],
    ['update another Lease', ['update', 'leases.coordination.k8s.io/other', '-n', CONTROLLER_NAMESPACE], false],
    ['read its webhook certificate Secret', ['get', 'secrets/breakwater-webhook-tls', '-n', CONTROLLER_NAMESPACE], true],
    ['renew its webhook certificate Secret', ['update', 'secrets/breakwater-webhook-tls', '-n', CONTROLLER_NAMESPACE], true],
    ['create its webhook certificate Secret', ['create', 'secrets', '-n', CONTROLLER_NAMESPACE], true],
    ['read another Secret of its namespace', ['get', 'secrets/other', '-n', CONTROLLER_NAMESPACE], false],
    ['update another Secret of its namespace', ['update', 'secrets/other', '-n', CONTROLLER_NAMESPACE], false],
    ['create Secrets in an app namespace', ['create', 'secrets', '-n', NS], false],
    ['patch its webhook configuration', ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/breakwater-webhook'], true],
    ['patch another webhook configuration', ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/other'], false],
    ['create webhook configurations', ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'], false],
  ] as const)('the controller: %s -> %s', async (_what, args, allowed) => {
    expect(await canI('controller', ...args)).toBe(allowed);
  });
});
