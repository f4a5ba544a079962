// Test 2 of issue 5: after a scripted mix of successes, 429s, timeouts, a failover and a
// fallback through the real proxy, /metrics shows exactly the expected counts, and the
// breaker_state gauge agrees with /debug/state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, getJson, scrape, series, startStack, type Sample, type Stack } from '../admin/helpers.ts';

function yaml(u: Record<string, string>): string {
  return `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  endpoints:
    - { name: a, url: "${u.a}/v1" }
    - { name: b, url: "${u.b}/v1", priority: 1 }
  breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, rollingWindow: 60s, openDuration: 60s, halfOpenRamp: [1] }
  retry: { maxAttempts: 3, backoff: { initial: 1ms, max: 1ms, jitter: none }, budget: { ratio: 1, minPerSecond: 100 } }
  timeouts: { connect: 2s, firstByte: 300ms, response: 5s, idle: 5s, total: 20s }
  fallbacks:
    - { model: big, chain: [ { model: small } ] }
---
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: tight }
spec:
  endpoints:
    - { name: c1, url: "${u.c}/v1" }
    - { name: c2, url: "${u.c}/v1", priority: 1 }
  retry: { maxAttempts: 3, budget: { ratio: 0, minPerSecond: 0 } }
`;
}

let stack: Stack;
let samples: Sample[];

beforeAll(async () => {
  stack = await startStack({ fakes: ['a', 'b', 'c'], yaml });
  const { a, b, c } = stack.fakes;
  const expectEndpoint = async (model: string, status: number, endpoint?: string) => {
    const r = await chat(stack, 'chat', model);
    expect(r.status).toBe(status);
    if (endpoint) expect(r.headers.get('x-breakwater-endpoint')).toBe(endpoint);
    return r;
  };

  // 1. three plain successes on the primary
  for (let i = 0; i < 3; i++) await expectEndpoint('m', 200, 'a');
  // 2. an endpoint-scoped throttle (529) on the primary: failover to b. (A 429 rate_limit_exceeded
  //    is model-scoped since issue 8: it holds (a, m) and never feeds a's breaker.)
  a!.setFault({ fault: '529', times: 1 });
  await expectEndpoint('m', 200, 'b');
  // 3. the primary hangs past timeouts.firstByte: failover to b
  a!.setFault({ fault: 'hang', times: 1 });
  await expectEndpoint('m', 200, 'b');
  // 4. both endpoints fail the big model: fallback to the small one, served by a
  a!.setFault({ fault: '503', model: 'big', times: 1 });
  b!.setFault({ fault: '503', model: 'big', times: 1 });
  const fallback = await expectEndpoint('big', 200, 'a');
  expect(fallback.headers.get('x-breakwater-fallback-model')).toBe('small');
  // 5. two more 503s on a: its window passes 50% failures (5 of 9) and the breaker opens
  a!.setFault({ fault: '503', times: 2 });
  await expectEndpoint('m', 200, 'b');
  await expectEndpoint('m', 200, 'b');
  // 6. a is open: skipped at no cost, b serves on the first attempt
  const skipped = await expectEndpoint('m', 200, 'b');
  expect(skipped.headers.get('x-breakwater-attempts')).toBe('1');
  // 7. b fails three times in a row: three attempts (two retries), then the provider's error
  b!.setFault({ fault: '503', times: 3 });
  await expectEndpoint('m', 503);
  // 8. a retry budget that earns nothing (ratio 0) and keeps no reserve (minPerSecond 0): the
  //    failover to c2 is free (issue 8: a target this request has not tried), the second try of
  //    c1 finds the budget spent
  c!.setFault({ fault: '503', times: 2 });
  const tight = await chat(stack, 'tight', 'm');
  expect(tight.status).toBe(503);
  samples = await scrape(stack);
});

afterAll(async () => {
  await stack?.close();
});

