// Request accounting: counters, in-flight / peak concurrency, and the last requests.
import type { IncomingHttpHeaders } from 'node:http';

export interface FakeRequestRecord {
  method: string;
  /** Request path without the query string, as received. */
  path: string;
  /** Body `model`, or null when the request had none. */
  model: string | null;
  /** Fault spec name applied (`none` for a normal answer). */
  fault: string;
  /** Request headers, lowercased by node (authorization, x-api-key… are kept). */
  headers: IncomingHttpHeaders;
  /** Body max_tokens / max_completion_tokens / max_output_tokens, when sent (fallback tests check the cap). */
  maxTokens?: number;
  /** Whether the request asked for a stream. */
  stream: boolean;
  /** Lockstep stream id, when lockstep streaming was on. */
  streamId?: string;
  /** Date.now() when the request was counted. */
  at: number;
}

export interface FakeStats {
  name: string;
  /** Provider requests counted since the last reset (control calls are not counted). */
  requests: number;
  byFault: Record<string, number>;
  byModel: Record<string, number>;
  byPath: Record<string, number>;
  /** Provider requests in flight now (until the response finishes or the socket closes). */
  inflight: number;
  /** Most provider requests in flight at once since the last reset. */
  peakConcurrency: number;
  /** The last 200 requests, oldest first. */
  recent: FakeRequestRecord[];
}

const RECENT = 200;
const NO_MODEL = '(none)';

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export class Stats {
  readonly name: string;
  private requests = 0;
  private byFault = new Map<string, number>();
  private byModel = new Map<string, number>();
  private byPath = new Map<string, number>();
  private inflight = 0;
  private peak = 0;
  private ring: FakeRequestRecord[] = [];
  private next = 0;

  constructor(name: string) {
    this.name = name;
  }

  enter(): void {
    if (++this.inflight > this.peak) this.peak = this.inflight;
  }

  leave(): void {
    this.inflight--;
  }

  inflightNow(): number {
    return this.inflight;
  }

  record(rec: FakeRequestRecord): void {
    this.requests++;
    bump(this.byFault, rec.fault);
    bump(this.byModel, rec.model ?? NO_MODEL);
    bump(this.byPath, rec.path);
    if (this.ring.length < RECENT) this.ring.push(rec);
    else this.ring[this.next] = rec;
    this.next = (this.next + 1) % RECENT;
  }

  reset(): void {
    this.requests = 0;
    this.byFault.clear();
    this.byModel.clear();
    this.byPath.clear();
    this.peak = this.inflight;
    this.ring = [];
    this.next = 0;
  }

  snapshot(): FakeStats {
    const ring = this.ring;
    const recent = ring.length < RECENT ? ring.slice() : [...ring.slice(this.next), ...ring.slice(0, this.next)];
    return {
      name: this.name,
      requests: this.requests,
      byFault: Object.fromEntries(this.byFault),
      byModel: Object.fromEntries(this.byModel),
      byPath: Object.fromEntries(this.byPath),
      inflight: this.inflight,
      peakConcurrency: this.peak,
      recent,
    };
  }
}
