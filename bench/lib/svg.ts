// Plain SVG charts for docs/bench.md, written as text (no chart library): a grouped bar chart and
// a line chart, each with a title, labelled axes and ticks, a legend, a linear or logarithmic
// value axis, and missing values (a peer that could not run a case) marked "n/a" rather than
// drawn as zero. Pure functions: data in, an SVG document out.

export interface Series {
  name: string;
  /** one per group (bar chart) or x position (line chart); undefined or NaN: not measured */
  values: ReadonlyArray<number | undefined>;
}

export interface ChartSpec {
  title: string;
  /** value axis label, units included */
  yLabel: string;
  /** group labels (bar chart) or x positions (line chart) */
  categories: readonly string[];
  series: readonly Series[];
  /** logarithmic value axis (every value must be > 0) */
  log?: boolean;
  /** x axis label (line chart) */
  xLabel?: string;
  /** a footnote under the chart */
  note?: string;
  /** format of the value printed on a bar or point (not of the axis ticks); default 3 significant digits */
  format?: (v: number) => string;
}

const W = 760;
const H = 400;
const M = { top: 48, right: 170, bottom: 64, left: 72 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const num = (n: number) => (Math.round(n * 10) / 10).toString();
const present = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
export const fmt3 = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, ''));
/** axis ticks: 0.5, 20, 5k, 2M */
export const tickFormat = (v: number) => (Math.abs(v) >= 1e6 ? `${fmt3(v / 1e6)}M` : Math.abs(v) >= 1e4 ? `${fmt3(v / 1e3)}k` : fmt3(v));

/** A value axis: ticks and the mapping from value to a y pixel offset from the plot's top. */
export interface Scale {
  ticks: number[];
  y(v: number): number;
}

