// Per-request resolution of "what should this request get": fault, delays, gzip,
// lockstep and event count, from the x-fake-* headers and the first matching rule.
import type { IncomingHttpHeaders } from 'node:http';
import { NONE, parseFault, type FaultRule, type FaultSpec, type RuleSet } from './faults.ts';

export type GzipMode = 'off' | 'on' | 'force';

/** Everything that shapes one request's answer, resolved once. */
export interface RequestPlan {
  fault: FaultSpec;
  retryAfter: number | undefined;
  retryAfterMs: number | undefined;
  delayMs: number;
  gzip: GzipMode;
  /** Stream id when lockstep streaming is on, else null. */
  lockstep: string | null;
  events: number;
}

const DEFAULT_EVENTS = 5;
const MAX_EVENTS = 100_000;
const SLOW_DEFAULT_DELAY_MS = 200;

function headerNumber(h: string | string[] | undefined): number | undefined {
  if (typeof h !== 'string' || h === '') return undefined;
  const n = Number(h);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export class UnknownFaultError extends Error {}

/**
 * Resolve the plan for one request. Headers win over a rule, field by field;
 * a rule is only consulted (and consumed) when the request has no `x-fake-fault`.
 */
export function resolvePlan(
  headers: IncomingHttpHeaders,
  path: string,
  model: string | undefined,
  rules: RuleSet,
  requestNumber: number,
): RequestPlan {
  const faultHeader = headers['x-fake-fault'];
  let fault: FaultSpec = NONE;
  let rule: FaultRule | undefined;
  if (typeof faultHeader === 'string') {
    const spec = parseFault(faultHeader);
    if (!spec) throw new UnknownFaultError(`breakwater fake: unknown fault "${faultHeader}"`);
    fault = spec;
  } else {
    const active = rules.take(path, model);
    if (active) {
      fault = active.spec;
      rule = active.rule;
    }
  }

  const delayMs =
    headerNumber(headers['x-fake-delay-ms']) ??
    rule?.delayMs ??
    (fault.kind === 'slow' ? SLOW_DEFAULT_DELAY_MS : 0);

  const events = Math.min(
    MAX_EVENTS,
    Math.floor(headerNumber(headers['x-fake-events']) ?? rule?.events ?? DEFAULT_EVENTS),
  );

  let gzip: GzipMode = 'off';
  const gz = headers['x-fake-gzip'];
  if (gz === 'force') gzip = 'force';
  else if (gz === '1' || gz === 'true' || (gz === undefined && rule?.gzip)) {
    const accept = headers['accept-encoding'];
    if (typeof accept === 'string' && /\bgzip\b/.test(accept)) gzip = 'on';
  }

  let lockstep: string | null = null;
  const ls = headers['x-fake-lockstep'];
  if (typeof ls === 'string' && ls !== '') lockstep = ls;
  else if (rule?.lockstep) {
    const sid = headers['x-fake-stream-id'];
    lockstep = typeof sid === 'string' && sid !== '' ? sid : String(requestNumber);
  }

  return {
    fault,
    retryAfter: headerNumber(headers['x-fake-retry-after']) ?? rule?.retryAfter,
    retryAfterMs: headerNumber(headers['x-fake-retry-after-ms']) ?? rule?.retryAfterMs,
    delayMs,
    gzip,
    lockstep,
    events,
  };
}