describe('/metrics after a scripted mix of traffic', () => {
  it('counts requests_total by final outcome', () => {
    expect(series(samples, 'breakwater_requests_total')).toEqual({
      'outcome=ok,upstream=chat': 9,
      'outcome=upstream_error,upstream=chat': 1,
      'outcome=upstream_error,upstream=tight': 1,
    });
    expect(series(samples, 'breakwater_request_duration_seconds_count')).toEqual({ 'upstream=chat': 10, 'upstream=tight': 1 });
  });

  it('counts upstream_attempts_total per endpoint and result', () => {
    expect(series(samples, 'breakwater_upstream_attempts_total')).toEqual({
      'endpoint=a,result=ok,upstream=chat': 4,
      'endpoint=a,result=throttled,upstream=chat': 1,
      'endpoint=a,result=timeout,upstream=chat': 1,
      'endpoint=a,result=server_error,upstream=chat': 3,
      'endpoint=b,result=ok,upstream=chat': 5,
      'endpoint=b,result=server_error,upstream=chat': 4,
      'endpoint=c1,result=server_error,upstream=tight': 1,
      'endpoint=c2,result=server_error,upstream=tight': 1,
    });
  });

  it('counts retries_total by the outcome that caused them, and budget exhaustion', () => {
    expect(series(samples, 'breakwater_retries_total')).toEqual({
      'reason=throttled,upstream=chat': 1,
      'reason=timeout,upstream=chat': 1,
      'reason=server_error,upstream=chat': 6,
      'reason=server_error,upstream=tight': 1,
    });
    // the per-upstream child is bound up front, so a quiet upstream shows an explicit 0 (rate() works from the start)
    expect(series(samples, 'breakwater_retry_budget_exhausted_total')).toEqual({ 'upstream=chat': 0, 'upstream=tight': 1 });
  });

  it('counts fallbacks_total by model pair', () => {
    expect(series(samples, 'breakwater_fallbacks_total')).toEqual({ 'from_model=big,to_model=small,upstream=chat': 1 });
  });

  it('counts breaker_transitions_total: exactly one, a to open', () => {
    expect(series(samples, 'breakwater_breaker_transitions_total')).toEqual({ 'endpoint=a,to=open,upstream=chat': 1 });
  });

  it('reports the breaker_state gauge exactly as /debug/state does', async () => {
    const { body } = await getJson(`${stack.adminUrl}/debug/state`);
    const fromState: Record<string, string> = {};
    for (const u of body.upstreams) for (const e of u.endpoints) fromState[`${u.name}/${e.name}`] = e.breaker.kind;
    expect(fromState).toEqual({ 'chat/a': 'open', 'chat/b': 'closed', 'tight/c1': 'closed', 'tight/c2': 'closed' });

    const now = await scrape(stack);
    const fromGauge: Record<string, string> = {};
    for (const s of now) {
      if (s.name !== 'breakwater_breaker_state') continue;
      const key = `${s.labels.upstream}/${s.labels.endpoint}`;
      if (s.value === 1) {
        expect(fromGauge[key], `two states at 1 for ${key}`).toBeUndefined();
        fromGauge[key] = s.labels.state!;
      } else {
        expect(s.value).toBe(0);
      }
    }
    expect(fromGauge).toEqual(fromState);
    expect(series(now, 'breakwater_upstream_available_endpoints')).toEqual({ 'upstream=chat': 1, 'upstream=tight': 2 });
    expect(series(now, 'breakwater_ready')).toEqual({ '': 1 });
  });

  it('keeps labels low-cardinality: no paths, request ids or unconfigured names', () => {
    const allowed = new Set(['upstream', 'endpoint', 'result', 'outcome', 'reason', 'state', 'to', 'from_model', 'to_model', 'kind', 'source', 'le', 'priority']);
    for (const s of samples) {
      if (s.name.startsWith('breakwater_process_') || s.name.startsWith('breakwater_nodejs_')) continue; // Node's own (process-metrics.ts)
      for (const label of Object.keys(s.labels)) expect(allowed.has(label), `${s.name} has label ${label}`).toBe(true);
      for (const value of Object.values(s.labels)) expect(value).not.toMatch(/\/|[0-9a-f]{8}-[0-9a-f]{4}/);
    }
  });
});
