// A process-wide budget for buffered request bodies. Replayable calls are buffered whole (up
// to 32 MiB each) so they can be retried; without a shared cap, a burst of large prompts would
// take the sidecar's memory with it. Past the budget a request is refused with 503 and a
// Retry-After (x-should-retry: false), never queued in memory.
/** 64 MiB: what fits beside the ~124 MiB measured peak under the default 256Mi memory limit */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export class ByteBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** reserves n bytes; false (nothing reserved) when that would pass the limit */
  take(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}
