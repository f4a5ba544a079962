// Secrets an LLMUpstream names but Breakwater cannot use: missing, without the key, or outside
// the RBAC list. The sidecar rejects them locally (an Event on the resource; the last good
// version keeps serving); the controller writes ResolvedRefs=False with the reason; no secret
// value appears in Events, status or logs (issue 4, item 6).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { startController, startSidecar, type Child, type Sidecar } from './support/breakwater.ts';
import { applyJson, condition, eventsFor, getUpstream, kubectlOk, llmUpstream, secret, setupCluster } from './support/cluster.ts';
import { chat } from './support/traffic.ts';
import { waitUntil } from './support/wait.ts';

const NS = 'refs';
// Breakwater may read these (RBAC resourceNames); "other" exists but is not on the list.
const READABLE = ['openai', 'absent', 'nokey'];
const VALUES = {
  openai: 'sk-e2e-refs-openai-7f3a',
  nokeyOther: 'sk-e2e-refs-nokey-other-91c2',
  forbidden: 'sk-e2e-refs-forbidden-5d8e',
};

describe('Secret references that cannot be resolved', () => {
  let cp: ControlPlane;
  let fake: FakeProvider;
  let sidecar: Sidecar;
  let controller: Child;
  const endpoint = (secretName: string) => ({ name: 'primary', url: `${fake.url}/v1`, auth: { secretRef: { name: secretName, key: 'apiKey' } } });

  beforeAll(async () => {
    cp = await startControlPlane();
    fake = await startFake({ name: 'refs' });
    await setupCluster(cp, NS, READABLE);
    await applyJson(cp, [
      secret(NS, 'openai', { apiKey: VALUES.openai }),
      secret(NS, 'nokey', { otherKey: VALUES.nokeyOther }),
      secret(NS, 'other', { apiKey: VALUES.forbidden }),
    ]);
    sidecar = await startSidecar(cp, NS);
    controller = await startController(cp, NS);
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await sidecar?.stop();
    await controller?.stop();
    await fake?.close();
    await cp?.stop();
  }, 60_000);

  it.each([
    ['missing', 'absent', 'SecretNotFound'],
    ['forbidden', 'other', 'Forbidden'],
    ['nokey', 'nokey', 'KeyNotFound'],
  ] as const)('%s Secret: an Event from the sidecar and ResolvedRefs=False from the controller', async (name, secretName, reason) => {
    await applyJson(cp, [llmUpstream(NS, name, { endpoints: [endpoint(secretName)] })]);

    await waitUntil(`a ${reason} Event on ${name}`, async () => (await eventsFor(cp, NS, name)).some((e) => e.reason === reason), 15_000);
    const event = (await eventsFor(cp, NS, name)).find((e) => e.reason === reason)!;
    expect(event.type).toBe('Warning');
    expect(event.reportingController).toBe('breakwater.dev/sidecar');
    expect(event.note).toContain(secretName);
    expect(event.note).toContain('spec.endpoints[0].auth.secretRef');

    await waitUntil(`ResolvedRefs=False/${reason} on ${name}`, async () => condition(await getUpstream(cp, NS, name), 'ResolvedRefs')?.reason === reason, 15_000);
    const view = await getUpstream(cp, NS, name);
    expect(condition(view, 'ResolvedRefs')).toMatchObject({ status: 'False', reason, observedGeneration: view.generation });
    expect(condition(view, 'Accepted')).toMatchObject({ status: 'False', reason });
    expect(view.status?.observedGeneration).toBe(view.generation);

    // rejected locally: no route (it never had a good version)
    expect((await chat(sidecar.base, name)).status).toBe(404);
  });

  it('keeps the last good version serving when an edit names a missing Secret, and applies it once the Secret exists', async () => {
    await applyJson(cp, [llmUpstream(NS, 'good', { endpoints: [endpoint('openai')] })]);
    await waitUntil('good to serve', async () => (await chat(sidecar.base, 'good')).ok, 10_000);
    await waitUntil('ResolvedRefs=True on good', async () => condition(await getUpstream(cp, NS, 'good'), 'ResolvedRefs')?.status === 'True', 15_000);

    await applyJson(cp, [llmUpstream(NS, 'good', { endpoints: [endpoint('absent')] })]);
    await waitUntil('a SecretNotFound Event on good', async () => (await eventsFor(cp, NS, 'good')).some((e) => e.reason === 'SecretNotFound'), 15_000);
    await waitUntil('ResolvedRefs=False on good', async () => condition(await getUpstream(cp, NS, 'good'), 'ResolvedRefs')?.reason === 'SecretNotFound', 15_000);
    for (let i = 0; i < 3; i++) expect((await chat(sidecar.base, 'good')).ok).toBe(true);
    expect(fake.stats().recent.at(-1)?.headers.authorization).toBe(`Bearer ${VALUES.openai}`);
    const note = (await eventsFor(cp, NS, 'good')).find((e) => e.reason === 'SecretNotFound')!.note;
    expect(note).toMatch(/last good version keeps serving/);

    const lateKey = 'sk-e2e-refs-late-3b6f';
    await applyJson(cp, [secret(NS, 'absent', { apiKey: lateKey })]);
    await waitUntil('the late Secret to be applied', async () => {
      await chat(sidecar.base, 'good');
      return fake.stats().recent.at(-1)?.headers.authorization === `Bearer ${lateKey}`;
    }, 15_000);
    await waitUntil('ResolvedRefs=True again', async () => condition(await getUpstream(cp, NS, 'good'), 'ResolvedRefs')?.status === 'True', 15_000);
    // and the previously missing one resolves too
    await waitUntil('missing to serve', async () => (await chat(sidecar.base, 'missing')).ok, 15_000);
  });

  it('writes no secret value into Events, status or logs', async () => {
    const events = await kubectlOk(cp, ['get', 'events.events.k8s.io', '-n', NS, '-o', 'json']);
    const coreEvents = await kubectlOk(cp, ['get', 'events', '-n', NS, '-o', 'json']);
    const upstreams = await kubectlOk(cp, ['get', 'llmupstreams', '-n', NS, '-o', 'json']);
    const places = { events, coreEvents, upstreams, sidecarLog: sidecar.log(), controllerLog: controller.log() };
    expect(places.events).toContain('SecretNotFound'); // the haystack is real
    for (const [where, text] of Object.entries(places)) {
      for (const value of [...Object.values(VALUES), 'sk-e2e-refs-late-3b6f']) {
        expect(text.includes(value), `${value} appears in ${where}`).toBe(false);
        expect(text.includes(Buffer.from(value).toString('base64')), `${value} (base64) appears in ${where}`).toBe(false);
      }
    }
  });

  it('sidecars never write status: every status field belongs to the controller', async () => {
    for (const name of ['missing', 'forbidden', 'nokey', 'good']) {
      const view = await getUpstream(cp, NS, name);
      const statusManagers = view.managedFields.filter((f) => f.subresource === 'status').map((f) => f.manager);
      expect(statusManagers, name).toEqual(['breakwater-controller']);
    }
  });
});
