// The controller's admin server on 127.0.0.1: /readyz names the checks that fail and turns 503
// on shutdown, /livez follows the event loop, /metrics exports the injection counter from the
// start (every result at 0, so rate() works before the first pod).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProbeServer } from '../../../src/controller/probes.ts';
import { silentLogger } from '../../../src/telemetry/log.ts';
import { createControllerMetrics } from '../../../src/telemetry/metrics.ts';

describe('controller probes', () => {
  const metrics = createControllerMetrics();
  const probes = new ProbeServer({ listen: { host: '127.0.0.1', port: 0 }, log: silentLogger, metrics });
  let certificate: string | undefined = 'no webhook serving certificate loaded yet';
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${probes.port}${path}`);
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    probes.addCheck({ name: 'webhook-certificate', check: () => certificate });
    await probes.start();
  });
  afterAll(() => probes.stop());

  it('is unready while a check fails, and says which and why', async () => {
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toEqual({ status: 'unready', checks: ['webhook-certificate'], failing: [{ name: 'webhook-certificate', reason: 'no webhook serving certificate loaded yet' }] });
    certificate = undefined;
    expect((await get('/readyz')).status).toBe(200);
  });

  it('is live while the event loop turns', async () => {
    expect((await get('/livez')).status).toBe(200);
  });

  it('exports every injection result from the start', async () => {
    const { text } = await get('/metrics');
    for (const result of ['injected', 'skipped', 'already_injected', 'error']) {
      expect(text).toContain(`breakwater_injections_total{result="${result}"} 0`);
    }
    expect(text).toContain('breakwater_controller_leader 0');
  });

  it('turns unready on shutdown, whatever the checks say', async () => {
    probes.shutdown();
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text).failing).toEqual([{ name: 'shutdown', reason: 'shutting down' }]);
  });
});
