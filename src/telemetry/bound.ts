// Metrics for the request path. prom-client re-validates and re-hashes the label set on every
// update, even through a labels() child; these keep each label set's numbers in a plain object
// made once, so an update is a field increment. prom-client's Registry still formats them at
// scrape time, through get() (the shape its own metrics return).
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface Options<N extends string> {
  name: string;
  help: string;
  labelNames: readonly N[];
  registers: Registry[];
}

abstract class BoundMetric<Child> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly string[];
  protected readonly children = new Map<string, { labels: Labels; child: Child }>();

  constructor(options: Options<string>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** the child for these label values, made on first use and kept */
  labels(...values: string[]): Child {
    const key = values.join('\u0000');
    const found = this.children.get(key);
    if (found) return found.child;
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values`);
    const labels: Labels = {};
    this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
    const child = this.create();
    this.children.set(key, { labels, child });
    return child;
  }

  remove(...values: string[]): void {
    this.children.delete(values.join('\u0000'));
  }

  reset(): void {
    this.children.clear();
  }

  protected abstract create(): Child;
  protected abstract values(): MetricValue[];

  async get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }
}

function scalarValues(children: Map<string, { labels: Labels; child: { value: number } }>): MetricValue[] {
  return [...children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
}

export interface CounterChild {
  value: number;
  inc(n?: number): void;
}

export class BoundCounter<N extends string> extends BoundMetric<CounterChild> {
  readonly type = 'counter' as const;
  constructor(options: Options<N>) {
    super(options);
  }
  protected create(): CounterChild {
    return {
      value: 0,
      inc(n = 1) {
        this.value += n;
      },
    };
  }
  protected values(): MetricValue[] {
    return scalarValues(this.children);
  }
}

export interface GaugeChild {
  value: number;
  inc(n?: number): void;
  dec(n?: number): void;
  set(v: number): void;
}

export class BoundGauge<N extends string> extends BoundMetric<GaugeChild> {
  readonly type = 'gauge' as const;
  constructor(options: Options<N>) {
    super(options);
  }
  protected create(): GaugeChild {
    return {
      value: 0,
      inc(n = 1) {
        this.value += n;
      },
      dec(n = 1) {
        this.value -= n;
      },
      set(v) {
        this.value = v;
      },
    };
  }
  protected values(): MetricValue[] {
    return scalarValues(this.children);
  }
}

export interface HistogramChild {
  observe(v: number): void;
}

export class BoundHistogram<N extends string> extends BoundMetric<HistogramChild & { counts: Float64Array; sum: number; count: number }> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  constructor(options: Options<N> & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }
  protected create() {
    const buckets = this.buckets;
    return {
      counts: new Float64Array(buckets.length),
      sum: 0,
      count: 0,
      observe(v: number) {
        this.sum += v;
        this.count++;
        for (let i = 0; i < buckets.length; i++) {
          if (v <= buckets[i]!) {
            this.counts[i]!++;
            return;
          }
        }
      },
    };
  }
  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += child.counts[i]!;
        out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { ...labels, le: '+Inf' }, value: child.count, metricName: `${this.name}_bucket` });
      out.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      out.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}

export type AnyBound = BoundCounter<string> | BoundGauge<string> | BoundHistogram<string>;
export { BoundMetric };
