// Cross-field rules, each written once: its CEL expression (generated into the CRD's
// x-kubernetes-validations at `at`) and its TypeScript check (run by the file source and by
// compile). A test sends the same fixtures to the real API server and to validateDocument()
// and requires identical verdicts, so the two halves of a rule cannot drift apart silently.
import { DEFAULTS } from './defaults.ts';
import { parseDuration } from './duration.ts';
import type { Spec, EndpointSpec, AuthSpec } from './schema.ts';
import { celString, ENDPOINT_URL_PATTERN, redactUrl, URL_USERINFO_PATTERN } from './url.ts';

export interface Violation {
  /** e.g. spec.endpoints[2].url */
  path: string;
  message: string;
}

export interface CrossFieldRule {
  name: string;
  /** schema location of the CEL rule: dotted, `[]` for "each item" (e.g. spec.endpoints[].auth) */
  at: string;
  cel: string;
  message: string;
  /** optional: the field the API server's error names, relative to `at` (CEL fieldPath, e.g. `.url`) */
  fieldPath?: string;
  check(spec: Spec): Violation[];
}

const backoffDefaults = DEFAULTS.retry.backoff;
const healthDefaults = DEFAULTS.healthCheck;

/**
 * An http URL whose host is a 127.x.y.z literal. Matched on the URL itself, by CEL and by TS
 * alike: a regex on CEL's url().getHostname() (a string of unknown length) exceeds the API
 * server's CEL cost budget, while self.url has a maxLength.
 */
const LOOPBACK_V4_URL = '^http://127[.][0-9]+[.][0-9]+[.][0-9]+(:[0-9]+)?([/?#]|$)';

function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' ||
    host === '::1' ||
    host.endsWith('.svc') ||
    host.endsWith('.svc.cluster.local')
  );
}

/**
 * A plain-http URL to this pod or this cluster (loopback, `*.svc`, `*.svc.cluster.local`): the
 * only hosts that may be reached without TLS and without `insecure: true`, and the ones the
 * data plane never sends through an egress proxy.
 */
export function isLocalHttpUrl(url: string): boolean {
  if (!url.startsWith('http://')) return false;
  if (new RegExp(LOOPBACK_V4_URL).test(url)) return true;
  // as in CEL, where isURL() is false: not a URL is not a local URL (endpoint-url-well-formed says why)
  const hostname = URL.parse(url)?.hostname;
  return hostname !== undefined && isLocalHost(hostname);
}

function eachEndpoint(spec: Spec, fn: (e: EndpointSpec, i: number) => Violation | undefined): Violation[] {
  const out: Violation[] = [];
  spec.endpoints.forEach((e, i) => {
    const v = fn(e, i);
    if (v) out.push(v);
  });
  return out;
}

function authSources(auth: AuthSpec): number {
  return Number(auth.secretRef !== undefined) + Number(auth.env !== undefined) + Number(auth.file !== undefined);
}

const HEADER_NAME = '^[A-Za-z0-9_.-]+$';

