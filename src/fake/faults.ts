// Fault specs (a typed, table-driven union) and the run-time rule list.

/** Which error a status-style fault stands for; each dialect maps it to its own body. */
export type ErrorFlavor =
  | 'rate_limit'
  | 'quota'
  | 'context'
  | 'invalid'
  | 'auth'
  | 'permission'
  | 'not_found'
  | 'too_large'
  | 'unprocessable'
  | 'server'
  | 'overloaded';

/** Faults that are not an error status: how the answer is (mis)delivered. */
export type Behaviour =
  | 'none'
  | 'hang'
  | 'slow'
  | 'reset-before-headers'
  | 'reset-after-headers'
  | 'reset-mid-stream'
  | 'stall'
  | 'no-terminal'
  | 'malformed-json'
  | 'empty-choices'
  | 'error-in-200'
  | 'comment-then-reset'
  | 'error-after-start'
  | 'error-mid-stream'
  | 'endless-event'
  | 'endless-event-mid-stream'
  | 'endless-comments'
  | 'bare-cr'
  | 'gzip-bomb';

export type FaultSpec =
  | { readonly kind: 'error'; readonly name: string; readonly status: number; readonly flavor: ErrorFlavor }
  | { readonly kind: Behaviour; readonly name: string };

/** A rule set at run time through the control API (or `FakeProvider.setFault`). */
export interface FaultRule {
  /** A fault spec name (see FAULT_NAMES, or `status:NNN`); default `none`. */
  fault?: string;
  /** Apply to the next N matching requests, then the rule is removed. Default: forever. */
  times?: number;
  /** Only requests whose body `model` equals this. */
  model?: string;
  /** Only requests whose path ends with this (e.g. `embeddings`, `chat/completions`). */
  path?: string;
  /** Seconds for a `retry-after` header on error responses. */
  retryAfter?: number;
  /** Milliseconds for a `retry-after-ms` header on error responses. */
  retryAfterMs?: number;
  /** Delay before each content event (and before a JSON body). */
  delayMs?: number;
  /** Gzip the response (when the request accepts gzip). */
  gzip?: boolean;
  /** Lockstep streaming; the stream id comes from `x-fake-stream-id` or the request counter. */
  lockstep?: boolean;
  /** Number of content events in a stream. */
  events?: number;
}

const behaviour = (name: Behaviour): FaultSpec => ({ kind: name, name });
const error = (name: string, status: number, flavor: ErrorFlavor): FaultSpec => ({
  kind: 'error',
  name,
  status,
  flavor,
});

const BEHAVIOURS: readonly Behaviour[] = [
  'none',
  'hang',
  'slow',
  'reset-before-headers',
  'reset-after-headers',
  'reset-mid-stream',
  'stall',
  'no-terminal',
  'malformed-json',
  'empty-choices',
  'error-in-200',
  'comment-then-reset',
  'error-after-start',
  'error-mid-stream',
  'endless-event',
  'endless-event-mid-stream',
  'endless-comments',
  'bare-cr',
  'gzip-bomb',
];

const FIXED = new Map<string, FaultSpec>([
  ...BEHAVIOURS.map((b) => [b, behaviour(b)] as const),
  ['429', error('429', 429, 'rate_limit')],
  ['429-quota', error('429-quota', 429, 'quota')],
  ['400-context', error('400-context', 400, 'context')],
  ['500', error('500', 500, 'server')],
  ['502', error('502', 502, 'server')],
  ['503', error('503', 503, 'server')],
  ['504', error('504', 504, 'server')],
  ['529', error('529', 529, 'overloaded')],
]);

/** Every fixed spec name; `status:NNN` (or a bare `NNN`, any 400-599) comes on top. */
export const FAULT_NAMES: readonly string[] = [...FIXED.keys()];

export const NONE: FaultSpec = FIXED.get('none')!;

