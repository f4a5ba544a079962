// What a config source hands its results to. The proxy runtime implements it: apply swaps
// the snapshot, reject logs and counts and keeps the last good config serving.
import type { ConfigError } from './compile.ts';
import type { UpstreamConfig } from './runtime.ts';

export interface ConfigSink {
  /** the complete set of upstreams this source now defines */
  apply(upstreams: readonly UpstreamConfig[], source: string): void;
  reject(error: ConfigError, source: string): void;
}
