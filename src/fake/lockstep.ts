// Lockstep streaming: content event k+1 is sent only after event k was acknowledged.
// Acks are counted per stream id, so an ack that arrives early is never lost.

interface Waiter {
  count: number;
  resolve: () => void;
}

interface StreamState {
  acks: number;
  waiters: Waiter[];
}

const MAX_STREAMS = 10_000;

export class Lockstep {
  private streams = new Map<string, StreamState>();

  private state(id: string): StreamState {
    let s = this.streams.get(id);
    if (!s) {
      if (this.streams.size >= MAX_STREAMS) this.streams.clear();
      s = { acks: 0, waiters: [] };
      this.streams.set(id, s);
    }
    return s;
  }

  ack(id: string): void {
    const s = this.state(id);
    s.acks++;
    if (s.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of s.waiters) {
      if (s.acks >= w.count) w.resolve();
      else still.push(w);
    }
    s.waiters = still;
  }

  /** Resolves once `id` has at least `count` acks, or when `release(id)` is called. */
  wait(id: string, count: number): Promise<void> {
    const s = this.state(id);
    if (s.acks >= count) return Promise.resolve();
    return new Promise((resolve) => s.waiters.push({ count, resolve }));
  }

  /** Forget a stream (finished or closed), waking anything still waiting on it. */
  release(id: string): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.streams.delete(id);
    for (const w of s.waiters) w.resolve();
  }

  /** Wake and forget every stream (server closing). */
  releaseAll(): void {
    for (const id of [...this.streams.keys()]) this.release(id);
  }
}