export function linearScale(max: number): Scale {
  const top = max > 0 ? max : 1;
  const raw = top / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const end = Math.ceil(top / step) * step;
  const ticks: number[] = [];
  for (let t = 0; t <= end + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { ticks, y: (v) => PLOT_H - (v / end) * PLOT_H };
}

export function logScale(min: number, max: number): Scale {
  const lo = 10 ** Math.floor(Math.log10(min > 0 ? min : 1));
  const hi = 10 ** Math.ceil(Math.log10(max > lo ? max : lo * 10));
  const ticks: number[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) for (const m of [1, 2, 5]) if (d * m <= hi * 1.0001) ticks.push(Number((d * m).toPrecision(12)));
  const span = Math.log10(hi) - Math.log10(lo);
  return { ticks, y: (v) => PLOT_H - ((Math.log10(v) - Math.log10(lo)) / span) * PLOT_H };
}

function scaleFor(spec: ChartSpec): Scale {
  const values = spec.series.flatMap((s) => s.values.filter(present));
  if (spec.log) {
    const positive = values.filter((v) => v > 0);
    return logScale(Math.min(...positive, Infinity) || 1, Math.max(...positive, 1));
  }
  return linearScale(Math.max(0, ...values));
}

function frame(spec: ChartSpec, scale: Scale, body: string[]): string {
  const fmt = tickFormat;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeXml(spec.title)}">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text class="title" x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`,
    `<g class="y-axis" transform="translate(${M.left},${M.top})">`,
  ];
  for (const t of scale.ticks) {
    const y = num(scale.y(t));
    out.push(`<line x1="0" x2="${PLOT_W}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`, `<text x="-6" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(fmt(t))}</text>`);
  }
  out.push(`<line x1="0" x2="0" y1="0" y2="${PLOT_H}" stroke="#333"/>`, `<line x1="0" x2="${PLOT_W}" y1="${PLOT_H}" y2="${PLOT_H}" stroke="#333"/>`);
  out.push(`<text class="y-label" transform="translate(-54,${PLOT_H / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel + (spec.log ? ' (log scale)' : ''))}</text>`, '</g>');
  out.push(`<g class="plot" transform="translate(${M.left},${M.top})">`, ...body, '</g>');
  out.push(`<g class="legend" transform="translate(${M.left + PLOT_W + 16},${M.top})">`);
  spec.series.forEach((s, i) => {
    out.push(`<rect x="0" y="${i * 20}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`, `<text x="18" y="${i * 20 + 10}">${escapeXml(s.name)}</text>`);
  });
  out.push('</g>');
  if (spec.xLabel) out.push(`<text class="x-label" x="${M.left + PLOT_W / 2}" y="${H - 26}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  if (spec.note) out.push(`<text class="note" x="${M.left}" y="${H - 8}" font-size="10" fill="#555">${escapeXml(spec.note)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Bars grouped by category, one bar per series, value printed on each bar. */
export function barChart(spec: ChartSpec): string {
  const scale = scaleFor(spec);
  const fmt = spec.format ?? fmt3;
  const groupW = PLOT_W / Math.max(1, spec.categories.length);
  const barW = (groupW * 0.8) / Math.max(1, spec.series.length);
  const base = spec.log ? PLOT_H : scale.y(0);
  const body: string[] = [];
  spec.categories.forEach((c, gi) => {
    const gx = gi * groupW + groupW * 0.1;
    body.push(`<text class="category" x="${num(gi * groupW + groupW / 2)}" y="${PLOT_H + 18}" text-anchor="middle">${escapeXml(c)}</text>`);
    spec.series.forEach((s, si) => {
      const v = s.values[gi];
      const x = num(gx + si * barW);
      const cx = num(gx + si * barW + barW / 2);
      if (!present(v) || (spec.log && v <= 0)) {
        body.push(`<text class="missing" x="${cx}" y="${num(PLOT_H - 6)}" text-anchor="middle" font-size="10" fill="#999">n/a</text>`);
        return;
      }
      const y = scale.y(v);
      body.push(
        `<rect class="bar" data-series="${escapeXml(s.name)}" data-value="${v}" x="${x}" y="${num(Math.min(y, base))}" width="${num(barW * 0.92)}" height="${num(Math.abs(base - y))}" fill="${PALETTE[si % PALETTE.length]}"/>`,
        `<text class="value" x="${cx}" y="${num(Math.min(y, base) - 4)}" text-anchor="middle" font-size="10">${escapeXml(fmt(v))}</text>`,
      );
    });
  });
  return frame(spec, scale, body);
}

/** One polyline per series over categorical x positions; missing points break the line. */
export function lineChart(spec: ChartSpec): string {
  const scale = scaleFor(spec);
  const fmt = spec.format ?? fmt3;
  const step = PLOT_W / Math.max(1, spec.categories.length);
  const xAt = (i: number) => step * i + step / 2;
  const body: string[] = [];
  spec.categories.forEach((c, i) => body.push(`<text class="category" x="${num(xAt(i))}" y="${PLOT_H + 18}" text-anchor="middle">${escapeXml(c)}</text>`));
  spec.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) body.push(`<polyline class="line" data-series="${escapeXml(s.name)}" points="${run.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`);
      run = [];
    };
    s.values.forEach((v, i) => {
      if (!present(v) || (spec.log && v <= 0)) {
        flush();
        body.push(`<text class="missing" x="${num(xAt(i))}" y="${num(PLOT_H - 6 - si * 12)}" text-anchor="middle" font-size="10" fill="${color}">n/a</text>`);
        return;
      }
      const x = num(xAt(i));
      const y = num(scale.y(v));
      run.push(`${x},${y}`);
      body.push(`<circle class="point" data-series="${escapeXml(s.name)}" data-value="${v}" cx="${x}" cy="${y}" r="3.5" fill="${color}"/>`, `<text class="value" x="${num(Number(x) + 6)}" y="${num(Number(y) - 6)}" font-size="10" fill="${color}">${escapeXml(fmt(v))}</text>`);
    });
    flush();
  });
  return frame(spec, scale, body);
}
