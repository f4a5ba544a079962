// Backoff, provider waits and deadlines: pure functions of their inputs.
import { describe, expect, it } from 'vitest';
import { backoffMs, deadlineFor, retryAfterMs } from '../../../src/proxy/retry.ts';
import { seeded } from '../../support/random.ts';

const BACKOFF = { initialMs: 200, maxMs: 5000 };


describe('backoffMs', () => {
  it('without jitter waits the ceiling: initial, doubling, capped at max', () => {
    const none = { ...BACKOFF, jitter: 'none' as const };
    expect([1, 2, 3, 4, 5, 6, 7, 50, 5000].map((n) => backoffMs(n, none))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
  });

  it('with full jitter draws uniformly from [0, ceiling)', () => {
    const full = { ...BACKOFF, jitter: 'full' as const };
    expect(backoffMs(1, full, () => 0)).toBe(0);
    expect(backoffMs(1, full, () => 0.5)).toBe(100);
    expect(backoffMs(3, full, () => 0.25)).toBe(200);
    expect(backoffMs(1, full, () => 0.999_999_9)).toBe(199);
  });

  it('with full jitter never reaches the ceiling, and never exceeds max', () => {
    const full = { ...BACKOFF, jitter: 'full' as const };
    const almostOne = () => 1 - Number.EPSILON;
    for (let n = 1; n <= 64; n++) {
      const ceiling = Math.min(5000, 200 * 2 ** (n - 1));
      expect(backoffMs(n, full, almostOne)).toBe(ceiling - 1);
    }
    expect(backoffMs(1000, full, almostOne)).toBeLessThan(5000);
  });

  it('spreads over the whole range with a uniform random source', () => {
    const full = { ...BACKOFF, jitter: 'full' as const };
    const random = seeded(42);
    const draws = Array.from({ length: 2000 }, () => backoffMs(2, full, random));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(400);
    expect(Math.min(...draws)).toBeLessThan(40);
    expect(Math.max(...draws)).toBeGreaterThan(360);
  });
});

describe('retryAfterMs', () => {
  const NOW = Date.parse('2026-03-01T12:00:00Z');

  it.each([
    ['retry-after seconds', { 'retry-after': '5' }, 5000],
    ['retry-after zero', { 'retry-after': '0' }, 0],
    ['retry-after fractional seconds', { 'retry-after': '1.5' }, 1500],
    ['retry-after as an HTTP date', { 'retry-after': 'Sun, 01 Mar 2026 12:00:30 GMT' }, 30_000],
    ['retry-after as an HTTP date in the past', { 'retry-after': 'Sun, 01 Mar 2026 11:59:00 GMT' }, 0],
    ['retry-after-ms', { 'retry-after-ms': '250' }, 250],
    ['retry-after-ms rounded up', { 'retry-after-ms': '250.2' }, 251],
    ['x-ms-retry-after-ms (Azure)', { 'x-ms-retry-after-ms': '1200' }, 1200],
    ['retry-after-ms before retry-after', { 'retry-after-ms': '250', 'retry-after': '10' }, 250],
    ['retry-after-ms before x-ms-retry-after-ms', { 'retry-after-ms': '250', 'x-ms-retry-after-ms': '900' }, 250],
    ['retry-after when retry-after-ms is garbage', { 'retry-after-ms': 'soon', 'retry-after': '2' }, 2000],
    ['retry-after when retry-after-ms is negative', { 'retry-after-ms': '-5', 'retry-after': '2' }, 2000],
    ['the first of repeated headers', { 'retry-after': ['3', '9'] }, 3000],
  ])('reads %s', (_label, headers, ms) => {
    expect(retryAfterMs(headers, NOW)).toBe(ms);
  });

  it.each([
    ['no header', {}],
    ['garbage', { 'retry-after': 'soon' }],
    ['a negative number', { 'retry-after': '-1' }],
    ['an unparseable date', { 'retry-after': 'Sun, 99 Foo 2026' }],
    ['Infinity', { 'retry-after': 'Infinity' }],
    ['garbage milliseconds alone', { 'retry-after-ms': 'abc' }],
    ['an undefined value', { 'retry-after': undefined }],
  ])('returns undefined for %s', (_label, headers) => {
    expect(retryAfterMs(headers, NOW)).toBeUndefined();
  });
});

describe('deadlineFor', () => {
  const START = 1_000_000;
  const TOTAL = 600_000;

  it('is start + timeouts.total without headers', () => {
    expect(deadlineFor(START, TOTAL, {})).toBe(START + TOTAL);
  });

  it.each([
    ['5000', 5000],
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['2m', 120_000],
    [' 45s ', 45_000],
  ])('reads x-breakwater-timeout %j as %i ms', (value, ms) => {
    expect(deadlineFor(START, TOTAL, { 'x-breakwater-timeout': value })).toBe(START + ms);
  });

  it('reads x-breakwater-timeout as a compound Go duration (1m30s)', () => {
    expect(deadlineFor(START, TOTAL, { 'x-breakwater-timeout': '1m30s' })).toBe(START + 90_000);
  });

  it.each(['soon', '-5s', '5x', ''])('ignores an x-breakwater-timeout of %j', (value) => {
    expect(deadlineFor(START, TOTAL, { 'x-breakwater-timeout': value })).toBe(START + TOTAL);
  });

  // issue 8 (defect 15): Breakwater answers a margin before the SDK's own timer fires
  it.each([
    ['600', 600_000 - 2_000],
    ['2.5', 2500 - 250],
    ['5', 5_000 - 500],
    ['30', 30_000 - 2_000],
  ])('reads x-stainless-timeout %j as seconds, and answers a margin before it', (value, ms) => {
    expect(deadlineFor(START, TOTAL, { 'x-stainless-timeout': value })).toBe(START + ms);
  });

  it.each(['0', '-1', 'abc', ''])('ignores an x-stainless-timeout of %j', (value) => {
    expect(deadlineFor(START, TOTAL, { 'x-stainless-timeout': value })).toBe(START + TOTAL);
  });

  it('never extends past timeouts.total', () => {
    expect(deadlineFor(START, 10_000, { 'x-breakwater-timeout': '60s', 'x-stainless-timeout': '600' })).toBe(START + 10_000);
  });

  it('takes the sooner of the three', () => {
    expect(deadlineFor(START, TOTAL, { 'x-breakwater-timeout': '20s', 'x-stainless-timeout': '30' })).toBe(START + 20_000);
    expect(deadlineFor(START, TOTAL, { 'x-breakwater-timeout': '20s', 'x-stainless-timeout': '10' })).toBe(START + 10_000 - 1_000);
    expect(deadlineFor(START, 5000, { 'x-breakwater-timeout': '20s', 'x-stainless-timeout': '10' })).toBe(START + 5000);
  });
});
