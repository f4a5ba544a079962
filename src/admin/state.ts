// /debug/state: everything an operator needs during an incident, as JSON. Per upstream and
// endpoint: breaker state and time in it, window counts, holds, inflight and bulkhead slots, the
// queue's depth per priority, budget left, recent
// error rate and latency, fallbacks; plus the config generation and source and the readiness
// verdict. Keys never appear: auth shows only its header and source (Secret redacts itself
// anyway), and URLs lose their user info and query values.
import { redactUrl } from '../config/url.ts';
import type { ProxyRuntime } from '../proxy/runtime.ts';
import type { LivenessReport } from './liveness.ts';
import type { Verdict } from './readiness.ts';
import type { RecentView } from './recent.ts';

/** https://user:pass@host/p?key=v -> https://host/p?key=redacted: the one URL formatter (config/url.ts) */
export const safeUrl = redactUrl;

export function debugState(runtime: ProxyRuntime, now: number, readiness: Verdict, liveness: LivenessReport, recent: RecentView) {
  const snapshot = runtime.snapshot;
  const verdictFor = new Map(readiness.upstreams.map((u) => [u.name, u]));
  const upstreams = snapshot
    ? [...snapshot.upstreams.values()].map((u) => {
        const availability = verdictFor.get(u.config.name);
        const r = recent.upstream(u.config.name);
        return {
          name: u.config.name,
          api: u.config.api,
          required: u.config.required,
          namespace: u.config.namespace ?? null,
          resourceGeneration: u.config.generation ?? null,
          available: availability?.available ?? null,
          availableEndpoints: availability?.availableEndpoints ?? null,
          unavailableForMs: availability?.unavailableForMs ?? 0,
          budget: { left: u.budget.available(), ratio: u.config.retry.budget.ratio, minPerSecond: u.config.retry.budget.minPerSecond },
          retry: { maxAttempts: u.config.retry.maxAttempts },
          queue: u.queue.describe(),
          fallbacks: Object.fromEntries([...u.config.fallbacks].map(([model, chain]) => [model, chain.map((s) => ({ model: s.model, maxTokens: s.maxTokens ?? null }))])),
          recent: r,
          cache: u.cache?.describe() ?? null,
          endpoints: u.endpoints.map((e) => {
            const d = e.describe(now);
            return { ...d, url: redactUrl(d.url), retired: e.retired, recent: recent.endpoint(u.config.name, e.name) };
          }),
        };
      })
    : [];
  return {
    now,
    config: snapshot
      ? { loaded: true, generation: snapshot.generation, source: snapshot.source, appliedAt: snapshot.appliedAt, lastRejection: runtime.lastRejection ?? null }
      : { loaded: false, generation: 0, source: null, appliedAt: null, lastRejection: runtime.lastRejection ?? null },
    readiness: { ready: readiness.ready, reason: readiness.reason, policy: readiness.policy, unreadyAfterMs: readiness.unreadyAfterMs },
    liveness,
    recentWindowMs: recent.windowMs,
    upstreams,
  };
}

export type DebugState = ReturnType<typeof debugState>;
