// Recent error rate, latency and fallbacks for the dashboard, read from the prom-client
// metrics the data plane already keeps: a sample every few seconds (taken on the admin
// heartbeat, no timer of its own), and a view that compares the counters now with the oldest
// sample inside the window. Nothing is added to the hot path.
import { isProviderFailure, type OutcomeKind } from '../proxy/outcome.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Heartbeat } from './heartbeat.ts';

interface Sample {
  at: number;
  /** "upstream\0endpoint\0result" -> count */
  attempts: Map<string, number>;
  /** "upstream\0endpoint" -> {count, sum, buckets: le -> cumulative count} */
  ttfb: Map<string, { count: number; sum: number; buckets: Map<number, number> }>;
  /** "upstream\0outcome" -> count */
  requests: Map<string, number>;
  /** "upstream\0from\0to" -> count */
  fallbacks: Map<string, number>;
}

export interface EndpointRecent {
  attempts: number;
  failures: number;
  /** failures / attempts, 0..1 (null without attempts) */
  errorRate: number | null;
  byResult: Record<string, number>;
  /** mean and approximate p90 time to first byte (ms), null without samples */
  ttfbMeanMs: number | null;
  ttfbP90Ms: number | null;
}

export interface UpstreamRecent {
  requests: Record<string, number>;
  fallbacks: { from: string; to: string; count: number }[];
}

export interface RecentView {
  /** how much time the numbers cover (ms) */
  windowMs: number;
  upstream(name: string): UpstreamRecent;
  endpoint(upstream: string, endpoint: string): EndpointRecent;
}

const SEP = '\u0000';

export class RecentStats {
  readonly windowMs: number;
  readonly sampleEveryMs: number;
  #metrics: Metrics;
  #samples: Sample[] = [];
  #remove: (() => void) | undefined;
  /** a sample is being taken (prom-client's get() is async) */
  #sampling = false;
  #now: () => number;

  constructor(metrics: Metrics, options: { windowMs?: number; sampleEveryMs?: number; now?: () => number } = {}) {
    this.#metrics = metrics;
    this.windowMs = options.windowMs ?? 60_000;
    this.sampleEveryMs = options.sampleEveryMs ?? 5_000;
    this.#now = options.now ?? Date.now;
  }

  /** takes a first sample, then one on the first beat at least sampleEveryMs after the last */
  async start(heartbeat: Heartbeat): Promise<void> {
    if (this.#remove) return;
    // a beat may come up to half a period early against the sample's own reading of the clock
    const due = this.sampleEveryMs - heartbeat.periodMs / 2;
    this.#remove = heartbeat.add(() => {
      const last = this.#samples.at(-1);
      if (this.#sampling || (last && this.#now() - last.at < due)) return;
      this.#sampling = true;
      this.#sample().then(
        (s) => this.#push(s),
        () => undefined,
      ).finally(() => (this.#sampling = false));
    });
    this.#push(await this.#sample());
  }

  /** samples taken and kept (for tests and /debug/state's window) */
  get samples(): number {
    return this.#samples.length;
  }

  stop(): void {
    this.#remove?.();
    this.#remove = undefined;
  }

  async view(): Promise<RecentView> {
    const now = await this.#sample();
    const base = this.#samples.find((s) => now.at - s.at <= this.windowMs) ?? now;
    const windowMs = now.at - base.at;
    const delta = (a: Map<string, number>, b: Map<string, number>, key: string) => Math.max(0, (a.get(key) ?? 0) - (b.get(key) ?? 0));
    return {
      windowMs,
      upstream(name) {
        const requests: Record<string, number> = {};
        for (const key of now.requests.keys()) {
          const [u, outcome] = key.split(SEP);
          if (u !== name) continue;
          const d = delta(now.requests, base.requests, key);
          if (d > 0) requests[outcome!] = d;
        }
        const fallbacks: UpstreamRecent['fallbacks'] = [];
        for (const key of now.fallbacks.keys()) {
          const [u, from, to] = key.split(SEP);
          if (u !== name) continue;
          const count = delta(now.fallbacks, base.fallbacks, key);
          if (count > 0) fallbacks.push({ from: from!, to: to!, count });
        }
        return { requests, fallbacks };
      },
      endpoint(upstream, endpoint) {
        const prefix = `${upstream}${SEP}${endpoint}${SEP}`;
        const byResult: Record<string, number> = {};
        let attempts = 0;
        let failures = 0;
        for (const key of now.attempts.keys()) {
          if (!key.startsWith(prefix)) continue;
          const d = delta(now.attempts, base.attempts, key);
          if (d === 0) continue;
          const result = key.slice(prefix.length);
          byResult[result] = d;
          attempts += d;
          if (isProviderFailure(result as OutcomeKind)) failures += d;
        }
        const t = now.ttfb.get(`${upstream}${SEP}${endpoint}`);
        const t0 = base.ttfb.get(`${upstream}${SEP}${endpoint}`);
        let ttfbMeanMs: number | null = null;
        let ttfbP90Ms: number | null = null;
        if (t) {
          const count = t.count - (t0?.count ?? 0);
          if (count > 0) {
            ttfbMeanMs = Math.round(((t.sum - (t0?.sum ?? 0)) / count) * 1000 * 10) / 10;
            // the upper bound of the bucket holding the 90th percentile
            for (const [le, cumulative] of [...t.buckets].sort((a, b) => a[0] - b[0])) {
              if (cumulative - (t0?.buckets.get(le) ?? 0) >= 0.9 * count) {
                ttfbP90Ms = Number.isFinite(le) ? le * 1000 : null;
                break;
              }
            }
          }
        }
        return { attempts, failures, errorRate: attempts > 0 ? failures / attempts : null, byResult, ttfbMeanMs, ttfbP90Ms };
      },
    };
  }

  #push(sample: Sample): void {
    this.#samples.push(sample);
    // keep one sample older than the window, so a view always spans a whole window
    while (this.#samples.length > 2 && sample.at - this.#samples[1]!.at >= this.windowMs) this.#samples.shift();
  }

  async #sample(): Promise<Sample> {
    const m = this.#metrics;
    const [attempts, ttfb, requests, fallbacks] = await Promise.all([m.attempts.get(), m.ttfb.get(), m.requests.get(), m.fallbacks.get()]);
    const sample: Sample = { at: this.#now(), attempts: new Map(), ttfb: new Map(), requests: new Map(), fallbacks: new Map() };
    for (const v of attempts.values) sample.attempts.set([v.labels.upstream, v.labels.endpoint, v.labels.result].join(SEP), v.value);
    for (const v of requests.values) sample.requests.set([v.labels.upstream, v.labels.outcome].join(SEP), v.value);
    for (const v of fallbacks.values) sample.fallbacks.set([v.labels.upstream, v.labels.from_model, v.labels.to_model].join(SEP), v.value);
    for (const v of ttfb.values) {
      const key = [v.labels.upstream, v.labels.endpoint].join(SEP);
      let entry = sample.ttfb.get(key);
      if (!entry) {
        entry = { count: 0, sum: 0, buckets: new Map() };
        sample.ttfb.set(key, entry);
      }
      if (v.metricName?.endsWith('_count')) entry.count = v.value;
      else if (v.metricName?.endsWith('_sum')) entry.sum = v.value;
      else if (v.metricName?.endsWith('_bucket')) {
        const le = (v.labels as Record<string, string | number | undefined>).le;
        entry.buckets.set(le === '+Inf' ? Infinity : Number(le), v.value);
      }
    }
    return sample;
  }
}
