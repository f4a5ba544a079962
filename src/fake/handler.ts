// One provider request: account for it, read and parse the body, resolve its fault plan,
// record it, and hand it to respond.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Ctx } from './content.ts';
import { NONE, type RuleSet } from './faults.ts';
import { resolvePlan, UnknownFaultError, type RequestPlan } from './plan.ts';
import { readBody } from './io.ts';
import type { Lockstep } from './lockstep.ts';
import { OVER_QUOTA, type Quota } from './quota.ts';
import { answer, type Live } from './respond.ts';
import { route } from './routes.ts';
import type { Stats } from './stats.ts';

export interface HandlerDeps {
  name: string;
  stats: Stats;
  rules: RuleSet;
  lockstep: Lockstep;
  /** the provider-side rate limit, when one is set */
  quota: Quota;
  /** The next request number (1, 2, …). */
  nextNumber(): number;
}

const DEFAULT_MODEL = 'fake-model';
const BAD_BODY = 'We could not parse the JSON body of your request.';

function parseBody(raw: Buffer): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(raw.toString());
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return null;
  }
}

export function providerHandler(deps: HandlerDeps) {
  const { name, stats, rules, lockstep, quota } = deps;

  return async function provider(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    stats.enter();
    const live: Live = { closed: false, wake: null };
    let streamId: string | null = null;
    res.once('close', () => {
      live.closed = true;
      stats.leave();
      live.wake?.();
      if (streamId !== null) lockstep.release(streamId);
    });

    const method = req.method ?? 'GET';
    const r = route(method, path, req.headers);
    const raw = await readBody(req);
    if (raw === null || live.closed) return;

    let body: Record<string, unknown> | null = {};
    const contentType = req.headers['content-type'];
    if (r.json || (raw.length > 0 && contentType !== undefined && contentType.includes('json'))) body = parseBody(raw);
    const badBody = body === null;
    body ??= {};

    const model = typeof body.model === 'string' ? body.model : undefined;
    const n = deps.nextNumber();
    const ctx: Ctx = {
      model: model ?? DEFAULT_MODEL,
      modelJson: JSON.stringify(model ?? DEFAULT_MODEL),
      n,
      created: Math.floor(Date.now() / 1000),
      events: 0,
      promptTokens: Math.max(1, Math.ceil(raw.length / 4)),
      body,
      lastSegment: path.slice(path.lastIndexOf('/') + 1),
    };
    const dialect = r.endpoint.dialect;
    const headers = { ...dialect.headers(ctx), 'x-fake-provider': name };
    const stream = body.stream === true && r.endpoint.stream !== undefined;

    // A malformed body never consumes a rule.
    let plan: RequestPlan | null = null;
    let rejection = BAD_BODY;
    if (!badBody) {
      try {
        plan = resolvePlan(req.headers, path, model, rules, n);
      } catch (e) {
        if (!(e instanceof UnknownFaultError)) throw e;
        rejection = e.message;
      }
    }
    if (plan !== null && quota.active) {
      // charged on arrival, like a provider: 1 request, the prompt and the output cap
      const charged = quota.charge(ctx.promptTokens + (maxTokensOf(body).maxTokens ?? plan.events), dialect.name);
      Object.assign(headers, charged.headers);
      if (charged.overMs !== undefined) plan = { ...plan, fault: OVER_QUOTA, retryAfterMs: charged.overMs };
    }
    stats.record({
      method,
      path,
      model: model ?? null,
      fault: plan?.fault.name ?? NONE.name,
      headers: req.headers,
      stream,
      ...maxTokensOf(body ?? {}),
      ...(plan?.lockstep != null ? { streamId: plan.lockstep } : {}),
      at: Date.now(),
    });
    if (plan === null) {
      const e = dialect.error('invalid', 400, ctx, rejection);
      res.writeHead(e.status, { ...headers, 'content-type': 'application/json' });
      res.end(e.body);
      return;
    }
    ctx.events = plan.events;
    streamId = plan.lockstep;
    await answer({ res, endpoint: r.endpoint, ctx, plan, headers, lockstep, live }, stream);
  };
}

function maxTokensOf(body: Record<string, unknown>): { maxTokens?: number } {
  for (const field of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
    if (typeof body[field] === 'number') return { maxTokens: body[field] as number };
  }
  return {};
}
