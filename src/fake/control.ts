// The control API under /_fake/: fault rules, stats, lockstep acks.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultRule, RuleSet } from './faults.ts';
import { readBody } from './io.ts';
import type { Lockstep } from './lockstep.ts';
import { validateQuota, type Quota } from './quota.ts';
import type { Stats } from './stats.ts';

export interface ControlDeps {
  rules: RuleSet;
  stats: Stats;
  lockstep: Lockstep;
  quota: Quota;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/** `{...rule}`, `{ "rules": [...] }` or `[...]` → the list of rules (validated by RuleSet). */
export function rulesFromBody(body: unknown): FaultRule[] {
  if (Array.isArray(body)) return body as FaultRule[];
  if (typeof body === 'object' && body !== null && 'rules' in body) {
    const rules = (body as { rules: unknown }).rules;
    if (!Array.isArray(rules)) throw new Error('"rules" must be an array');
    return rules as FaultRule[];
  }
  return [body as FaultRule];
}

export async function control(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  deps: ControlDeps,
): Promise<void> {
  const raw = await readBody(req);
  if (raw === null) return;
  const method = req.method ?? 'GET';
  const sub = path.slice('/_fake/'.length).replace(/\/$/, '');

  if (sub === 'faults') {
    if (method === 'GET') return reply(res, 200, { rules: deps.rules.list() });
    if (method === 'DELETE') {
      deps.rules.clear();
      return reply(res, 200, { rules: [] });
    }
    if (method === 'POST' || method === 'PUT') {
      try {
        deps.rules.replace(rulesFromBody(JSON.parse(raw.toString() || 'null')));
      } catch (e) {
        return reply(res, 400, { error: `bad fault rules: ${(e as Error).message}` });
      }
      return reply(res, 200, { rules: deps.rules.list() });
    }
  }
  if (sub === 'quota' && method === 'DELETE') {
    deps.quota.set(null);
    return reply(res, 200, { ok: true });
  }
  if (sub === 'quota' && (method === 'POST' || method === 'PUT')) {
    try {
      deps.quota.set(validateQuota(JSON.parse(raw.toString() || 'null')));
    } catch (e) {
      return reply(res, 400, { error: `bad quota: ${(e as Error).message}` });
    }
    return reply(res, 200, { ok: true });
  }
  if (sub === 'stats' && method === 'GET') return reply(res, 200, deps.stats.snapshot());
  if (sub === 'stats/reset' && method === 'POST') {
    deps.stats.reset();
    return reply(res, 200, { ok: true });
  }
  if (sub.startsWith('ack/') && method === 'POST') {
    deps.lockstep.ack(decodeURIComponent(sub.slice(4)));
    return reply(res, 200, { ok: true });
  }
  if (sub === 'health' && method === 'GET') return reply(res, 200, { ok: true, name: deps.stats.name });
  return reply(res, 404, { error: `unknown control route ${method} /_fake/${sub}` });
}
