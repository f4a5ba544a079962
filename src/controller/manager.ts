// The controller as a small manager of runnables, in the shape of controller-runtime's: some
// run on every replica (probes and metrics, the certificate keeper, the webhook, the caches),
// some only while this replica holds the Lease (the status writer). Runnables start in the
// order they were added and stop in reverse; leader-only ones start when the Lease is won and
// stop when it is lost or the process stops, before the Lease is released.
import type { Logger } from '../telemetry/log.ts';

export interface Runnable {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class Manager {
  readonly #log: Logger;
  readonly #everyReplica: Runnable[] = [];
  readonly #leaderOnly: Runnable[] = [];
  /** leader transitions and stop run one at a time, in the order they happened */
  #chain: Promise<void> = Promise.resolve();
  #leading = false;
  #running: Runnable[] = [];
  #stopped = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  add(runnable: Runnable, options: { needsLeader: boolean }): this {
    (options.needsLeader ? this.#leaderOnly : this.#everyReplica).push(runnable);
    return this;
  }

  /** Starts every-replica runnables in order; a failure stops the ones already started. */
  async start(): Promise<void> {
    for (const r of this.#everyReplica) {
      try {
        await r.start();
      } catch (err) {
        this.#log.error({ runnable: r.name, err: (err as Error).message }, 'runnable failed to start');
        await this.stop();
        throw err;
      }
      this.#running.push(r);
      this.#log.debug({ runnable: r.name }, 'runnable started');
    }
  }

  /**
   * The Lease was won: start the leader-only runnables. Won again while leading means renewed
   * after a gap in which writes were fenced off (frozen, partitioned): restart them, so they
   * start over from a full resync instead of trusting what they skipped.
   */
  readonly startedLeading = (): void => {
    this.#chain = this.#chain.then(async () => {
      if (this.#stopped) return;
      await this.#stopLeaderOnly();
      this.#leading = true;
      for (const r of this.#leaderOnly) {
        try {
          await r.start();
        } catch (err) {
          this.#log.error({ runnable: r.name, err: (err as Error).message }, 'leader-only runnable failed to start');
        }
      }
    });
  };

  /** The Lease was lost: stop the leader-only runnables. */
  readonly stoppedLeading = (): void => {
    this.#chain = this.#chain.then(() => this.#stopLeaderOnly());
  };

  async #stopLeaderOnly(): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    for (const r of [...this.#leaderOnly].reverse()) {
      await r.stop().catch((err: unknown) => this.#log.warn({ runnable: r.name, err: (err as Error).message }, 'runnable failed to stop'));
    }
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Leader-only runnables first, then every-replica ones in reverse order of start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#chain = this.#chain.then(async () => {
      await this.#stopLeaderOnly();
      for (const r of this.#running.reverse()) {
        await r.stop().catch((err: unknown) => this.#log.warn({ runnable: r.name, err: (err as Error).message }, 'runnable failed to stop'));
      }
      this.#running = [];
    });
    await this.#chain;
  }
}
