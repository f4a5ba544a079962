// Issue 8: input that used to exhaust the sidecar or take an upstream down, refused or
// contained: the buffered request bytes of all requests together have a limit, and a key
// that may not use one path does not take the endpoint out of rotation.
import { afterEach, describe, expect, it } from 'vitest';
import { chatBody, post, primaryAndSecondary, startRig, waitFor, type Rig } from '../support/rig.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('defect 3(c): buffered request bodies have a process-wide budget', () => {
  it('past the budget a request gets 503 overloaded with Retry-After and x-should-retry: false; the budget is released when requests finish', async () => {
    const mib = 1024 * 1024;
    rig = await startRig({
      fakes: 1,
      maxBufferedBytes: 5 * mib,
      upstreams: ([a]) => [{ name: 'openai', endpoints: [{ name: 'only', url: `${a!.url}/v1` }] }],
    });
    // the provider takes its time, so the first two bodies are still held when the third arrives
    rig.fakes[0]!.setFault({ fault: 'none', delayMs: 3_000 });
    const big = chatBody('gpt-4.1', { padding: 'x'.repeat(2 * mib) });
    const first = post(`${rig.base}/openai/chat/completions`, big);
    const second = post(`${rig.base}/openai/chat/completions`, big);
    await waitFor(() => rig!.fakes[0]!.stats().requests === 2, 'both bodies forwarded');
    const third = await post(`${rig.base}/openai/chat/completions`, big);
    expect(third.status).toBe(503);
    expect(third.headers.get('x-breakwater-error')).toBe('overloaded');
    expect(third.headers.get('retry-after')).toBe('1');
    expect(third.headers.get('x-should-retry')).toBe('false');
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(rig.fakes[0]!.stats().requests).toBe(2);
    // released: the same body fits again
    rig.fakes[0]!.setFault(null);
    expect((await post(`${rig.base}/openai/chat/completions`, big)).status).toBe(200);
  });
});

describe('defect 2: one out-of-scope request does not take the upstream down', () => {
  it('a 403 on a non-inference path is passed through and holds nothing: the next chat call is served by the same endpoint', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', required: true, endpoints: primaryAndSecondary(a!, b!) }] });
    const [primary, secondary] = rig.fakes;
    primary!.setFault({ fault: 'status:403', path: '/v1/organization/projects', times: 1 });
    const refused = await fetch(`${rig.base}/openai/organization/projects`);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-breakwater-endpoint')).toBe('primary');
    expect(secondary!.stats().requests).toBe(0); // no failover for the app's own fault
    const chat = await post(`${rig.base}/openai/chat/completions`, chatBody());
    expect(chat.status).toBe(200);
    expect(chat.headers.get('x-breakwater-endpoint')).toBe('primary');
    expect(rig.endpoint('openai', 'primary').describe(Date.now()).hold).toBeNull();
  });

  it('a 401 on an inference path still holds the endpoint (a key that cannot serve anyone)', async () => {
    rig = await startRig({ fakes: 2, upstreams: ([a, b]) => [{ name: 'openai', endpoints: primaryAndSecondary(a!, b!) }] });
    rig.fakes[0]!.setFault({ fault: 'status:401', times: 1 });
    expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).headers.get('x-breakwater-endpoint')).toBe('secondary');
    expect((await post(`${rig.base}/openai/chat/completions`, chatBody())).headers.get('x-breakwater-endpoint')).toBe('secondary');
    expect(rig.endpoint('openai', 'primary').describe(Date.now()).hold).not.toBeNull();
  });
});
