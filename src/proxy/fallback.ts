// Model fallback: the targets a request may be served by (the requested model, then its
// configured chain) and the body each (endpoint, target) is sent with. The original bytes are
// sent unless the model name or the max-tokens cap changes, so the common case copies nothing.
import type { FallbackStep } from '../config/runtime.ts';
import type { ProxyRequest } from './attempt.ts';
import type { EndpointRuntime } from './endpoint.ts';

export interface Target {
  model: string | undefined;
  maxTokens: number | undefined;
  fallback: boolean;
}

export function targetsFor(req: ProxyRequest): Target[] {
  const first: Target = { model: req.model, maxTokens: undefined, fallback: false };
  if (!req.fallbackAllowed || req.model === undefined) return [first];
  const chain: readonly FallbackStep[] = req.upstream.config.fallbacks.get(req.model) ?? [];
  return [first, ...chain.map((s) => ({ model: s.model, maxTokens: s.maxTokens, fallback: true }))];
}

/** The body for one (endpoint, target): the original bytes unless the model or max tokens change. */
export function bodyFor(req: ProxyRequest, endpoint: EndpointRuntime, target: Target): ProxyRequest['body'] {
  if (req.json === undefined || target.model === undefined) return req.body;
  const model = req.upstream.configOf(endpoint).models.get(target.model) ?? target.model;
  if (model === req.json.model && target.maxTokens === undefined) return req.body; // the common case: no copy
  let changed = model !== req.json.model;
  const rewritten: Record<string, unknown> = { ...req.json, model };
  if (target.maxTokens !== undefined) {
    for (const field of req.upstream.dialect.maxTokenFields) {
      const value = rewritten[field];
      // cap, never inject: a field the app did not send stays unsent
      if (typeof value === 'number' && value > target.maxTokens) {
        rewritten[field] = target.maxTokens;
        changed = true;
      }
    }
  }
  return changed ? Buffer.from(JSON.stringify(rewritten)) : req.body;
}
