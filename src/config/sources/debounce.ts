// Debounce on the injected clock: run once, `ms` after the last trigger. The file source uses
// it so that an editor's truncate-then-write, or a burst of rename and change events, is one
// reload of the finished file, not a reload of each half-written state.
import type { Clock } from '../../clock.ts';

export interface Debounced {
  /** (re)starts the wait: fn runs `ms` after the last call */
  trigger(): void;
  cancel(): void;
}

export function debounce(clock: Clock, ms: number, fn: () => void): Debounced {
  let timer: NodeJS.Timeout | undefined;
  return {
    trigger() {
      clock.clearTimeout(timer);
      timer = clock.setTimeout(() => {
        timer = undefined;
        fn();
      }, ms);
    },
    cancel() {
      clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
