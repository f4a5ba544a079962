// Two controller replicas and one Lease: only the holder writes status; freeze the holder past
// its lease, the other takes over, and the resumed one writes nothing more. Each replica has its
// own field manager, so the objects' managedFields say who wrote what (issue 4, item 8).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_TIMEOUT_MS, startControlPlane, type ControlPlane } from './harness.ts';
import { startController, type Child } from './support/breakwater.ts';
import { applyJson, CONTROLLER_NAMESPACE, getUpstream, kubectlOk, llmUpstream, setupCluster, type UpstreamStatusView } from './support/cluster.ts';
import { sleep, waitUntil } from './support/wait.ts';

const NS = 'lease';
const LEASE_ARGS = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'];

describe('controller replicas with Lease fencing', () => {
  let cp: ControlPlane;
  let a: Child;
  let b: Child;

  const holder = async () => (await cp.kubectl(['get', 'lease', 'breakwater-controller', '-n', CONTROLLER_NAMESPACE, '-o', 'jsonpath={.spec.holderIdentity}'])).stdout;
  const statusWriters = (v: UpstreamStatusView) => v.managedFields.filter((f) => f.subresource === 'status');
  const spec = (priority: number) => ({ endpoints: [{ name: 'primary', url: 'https://api.openai.com/v1', priority }] });
  const observed = (generation: number) => async () => (await getUpstream(cp, NS, 'one')).status?.observedGeneration === generation;
  const written = (c: Child, since = 0) => c.lines().filter((l) => l.msg === 'status written' && Date.parse(String(l.time)) >= since);
  /** status writes a replica tried, whatever came of them (optimistic concurrency may refuse a stale one) */
  const attempted = (c: Child, since: number) =>
    c.lines().filter((l) => Date.parse(String(l.time)) >= since && (l.msg === 'status written' || String(l.err ?? '').startsWith('PATCH')));

  beforeAll(async () => {
    cp = await startControlPlane();
    await setupCluster(cp, NS, []);
    a = await startController(cp, NS, { name: 'controller-a', identity: 'replica-a', fieldManager: 'ctl-a', args: LEASE_ARGS });
    await waitUntil('replica-a to hold the lease', async () => (await holder()) === 'replica-a', 15_000);
    b = await startController(cp, NS, { name: 'controller-b', identity: 'replica-b', fieldManager: 'ctl-b', args: LEASE_ARGS });
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    a?.resume();
    b?.resume();
    await a?.stop();
    await b?.stop();
    await cp?.stop();
  }, 60_000);

  it('only the Lease holder writes status', async () => {
    await applyJson(cp, [llmUpstream(NS, 'one', spec(0))]);
    await waitUntil('status for generation 1', observed(1), 15_000);
    await sleep(2_000); // give replica-b every chance to (wrongly) write too
    const view = await getUpstream(cp, NS, 'one');
    expect(statusWriters(view).map((f) => f.manager)).toEqual(['ctl-a']);
    expect(view.status?.conditions?.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(written(a)).toHaveLength(1);
    expect(written(b)).toEqual([]);
    expect(await holder()).toBe('replica-a');
  });

  it('hands over when the holder freezes past its lease; the resumed replica writes nothing more', async () => {
    const frozenAt = Date.now();
    a.pause();
    await waitUntil('replica-b to take the lease', async () => (await holder()) === 'replica-b', 15_000);
    const tookOverAfter = Date.now() - frozenAt;
    // b waits until it has seen the lease unchanged for the lease duration (4 s), measured from
    // a's last renewal (at most the retry period, 1 s, before the freeze)
    expect(tookOverAfter).toBeGreaterThanOrEqual(2_500);

    await applyJson(cp, [llmUpstream(NS, 'one', spec(1))]);
    await waitUntil('replica-b to write status for generation 2', observed(2), 15_000);
    expect(statusWriters(await getUpstream(cp, NS, 'one')).map((f) => f.manager)).toContain('ctl-b');

    // Make a write look necessary to the old holder: freeze b too and clear the status, then
    // resume a. Its cache fills with the cleared status while it still believes it leads; only
    // the fencing check (the lease renewed less than renewDeadline ago) keeps it from writing.
    b.pause();
    await kubectlOk(cp, ['patch', 'llmupstream', 'one', '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":null}']);
    await waitUntil('the status to be cleared', async () => (await getUpstream(cp, NS, 'one')).status === undefined, 5_000);
    const resumedAt = Date.now();
    a.resume();
    await sleep(2_000); // shorter than the lease duration as a observes it: b's lease stands
    expect((await getUpstream(cp, NS, 'one')).status, 'the resumed replica wrote status without holding the lease').toBeUndefined();
    expect(attempted(a, resumedAt), 'the resumed replica tried to write status').toEqual([]);
    await waitUntil('replica-a to notice it lost the lease', async () => a.lines().some((l) => l.msg === 'lease lost: no more status writes'), 10_000);

    b.resume(); // b renews its own lease and repairs the status
    await waitUntil('replica-b to write generation 2 again', observed(2), 15_000);
    await applyJson(cp, [llmUpstream(NS, 'one', spec(2))]);
    await waitUntil('status for generation 3', observed(3), 15_000);
    await sleep(3_000);

    const view = await getUpstream(cp, NS, 'one');
    expect(await holder()).toBe('replica-b');
    expect(attempted(a, resumedAt), 'replica-a tried to write status after it was resumed').toEqual([]);
    for (const entry of view.managedFields.filter((f) => f.manager === 'ctl-a')) {
      expect(Date.parse(entry.time), `ctl-a's managedFields entry was written after the freeze: ${JSON.stringify(entry)}`).toBeLessThan(frozenAt);
    }
    expect(statusWriters(view).map((f) => f.manager)).toContain('ctl-b');
    expect(written(b, resumedAt).length).toBeGreaterThanOrEqual(2);

    // and nobody keeps writing: the object stands still
    const rv = view.resourceVersion;
    await sleep(3_000);
    expect((await getUpstream(cp, NS, 'one')).resourceVersion).toBe(rv);
    const lease = JSON.parse(await kubectlOk(cp, ['get', 'lease', 'breakwater-controller', '-n', CONTROLLER_NAMESPACE, '-o', 'json'])) as { spec: { leaseTransitions: number } };
    expect(lease.spec.leaseTransitions).toBe(1);
  }, 90_000);
});
