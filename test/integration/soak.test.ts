// The soak of issue 10, in process: every traffic-shaping feature on at once under rotating
// provider faults, with streaming, cached, prioritised and abandoned requests mixed (the traffic,
// the upstream and the phases: test/support/soak-traffic.ts, shared with soak-process.test.ts).
// It checks what a long run would show: no request hangs, every answer is whole (a stream ends,
// an error has Breakwater's request id and x-should-retry: false), most requests are served, and
// after a forced GC the heap and every in-flight count are back where they were. The proxy runs
// in vitest's own process here, so its heap can be read; its resident memory is vitest's, and
// soak-process.test.ts reads that from a real bin/breakwater instead.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type Rig } from '../support/rig.ts';
import { checkSoakTally, driveSoak, SOAK_FAKES, SOAK_SECONDS, soakUpstreams } from '../support/soak-traffic.ts';
import { waitFor } from '../support/wait.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('soak: every traffic-shaping feature on, under rotating faults', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ fakes: SOAK_FAKES, upstreams: soakUpstreams, logLevel: 'warn' });
  });

  afterAll(async () => {
    await rig?.close();
  });

  it(
    `runs ${SOAK_SECONDS} s of mixed faults: no request hangs, every answer is whole, and memory and in-flight counts return to where they were`,
    async () => {
      let heapWarm = 0;
      const tally = await driveSoak({
        base: rig.base,
        fakes: rig.fakes,
        onPhase: (p) => {
          if (p !== 2) return;
          gc();
          heapWarm = process.memoryUsage().heapUsed;
        },
      });

      // nothing is left in flight: no attempt, no waiter, no buffered body
      const snapshot = rig.proxy.runtime.snapshot!;
      await waitFor('every attempt to settle', () => [...snapshot.upstreams.values()].every((u) => u.endpoints.every((e) => e.inflight === 0)), 10_000);
      await waitFor('the proxy to have no request in flight', () => rig.proxy.server.inflight === 0, 10_000);
      gc();
      const heapEnd = process.memoryUsage().heapUsed;

      checkSoakTally(tally);
      // flat: what a long run adds after warm-up stays within a few MiB (the cache is bounded at 256 KiB)
      expect((heapEnd - heapWarm) / 1024 / 1024, `heap ${heapWarm} -> ${heapEnd}`).toBeLessThan(16);
    },
    (SOAK_SECONDS + 60) * 1000,
  );
});