const STATUS_FLAVOR: ReadonlyMap<number, ErrorFlavor> = new Map<number, ErrorFlavor>([
  [400, 'invalid'],
  [401, 'auth'],
  [403, 'permission'],
  [404, 'not_found'],
  [413, 'too_large'],
  [422, 'unprocessable'],
  [429, 'rate_limit'],
  [529, 'overloaded'],
]);

export function flavorForStatus(status: number): ErrorFlavor {
  return STATUS_FLAVOR.get(status) ?? (status >= 500 ? 'server' : 'invalid');
}

const parsed = new Map<string, FaultSpec | null>();

/** Parse a spec name; null when unknown. Results are cached (header values repeat). */
export function parseFault(raw: string): FaultSpec | null {
  const hit = parsed.get(raw);
  if (hit !== undefined) return hit;
  const name = raw.trim();
  let spec: FaultSpec | null = FIXED.get(name) ?? null;
  if (!spec) {
    const m = /^(?:status:)?(\d{3})$/.exec(name);
    const status = m ? Number(m[1]) : NaN;
    if (status >= 400 && status <= 599) spec = error(name, status, flavorForStatus(status));
  }
  if (parsed.size < 1000) parsed.set(raw, spec);
  return spec;
}

const RULE_KEYS = new Set([
  'fault',
  'times',
  'model',
  'path',
  'retryAfter',
  'retryAfterMs',
  'delayMs',
  'gzip',
  'lockstep',
  'events',
]);

function isNonNegative(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Validate an untrusted rule; throws an Error whose message says what is wrong. */
export function validateRule(input: unknown): FaultRule {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new Error('a fault rule must be a JSON object');
  }
  const r = input as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) throw new Error(`unknown rule field "${k}"`);
  const fault = r.fault ?? 'none';
  if (typeof fault !== 'string' || !parseFault(fault)) {
    throw new Error(`unknown fault "${String(fault)}"; known: ${FAULT_NAMES.join(', ')}, status:NNN`);
  }
  if (r.times !== undefined && !(Number.isInteger(r.times) && (r.times as number) > 0)) {
    throw new Error('"times" must be a positive integer');
  }
  for (const k of ['model', 'path'] as const) {
    if (r[k] !== undefined && typeof r[k] !== 'string') throw new Error(`"${k}" must be a string`);
  }
  for (const k of ['retryAfter', 'retryAfterMs', 'delayMs', 'events'] as const) {
    if (r[k] !== undefined && !isNonNegative(r[k])) throw new Error(`"${k}" must be a non-negative number`);
  }
  for (const k of ['gzip', 'lockstep'] as const) {
    if (r[k] !== undefined && typeof r[k] !== 'boolean') throw new Error(`"${k}" must be a boolean`);
  }
  return { ...(r as FaultRule), fault };
}

interface ActiveRule {
  readonly rule: FaultRule;
  readonly spec: FaultSpec;
  remaining: number;
}

/** An ordered list of rules; the first that matches a request wins and is consumed once. */
export class RuleSet {
  private rules: ActiveRule[] = [];

  replace(rules: readonly FaultRule[]): void {
    const next = rules.map((raw) => {
      const rule = validateRule(raw);
      return { rule, spec: parseFault(rule.fault!)!, remaining: rule.times ?? Infinity };
    });
    this.rules = next;
  }

  clear(): void {
    this.rules = [];
  }

  list(): FaultRule[] {
    return this.rules.map((a) =>
      a.remaining === Infinity ? { ...a.rule } : { ...a.rule, times: a.remaining },
    );
  }

  /** The first matching rule, with one use consumed; null when none matches. */
  take(path: string, model: string | undefined): ActiveRule | null {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const a = rules[i]!;
      if (a.rule.model !== undefined && a.rule.model !== model) continue;
      if (a.rule.path !== undefined && !path.endsWith(a.rule.path)) continue;
      if (--a.remaining <= 0) this.rules = rules.filter((x) => x !== a);
      return a;
    }
    return null;
  }
}