export const RULES: readonly CrossFieldRule[] = [
  {
    // a bad header would make every request to the endpoint fail locally, looking like an outage
    name: 'header-names-and-values',
    at: 'spec.endpoints[].headers',
    cel: `self.all(k, k.matches('${HEADER_NAME}') && !self[k].contains('\\n') && !self[k].contains('\\r'))`,
    message: 'header names may use only letters, digits, "-", "_" and "."; values may not contain line breaks',
    check(spec) {
      const name = new RegExp(HEADER_NAME);
      return eachEndpoint(spec, (e, i) => {
        const bad = Object.entries(e.headers ?? {}).find(([k, v]) => !name.test(k) || /[\r\n]/.test(v));
        return bad ? { path: `spec.endpoints[${i}].headers`, message: `header "${bad[0]}": ${this.message}` } : undefined;
      });
    },
  },
  {
    name: 'unique-endpoint-names',
    at: 'spec.endpoints',
    cel: 'self.all(e, self.exists_one(f, f.name == e.name))',
    message: 'endpoint names must be unique within an upstream',
    check(spec) {
      const seen = new Set<string>();
      return eachEndpoint(spec, (e, i) => {
        if (seen.has(e.name)) return { path: `spec.endpoints[${i}].name`, message: `duplicate endpoint name "${e.name}": ${this.message}` };
        seen.add(e.name);
        return undefined;
      });
    },
  },
  {
    // a password in the URL would be printed wherever the URL is, and sent to any proxy; keys go in auth
    name: 'endpoint-url-without-credentials',
    at: 'spec.endpoints[]',
    cel: `!self.url.matches(${celString(URL_USERINFO_PATTERN)})`,
    message: 'url may not carry user info (user:password@); put the key in auth',
    fieldPath: '.url',
    check(spec) {
      const userinfo = new RegExp(URL_USERINFO_PATTERN);
      return eachEndpoint(spec, (e, i) => (userinfo.test(e.url) ? { path: `spec.endpoints[${i}].url`, message: this.message } : undefined));
    },
  },
  {
    // One grammar for both validators (url.ts): Go's and WHATWG's URL parsers disagree at the
    // edges (a port above 65535, a bad %-escape), so neither is the rule; both accept every match.
    name: 'endpoint-url-well-formed',
    at: 'spec.endpoints[]',
    cel: `self.url.matches(${celString(ENDPOINT_URL_PATTERN)})`,
    message:
      'url must be http(s)://host[:port][/path][?query]: a DNS name, an IPv4 address or an [IPv6] address, a port from 0 to 65535, "%" only as %XX, no #fragment',
    fieldPath: '.url',
    check(spec) {
      const grammar = new RegExp(ENDPOINT_URL_PATTERN);
      return eachEndpoint(spec, (e, i) => (grammar.test(e.url) && URL.canParse(e.url) ? undefined : { path: `spec.endpoints[${i}].url`, message: `${redactUrl(e.url)}: ${this.message}` }));
    },
  },
  {
    name: 'https-unless-local',
    at: 'spec.endpoints[]',
    cel:
      `self.url.startsWith('https://') || (has(self.insecure) && self.insecure) || self.url.matches('${LOOPBACK_V4_URL}') || (isURL(self.url) && (` +
      "url(self.url).getHostname() == 'localhost' || url(self.url).getHostname() == '::1' || " +
      "url(self.url).getHostname().endsWith('.svc') || " +
      "url(self.url).getHostname().endsWith('.svc.cluster.local')))",
    message: 'url must use https unless the host is loopback or a cluster-local .svc name, or the endpoint sets insecure: true',
    fieldPath: '.url',
    check(spec) {
      return eachEndpoint(spec, (e, i) => {
        if (e.url.startsWith('https://') || e.insecure === true || isLocalHttpUrl(e.url)) return undefined;
        return { path: `spec.endpoints[${i}].url`, message: this.message };
      });
    },
  },
  {
    name: 'auth-one-source',
    at: 'spec.endpoints[].auth',
    cel: "(has(self.secretRef) ? 1 : 0) + (has(self.env) ? 1 : 0) + (has(self.file) ? 1 : 0) == 1",
    message: 'auth needs exactly one of secretRef, env or file',
    check(spec) {
      return eachEndpoint(spec, (e, i) =>
        e.auth && authSources(e.auth) !== 1 ? { path: `spec.endpoints[${i}].auth`, message: this.message } : undefined,
      );
    },
  },
  {
    name: 'backoff-max-not-below-initial',
    at: 'spec.retry.backoff',
    cel: `duration(has(self.max) ? self.max : '${backoffDefaults.max}') >= duration(has(self.initial) ? self.initial : '${backoffDefaults.initial}')`,
    message: `backoff.max must be at least backoff.initial (defaults: initial ${backoffDefaults.initial}, max ${backoffDefaults.max})`,
    fieldPath: '.max',
    check(spec) {
      const b = spec.retry?.backoff;
      if (!b) return [];
      const initial = parseDuration(b.initial ?? backoffDefaults.initial);
      const max = parseDuration(b.max ?? backoffDefaults.max);
      return max >= initial ? [] : [{ path: 'spec.retry.backoff.max', message: this.message }];
    },
  },
  {
    name: 'unique-fallback-models',
    at: 'spec.fallbacks',
    cel: 'self.all(f, self.exists_one(g, g.model == f.model))',
    message: 'each model may have only one fallback chain',
    check(spec) {
      const seen = new Set<string>();
      const out: Violation[] = [];
      (spec.fallbacks ?? []).forEach((f, i) => {
        if (seen.has(f.model)) out.push({ path: `spec.fallbacks[${i}].model`, message: `"${f.model}" has two chains: ${this.message}` });
        seen.add(f.model);
      });
      return out;
    },
  },
  {
    // Chains are flat: a chain lists every model to try, and a model inside a chain has no
    // chain of its own. That rules out every cycle (A->B->A, A->A) with a check CEL can afford.
    name: 'fallback-chains-acyclic',
    at: 'spec.fallbacks',
    cel: 'self.all(f, f.chain.all(c, c.model != f.model && !self.exists(g, g.model == c.model)))',
    message: 'fallback chains must not form a cycle: a chain may not contain its own model, nor a model that has a chain of its own (list the whole chain under the first model)',
    check(spec) {
      const sources = new Set((spec.fallbacks ?? []).map((f) => f.model));
      const out: Violation[] = [];
      (spec.fallbacks ?? []).forEach((f, i) => {
        f.chain.forEach((c, j) => {
          if (c.model === f.model || sources.has(c.model)) {
            out.push({ path: `spec.fallbacks[${i}].chain[${j}].model`, message: `"${f.model}" -> "${c.model}": ${this.message}` });
          }
        });
      });
      return out;
    },
  },
  {
    // probes of open endpoints every few milliseconds would be load, not a check
    name: 'health-check-interval-at-least-1s',
    at: 'spec.healthCheck',
    cel: `duration(has(self.interval) ? self.interval : '${healthDefaults.interval}') >= duration('1s')`,
    message: 'healthCheck.interval must be at least 1s',
    fieldPath: '.interval',
    check(spec) {
      const h = spec.healthCheck;
      return h && parseDuration(h.interval ?? healthDefaults.interval) < 1000 ? [{ path: 'spec.healthCheck.interval', message: this.message }] : [];
    },
  },
  {
    // a probe that may outlast its interval would overlap the next
    name: 'health-check-timeout-within-interval',
    at: 'spec.healthCheck',
    cel: `duration(has(self.timeout) ? self.timeout : '${healthDefaults.timeout}') <= duration(has(self.interval) ? self.interval : '${healthDefaults.interval}')`,
    message: `healthCheck.timeout must be at most healthCheck.interval (defaults: interval ${healthDefaults.interval}, timeout ${healthDefaults.timeout})`,
    fieldPath: '.timeout',
    check(spec) {
      const h = spec.healthCheck;
      if (!h) return [];
      const interval = parseDuration(h.interval ?? healthDefaults.interval);
      const timeout = parseDuration(h.timeout ?? healthDefaults.timeout);
      return timeout <= interval ? [] : [{ path: 'spec.healthCheck.timeout', message: this.message }];
    },
  },
];

export function checkRules(spec: Spec): Violation[] {
  return RULES.flatMap((rule) => rule.check(spec));
}
