// Issue 3, test 7: a hot reload under traffic fails no request, keeps an open breaker open
// (a changed threshold seeds the new breaker with the old state) and sends nothing to a
// removed address after the swap.
import { afterEach, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { chatBody, post, startRig, waitFor, type Rig, type UpstreamDef } from '../support/rig.ts';

let rig: Rig | undefined;
let extra: FakeProvider | undefined;
afterEach(async () => {
  await rig?.close();
  await extra?.close();
  rig = undefined;
});

function config(a: string, b: string, threshold: number): UpstreamDef[] {
  return [
    {
      name: 'openai',
      endpoints: [
        { name: 'a', url: `${a}/v1` },
        { name: 'b', url: `${b}/v1`, priority: 1 },
      ],
      breaker: { volumeThreshold: 3, openDuration: '60s', errorThresholdPercentage: threshold },
      retry: { budget: { ratio: 1, minPerSecond: 100 } },
    },
  ];
}

describe('hot reload', () => {
  it('swaps config under traffic without failing a request; A stays open; B\'s old address gets nothing after the swap', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => config(a!.url, b!.url, 50) });
    const [fakeA, oldB] = rig.fakes;
    extra = await startFake({ name: 'new-b' });
    fakeA!.setFault({ fault: '503' });
    for (let i = 0; i < 4; i++) await post(`${rig.base}/openai/chat/completions`, chatBody());
    const breakerBefore = rig.endpoint('openai', 'a').breaker;
    expect(breakerBefore.state.kind).toBe('open');
    const openUntil = (breakerBefore.state as { until: number }).until;

    let stop = false;
    const statuses: number[] = [];
    const traffic = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const streaming = statuses.length % 3 === 0;
        const r = await post(`${rig!.base}/openai/chat/completions`, chatBody('gpt-4.1', streaming ? { stream: true } : {}));
        statuses.push(r.status);
        if (streaming) expect(r.text).toContain('[DONE]');
      }
    });
    await waitFor(() => statuses.length > 20, 'traffic before the swap');
    const generation = rig.proxy.runtime.snapshot!.generation;
    rig.writeConfig(config(fakeA!.url, extra.url, 60));
    await rig.waitForGeneration(generation);
    // requests already sent to the old address may still be counted as they land; after this, none may arrive
    await new Promise((r) => setTimeout(r, 100));
    const oldBAfterSwap = oldB!.stats().requests;
    const newBBefore = extra.stats().requests;
    await waitFor(() => extra!.stats().requests > newBBefore + 20, 'traffic after the swap');
    stop = true;
    await Promise.all(traffic);

    expect(statuses.length).toBeGreaterThan(40);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(oldB!.stats().requests).toBe(oldBAfterSwap);
    const breakerAfter = rig.endpoint('openai', 'a').breaker;
    expect(breakerAfter).not.toBe(breakerBefore); // a new threshold means a new breaker...
    expect(breakerAfter.config.errorThresholdPercentage).toBe(60);
    expect(breakerAfter.state.kind).toBe('open'); // ...seeded with the old state
    expect((breakerAfter.state as { until: number }).until).toBe(openUntil);
    expect(fakeA!.stats().byFault.none ?? 0).toBe(0);
  });
});
