// The benchmark's chart generator (bench/lib/svg.ts): a well-formed SVG document with its title,
// axis labels, categories and legend, bars and points placed in proportion to their values, and
// unmeasured values shown as "n/a" instead of a zero.
import { describe, expect, it } from 'vitest';
import { barChart, escapeXml, lineChart, linearScale, logScale, type ChartSpec } from '../../../bench/lib/svg.ts';

/** Every tag closed in order, one root <svg>, attributes quoted: enough to catch broken output. */
function assertWellFormed(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  const stack: string[] = [];
  let roots = 0;
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) expect(stack.pop()).toBe(name);
    else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  // no stray markup outside the tags the regex accepted
  expect(svg.replace(/<\/?[a-zA-Z][\w-]*(?:\s+[\w:-]+="[^"<]*")*\s*\/?>/g, '')).not.toMatch(/[<>]/);
}

const attr = (el: string, name: string) => Number(new RegExp(`\\s${name}="([^"]+)"`).exec(el)?.[1]);
const bars = (svg: string) => [...svg.matchAll(/<rect class="bar"[^>]*>/g)].map((m) => m[0]);

const spec: ChartSpec = {
  title: 'CPU per request',
  yLabel: 'CPU µs per request',
  categories: ['nginx', 'Breakwater', 'LiteLLM <py>'],
  series: [
    { name: 'JSON', values: [10, 20, 40] },
    { name: 'SSE & more', values: [15, undefined, 60] },
  ],
};

describe('bar chart', () => {
  it('is one well-formed SVG document with title, axis label, categories and legend', () => {
    const svg = barChart(spec);
    assertWellFormed(svg);
    expect(svg).toContain('<title>CPU per request</title>');
    expect(svg).toContain('>CPU µs per request<');
    for (const c of ['nginx', 'Breakwater', 'LiteLLM &lt;py&gt;', 'JSON', 'SSE &amp; more']) expect(svg).toContain(`>${c}<`);
    expect(svg.match(/class="y-axis"/g)).toHaveLength(1);
  });

  it('draws bar heights in proportion to the values on a linear axis, sharing one baseline', () => {
    const json = bars(barChart(spec)).filter((b) => b.includes('data-series="JSON"'));
    expect(json).toHaveLength(3);
    const [h10, h20, h40] = json.map((b) => attr(b, 'height'));
    expect(h20! / h10!).toBeCloseTo(2, 1);
    expect(h40! / h10!).toBeCloseTo(4, 1);
    const bottoms = json.map((b) => attr(b, 'y') + attr(b, 'height'));
    expect(new Set(bottoms.map((v) => v.toFixed(0))).size).toBe(1);
  });

  it('marks a value that was not measured as n/a and draws no bar for it', () => {
    const svg = barChart(spec);
    expect(bars(svg)).toHaveLength(5);
    expect(svg.match(/class="missing"[^>]*>n\/a</g)).toHaveLength(1);
  });

  it('on a log axis, equal ratios are equal distances', () => {
    const svg = barChart({ ...spec, log: true, series: [{ name: 'x', values: [1, 10, 100] }] });
    const tops = bars(svg).map((b) => attr(b, 'y'));
    expect(tops[0]! - tops[1]!).toBeCloseTo(tops[1]! - tops[2]!, 0);
    expect(svg).toContain('(log scale)');
  });
});

describe('line chart', () => {
  it('places one point per measured value, higher values higher, and breaks the line at a gap', () => {
    const svg = lineChart({ title: 'p99', yLabel: 'ms', xLabel: 'req/s', categories: ['300/s', '1000/s', '3000/s'], series: [{ name: 'a', values: [1, 2, undefined] }, { name: 'b', values: [1, 4, 8] }] });
    assertWellFormed(svg);
    expect(svg).toContain('>req/s<');
    const points = [...svg.matchAll(/<circle class="point" data-series="(\w)" data-value="([\d.]+)" cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => ({ s: m[1], v: Number(m[2]), y: Number(m[3]) }));
    expect(points).toHaveLength(5);
    const b = points.filter((p) => p.s === 'b');
    expect(b[0]!.y).toBeGreaterThan(b[1]!.y); // SVG y grows downwards
    expect(b[1]!.y).toBeGreaterThan(b[2]!.y);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('>n/a<');
  });
});

describe('scales and escaping', () => {
  it('a linear axis starts at 0 and its last tick covers the maximum', () => {
    const s = linearScale(37);
    expect(s.ticks[0]).toBe(0);
    expect(s.ticks.at(-1)).toBeGreaterThanOrEqual(37);
    expect(s.y(0)).toBeGreaterThan(s.y(37));
  });

  it('a log axis spans whole decades around the data', () => {
    const s = logScale(0.3, 45);
    expect(s.ticks[0]).toBe(0.1);
    expect(s.ticks).toContain(1);
    expect(s.ticks.at(-1)).toBe(100);
  });

  it('escapes markup in text', () => {
    expect(escapeXml('a<b>&"c"')).toBe('a&lt;b&gt;&amp;&quot;c&quot;');
  });
});
