// The soak in a process of its own (issue 11): the same traffic, upstream and phases of faults
// as soak.test.ts (test/support/soak-traffic.ts) through a real `bin/breakwater proxy --config`
// (the compiled build or the sources, whichever bin/breakwater runs, with its V8 and malloc
// flags), configured from the same upstream definition rendered to YAML, in front of the same
// in-process fakes. Its /metrics is scraped every second during the run: the highest
// breakwater_process_resident_memory_bytes must stay under the sidecar's recommended memory limit
// (the controller's default resources, which the chart and the README repeat), and the answers
// must pass the in-process soak's checks. The peak is printed with every run.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../../src/fake/server.ts';
import { sidecarValues } from '../../src/sidecar.ts';
import { startChildProxy, type ChildProxy } from '../support/child-proxy.ts';
import { startFakes, TEST_KEY, TEST_KEY_ENV, upstreamsYaml } from '../support/rig.ts';
import { checkSoakTally, driveSoak, SOAK_FAKES, SOAK_SECONDS, soakUpstreams } from '../support/soak-traffic.ts';
import { waitFor } from '../support/wait.ts';
import { parseMetrics, series, type Sample } from './admin/helpers.ts';

const RSS = 'breakwater_process_resident_memory_bytes';
const MiB = 1024 * 1024;

/** a Kubernetes memory quantity in bytes (the plain and binary-suffixed forms the defaults use) */
function bytes(quantity: string | number): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(String(quantity));
  if (!m) throw new Error(`not a memory quantity this test reads: ${quantity}`);
  return Number(m[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi'].indexOf(m[2] ?? '');
}

/** the sidecar's recommended memory limit, read where it is defined: the controller's default */
const limitQuantity = sidecarValues(undefined).resources.limits?.memory;
if (limitQuantity === undefined) throw new Error('the sidecar has no default memory limit');
const LIMIT = bytes(limitQuantity);

async function scrape(admin: string): Promise<Sample[]> {
  const res = await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(2_000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

function resident(samples: Sample[]): number {
  const value = samples.find((s) => s.name === RSS)?.value;
  if (value === undefined) throw new Error(`no ${RSS} in /metrics`);
  return value;
}

describe('soak in a bin/breakwater process: resident memory under the recommended limit', () => {
  let fakes: FakeProvider[] = [];
  let child: ChildProxy | undefined;

  beforeAll(async () => {
    fakes = await startFakes(SOAK_FAKES);
    child = await startChildProxy({ yaml: upstreamsYaml(soakUpstreams(fakes)), env: { [TEST_KEY_ENV]: TEST_KEY } });
  });

  afterAll(async () => {
    await child?.stop();
    await Promise.all(fakes.map((f) => f.close()));
  });

  it(
    `runs ${SOAK_SECONDS} s of mixed faults with ${RSS} scraped every second below the sidecar's ${String(limitQuantity)} limit, every answer whole`,
    async () => {
      const proxy = child!;
      const rss: number[] = [];
      const scrapeErrors: string[] = [];
      let running = true;
      const scraper = (async () => {
        while (running) {
          const next = new Promise((r) => setTimeout(r, 1_000));
          try {
            rss.push(resident(await scrape(proxy.admin)));
          } catch (err) {
            scrapeErrors.push((err as Error).message);
          }
          await next;
        }
      })();
      const tally = await driveSoak({ base: proxy.base, fakes }).finally(async () => {
        running = false;
        await scraper;
      });

      // nothing is left in flight in the child
      await waitFor('every attempt to settle', async () => Object.values(series(await scrape(proxy.admin), 'breakwater_inflight_requests')).every((v) => v === 0), 10_000);
      // the metric is the child's own resident memory (bin/breakwater execs node): /proc agrees at the end
      const vmRss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${proxy.pid}/status`, 'utf8'))?.[1]) * 1024;
      const lastRss = resident(await scrape(proxy.admin));

      const peak = Math.max(...rss);
      const report = `peak RSS ${(peak / MiB).toFixed(1)} MiB over ${rss.length} scrapes (limit ${String(limitQuantity)}); ${tally.sent} requests, ${tally.ok} ok, ${tally.errors} errors, ${tally.abandoned} abandoned`;
      console.log(`soak-process: ${report}`);

      checkSoakTally(tally);
      // the admin server answered through the run: about one scrape a second
      expect(rss.length, `scrapes: ${scrapeErrors.join('; ')}`).toBeGreaterThanOrEqual(Math.max(1, Math.floor(SOAK_SECONDS / 2)));
      expect(lastRss / vmRss, `${RSS} ${lastRss} vs /proc VmRSS ${vmRss}`).toBeGreaterThan(0.8);
      expect(lastRss / vmRss, `${RSS} ${lastRss} vs /proc VmRSS ${vmRss}`).toBeLessThan(1.25);
      expect(peak, report).toBeLessThan(LIMIT);
    },
    (SOAK_SECONDS + 60) * 1000,
  );
});
