// What the breaker and the retry loop learn from each outcome kind.
import { describe, expect, it } from 'vitest';
import { OUTCOME_KINDS, type ChargeableOutcome } from '../../../src/config/schema.ts';
import { breakerVerdict, describeOutcome, isRetryable, type Outcome } from '../../../src/proxy/outcome.ts';

const ONE_OF_EACH: Outcome[] = [
  { kind: 'ok' },
  { kind: 'client_fault', status: 400 },
  { kind: 'throttled', status: 429, scope: 'model', retryAfterMs: 1000 },
  { kind: 'account', status: 401, reason: 'invalid_api_key' },
  { kind: 'server_error', status: 503, retryAfterMs: undefined },
  { kind: 'timeout', phase: 'firstByte' },
  { kind: 'connect', code: 'ECONNREFUSED' },
  { kind: 'invalid_response', reason: 'empty choices' },
  { kind: 'cancelled', reason: 'client_disconnected' },
];
const ALL = new Set<ChargeableOutcome>(OUTCOME_KINDS);
const byKind = (kind: Outcome['kind']) => ONE_OF_EACH.find((o) => o.kind === kind)!;

describe('breakerVerdict', () => {
  it.each([
    ['ok', 'success'],
    ['client_fault', 'success'],
    ['throttled', 'failure'],
    ['server_error', 'failure'],
    ['timeout', 'failure'],
    ['connect', 'failure'],
    ['invalid_response', 'failure'],
    ['account', 'ignore'],
    ['cancelled', 'ignore'],
  ] as const)('with the default failOn, %s -> %s', (kind, verdict) => {
    expect(breakerVerdict(byKind(kind), ALL)).toBe(verdict);
  });

  it('a chargeable kind left out of failOn counts as a success', () => {
    const failOn = new Set<ChargeableOutcome>(['server_error', 'timeout', 'connect']);
    expect(breakerVerdict(byKind('throttled'), failOn)).toBe('success');
    expect(breakerVerdict(byKind('invalid_response'), failOn)).toBe('success');
    expect(breakerVerdict(byKind('server_error'), failOn)).toBe('failure');
    expect(breakerVerdict({ kind: 'timeout', phase: 'connect' }, failOn)).toBe('failure');
  });

  it('with an empty failOn nothing trips the breaker, and client faults, accounts and cancellations keep their verdicts', () => {
    const none = new Set<ChargeableOutcome>();
    expect(ONE_OF_EACH.map((o) => breakerVerdict(o, none))).toEqual(['success', 'success', 'success', 'ignore', 'success', 'success', 'success', 'success', 'ignore']);
  });

  it('the app cancelling or its deadline passing is recorded as nothing', () => {
    expect(breakerVerdict({ kind: 'cancelled', reason: 'deadline' }, ALL)).toBe('ignore');
    expect(breakerVerdict({ kind: 'cancelled', reason: 'client_disconnected' }, ALL)).toBe('ignore');
  });
});

describe('isRetryable', () => {
  it.each([
    ['ok', false],
    ['client_fault', false],
    ['cancelled', false],
    ['throttled', true],
    ['server_error', true],
    ['timeout', true],
    ['connect', true],
    ['invalid_response', true],
    ['account', true],
  ] as const)('%s -> %s', (kind, retryable) => {
    expect(isRetryable(byKind(kind))).toBe(retryable);
  });
});

describe('describeOutcome', () => {
  it('names each outcome in a short phrase for logs', () => {
    expect(ONE_OF_EACH.map(describeOutcome)).toEqual([
      'ok',
      'client fault 400',
      'throttled 429 (model)',
      'account error 401: invalid_api_key',
      'server error 503',
      'timeout (firstByte)',
      'connection failed (ECONNREFUSED)',
      'invalid response: empty choices',
      'cancelled (client_disconnected)',
    ]);
  });
});
