// The breaker's failure window behind a synchronous interface: record a verdict, learn at once
// whether the window says "open". opossum stays the rolling window (its Status: buckets rotated
// over rollingWindow), fed through the circuit's own events, which opossum counts synchronously;
// the decision is opossum's rule (at least volumeThreshold calls, failure rate over the
// threshold), read from its stats right away instead of from its asynchronous `open` event.
// The breaker's state machine (breaker.ts) decides the rest; a fresh window is a new instance.
import CircuitBreaker from 'opossum';

export interface FailureWindow {
  /** counts one verdict; true when the window now says the breaker should open */
  record(verdict: 'success' | 'failure'): boolean;
  /** counts in the window, for /debug/state */
  counts(): { fires: number; failures: number; successes: number };
  dispose(): void;
}

export interface WindowConfig {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  rollingWindowMs: number;
}

const never = (): Promise<void> => Promise.resolve();

export class OpossumWindow implements FailureWindow {
  readonly #config: WindowConfig;
  /** never fired: only its rolling Status is used, fed by the events below */
  readonly #circuit: CircuitBreaker<[], void>;

  constructor(config: WindowConfig) {
    this.#config = config;
    this.#circuit = new CircuitBreaker(never, {
      timeout: false,
      rollingCountTimeout: config.rollingWindowMs,
      rollingCountBuckets: 10,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
  }

  record(verdict: 'success' | 'failure'): boolean {
    this.#circuit.emit('fire');
    this.#circuit.emit(verdict);
    if (verdict === 'success') return false;
    const { fires, failures } = this.#circuit.stats;
    if (fires < this.#config.volumeThreshold || fires === 0) return false;
    const rate = (failures / fires) * 100;
    // opossum's rule is "over the threshold"; 100 % must still open when every call failed
    return rate > this.#config.errorThresholdPercentage || rate === 100;
  }

  counts(): { fires: number; failures: number; successes: number } {
    const s = this.#circuit.stats;
    return { fires: s.fires, failures: s.failures, successes: s.successes };
  }

  dispose(): void {
    this.#circuit.shutdown();
  }
}
