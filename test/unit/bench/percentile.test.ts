// Nearest-rank percentiles of the benchmark's latency samples (bench/lib/sweep.ts): p99.9 of
// 1000 samples is the 999th, never an interpolation below the data.
import { describe, expect, it } from 'vitest';
import { percentile } from '../../../bench/lib/sweep.ts';

describe('percentile', () => {
  const ms = Array.from({ length: 1000 }, (_, i) => i + 1); // 1..1000, ascending

  it('takes the nearest rank', () => {
    expect(percentile(ms, 50)).toBe(500);
    expect(percentile(ms, 99)).toBe(990);
    expect(percentile(ms, 99.9)).toBe(999);
    expect(percentile(ms, 100)).toBe(1000);
  });

  it('is the only sample for one sample, and NaN for none', () => {
    expect(percentile([7], 99.9)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});
