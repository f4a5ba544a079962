// The shape of one peer-comparison run, as saved to docs/bench/results.json and read back by
// `bench/compare.ts --render-only` (which redraws docs/bench.md and the charts without running).
import type { ScenarioName, ScenarioResult } from './failure.ts';
import type { FirstChunk } from './first-chunk.ts';
import type { Idle } from './idle.ts';
import type { AtRate, Saturation } from './sweep.ts';

/** 'direct' is the app calling the fake itself; the others are the peers of peers.ts */
export type Row = 'direct' | 'breakwater' | 'nginx' | 'portkey' | 'litellm' | 'minimal';

/** the rows the prompt-size runs load (the fast ones: Portkey and LiteLLM would take minutes for no extra insight) */
export const PROMPT_PEERS: readonly Row[] = ['direct', 'breakwater', 'minimal', 'nginx'];

export interface PeerInfo {
  name: Row;
  label: string;
  version: string;
  /** how it fails over to the secondary; undefined: it cannot */
  failover: string | undefined;
}

export interface RunEnv {
  date: string;
  command: string;
  commit: string;
  node: string;
  cpu: string;
  pinning: string;
  loadAverageBefore: string;
  loadAverageAfter: string;
  totalSeconds: number;
  quick: boolean;
  tools: Record<string, string>;
  plan: Record<string, unknown>;
}

export interface Memory {
  idleRssKb: number;
  peakHwmKb: number;
}

export type FailureCell = ScenarioResult | { unsupported: string };

export interface Results {
  env: RunEnv;
  peers: PeerInfo[];
  idle: Partial<Record<Row, Idle>>;
  memory: Partial<Record<Row, Memory>>;
  saturation: { json: Partial<Record<Row, Saturation>>; sse: Partial<Record<Row, Saturation>> };
  /** closed loop with a 1 KB and a 100 KB request body (PROMPT_PEERS only; absent in older results) */
  promptSize?: { '1k': Partial<Record<Row, Saturation>>; '100k': Partial<Record<Row, Saturation>> };
  rates: number[];
  atRate: Partial<Record<Row, AtRate[]>>;
  firstChunkRate: number;
  firstChunk: Partial<Record<Row, FirstChunk>>;
  failure: Partial<Record<ScenarioName, Partial<Record<Row, FailureCell>>>>;
}
