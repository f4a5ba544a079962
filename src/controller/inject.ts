// The injection decision as a pure function: pod + sidecar container → JSON Patch + warnings.
// No I/O, no clock, so every case (labelled or not, injected twice, a variable the app already
// sets, a bad annotation) is a plain unit test. The webhook server (webhook.ts) only decodes
// AdmissionReviews and calls this.
import { PROXY_PORT_NAME, SIDECAR_NAME, type SidecarContainer } from '../cli.ts';

export const INJECT_LABEL = 'breakwater.dev/inject';
export const INJECT_VALUE = 'enabled';
export const ENV_ANNOTATION = 'breakwater.dev/env';

/** The parts of a core/v1 Pod the injector reads (the rest passes through untouched). */
export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
}

export interface ContainerLike {
  name?: string;
  env?: { name?: string; value?: string }[];
}

export type PatchOp = { op: 'add'; path: string; value: unknown };

export type InjectionResult = 'injected' | 'skipped' | 'already_injected';

export interface Injection {
  result: InjectionResult;
  /** empty unless result is injected */
  patch: PatchOp[];
  /** shown by kubectl (admission warnings); never blocks the pod */
  warnings: string[];
}

/** One VAR=upstream pair of the env annotation. */
export interface EnvBinding {
  variable: string;
  upstream: string;
}

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** an LLMUpstream's metadata.name (DNS-1123 subdomain), which is the route prefix */
const UPSTREAM = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `OPENAI_BASE_URL=openai,ANTHROPIC_BASE_URL=claude` → bindings, or the reason it is not. */
export function parseEnvAnnotation(value: string): { ok: true; bindings: EnvBinding[] } | { ok: false; reason: string } {
  const bindings: EnvBinding[] = [];
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) return { ok: false, reason: 'it is empty' };
  if (items.length > 32) return { ok: false, reason: 'more than 32 variables' };
  for (const item of items) {
    const eq = item.indexOf('=');
    const variable = eq < 0 ? item : item.slice(0, eq).trim();
    const upstream = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (!VARIABLE.test(variable)) return { ok: false, reason: `"${clip(variable)}" is not an environment variable name` };
    if (!UPSTREAM.test(upstream)) return { ok: false, reason: `"${clip(item)}" does not name an LLMUpstream (VAR=upstream)` };
    if (bindings.some((b) => b.variable === variable)) return { ok: false, reason: `${variable} is named twice` };
    bindings.push({ variable, upstream });
  }
  return { ok: true, bindings };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * What to do with this pod. Labelled `breakwater.dev/inject: enabled` and not yet injected:
 * the sidecar goes first among the init containers (so it starts before the others and the app),
 * and each variable of `breakwater.dev/env` is set on every app container that does not set it
 * already (regular init containers run before the sidecar is useful to them: left alone).
 */
export function injection(pod: PodLike, sidecar: SidecarContainer): Injection {
  if (pod.metadata?.labels?.[INJECT_LABEL] !== INJECT_VALUE) return { result: 'skipped', patch: [], warnings: [] };
  const inits = pod.spec?.initContainers ?? [];
  const containers = pod.spec?.containers ?? [];
  if (inits.some((c) => c.name === SIDECAR_NAME) || containers.some((c) => c.name === SIDECAR_NAME)) {
    return { result: 'already_injected', patch: [], warnings: [] };
  }
  const patch: PatchOp[] = [
    inits.length === 0
      ? { op: 'add', path: '/spec/initContainers', value: [sidecar] }
      : { op: 'add', path: '/spec/initContainers/0', value: sidecar },
  ];
  const warnings: string[] = [];
  const annotation = pod.metadata?.annotations?.[ENV_ANNOTATION];
  if (annotation !== undefined) {
    const parsed = parseEnvAnnotation(annotation);
    if (!parsed.ok) {
      warnings.push(`breakwater: annotation ${ENV_ANNOTATION} ignored: ${parsed.reason}; expected VAR=upstream[,VAR=upstream]`);
    } else {
      const port = sidecar.ports.find((p) => p.name === PROXY_PORT_NAME)?.containerPort ?? 7878;
      for (const [i, container] of containers.entries()) {
        const missing: { name: string; value: string }[] = [];
        for (const { variable, upstream } of parsed.bindings) {
          if (container.env?.some((e) => e.name === variable)) {
            warnings.push(`breakwater: container ${container.name ?? i} sets ${variable} itself; kept its value (not http://127.0.0.1:${port}/${upstream})`);
          } else {
            missing.push({ name: variable, value: `http://127.0.0.1:${port}/${upstream}` });
          }
        }
        if (missing.length === 0) continue;
        const base = `/spec/containers/${i}/env`;
        if (container.env === undefined) patch.push({ op: 'add', path: base, value: missing });
        else for (const v of missing) patch.push({ op: 'add', path: `${base}/-`, value: v });
      }
    }
  }
  return { result: 'injected', patch, warnings };
}
