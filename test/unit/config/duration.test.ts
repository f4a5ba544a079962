import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../../src/config/duration.ts';
import { DURATION_PATTERN } from '../../../src/config/schema.ts';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['0s', 0],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['2h45m10s500ms', 2 * 3_600_000 + 45 * 60_000 + 10_000 + 500],
    ['90s', 90_000],
    ['1ms', 1],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', '1.5s', '1d', ' 30s', '30s ', '30 s', '-1s', 'ms', '30S', 'ten minutes', '1m30'])('rejects %j, naming the text', (text) => {
    expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration`);
  });

  it('accepts exactly what the schema pattern accepts', () => {
    const pattern = new RegExp(DURATION_PATTERN);
    for (const text of ['250ms', '1m30s', '0s', '1h', '30', '1.5s', '1d', '', 'ms', '5m5m']) {
      let parses = true;
      try {
        parseDuration(text);
      } catch {
        parses = false;
      }
      expect(parses, text).toBe(pattern.test(text));
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [1000, '1s'],
    [90_000, '90s'],
    [60_000, '1m'],
    [300_000, '5m'],
    [0, '0s'],
    [1500, '1500ms'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1, 250, 1000, 1500, 30_000, 90_000, 3_600_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
