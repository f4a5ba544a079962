// The middle layer of tests: the attempt loop, forward and the gates in process, on virtual
// time (vitest's fake timers drive the system clock), against a scripted dispatcher instead of
// sockets, with zero jitter. One `upstream({...})` spec builder, one seeded random generator.
import type { Dispatcher } from 'undici';
import { systemClock } from '../../src/clock.ts';
import { compileUpstream } from '../../src/config/compile.ts';
import { Secret } from '../../src/config/runtime.ts';
import type { UpstreamDocument } from '../../src/config/schema.ts';
import type { Priority } from '../../src/proxy/admission.ts';
import { runAttempts, type Answer, type GiveUp, type ProxyRequest } from '../../src/proxy/attempt.ts';
import { deadlineFor } from '../../src/proxy/retry.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import type { UpstreamRuntime } from '../../src/proxy/upstream.ts';
import { silentLogger } from '../../src/telemetry/log.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

/** An LLMUpstream document for tests: endpoints `e0`, `e1`, ... at http://127.0.0.1:9/<name>, in priority order. */
export function upstream(spec: { name?: string; endpoints?: number; each?: Record<string, unknown>; [field: string]: unknown } = {}): UpstreamDocument {
  const { name = 'u', endpoints = 2, each = {}, ...rest } = spec;
  return {
    apiVersion: 'breakwater.dev/v1alpha1',
    kind: 'LLMUpstream',
    metadata: { name },
    spec: {
      endpoints: Array.from({ length: endpoints }, (_, i) => ({ name: `e${i}`, url: `http://127.0.0.1:9/e${i}`, priority: i, ...each })),
      ...rest,
    },
  } as UpstreamDocument;
}


/** What an endpoint does with one attempt. */
export { seeded } from './random.ts';

export type Scripted =
  | { status: number; body?: string; headers?: Record<string, string> }
  /** never answers (until the attempt is aborted) */
  | 'hang'
  /** answers after ms of virtual time */
  | { after: number; then: Scripted }
  /** a transport error with this code */
  | { error: string };

export type Script = (endpoint: string, call: number) => Scripted;

const OK_BODY = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }] });
export const ok: Scripted = { status: 200, body: OK_BODY, headers: { 'content-type': 'application/json' } };
export const fail = (status: number, headers: Record<string, string> = {}, body = '{"error":{"message":"x","type":"server_error","code":null}}'): Scripted => ({
  status,
  body,
  headers: { 'content-type': 'application/json', ...headers },
});

/** Calls and concurrency seen by one endpoint. */
export interface EndpointCalls {
  calls: number;
  inflight: number;
  peak: number;
}

/**
 * A dispatcher that answers by script. Endpoints on one origin share one pool (as in
 * production), so the endpoint is read from the request path's first segment (`/e0/...`).
 */
class ScriptedDispatcher {
  readonly #script: Script;
  readonly #seen: Map<string, EndpointCalls>;

  constructor(script: Script, seen: Map<string, EndpointCalls>) {
    this.#script = script;
    this.#seen = seen;
  }

  /** undici's handler protocol: start, then status and headers, then the body while not paused, then the end */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const name = options.path.split('/')[1] ?? '';
    let seen = this.#seen.get(name);
    if (!seen) this.#seen.set(name, (seen = { calls: 0, inflight: 0, peak: 0 }));
    const step = this.#script(name, seen.calls++);
    seen.inflight++;
    seen.peak = Math.max(seen.peak, seen.inflight);
    const counted = seen;
    const controller = new ScriptedController(handler);
    handler.onRequestStart?.(controller, {});
    void this.#play(step, controller)
      .then(async (answer) => {
        if (controller.aborted) return;
        handler.onResponseStart?.(controller, answer.status, answer.headers ?? {});
        await controller.flowing();
        if (controller.aborted) return;
        handler.onResponseData?.(controller, Buffer.from(answer.body ?? ''));
        await controller.flowing();
        if (controller.aborted) return;
        controller.done = true;
        handler.onResponseEnd?.(controller, {});
      })
      .catch((error: Error) => controller.fail(error))
      .finally(() => counted.inflight--);
    return true;
  }

  async #play(step: Scripted, controller: ScriptedController): Promise<{ status: number; body?: string; headers?: Record<string, string> }> {
    if (step === 'hang' || 'after' in step) {
      await new Promise<void>((resolve, reject) => {
        const timer = step === 'hang' ? undefined : setTimeout(resolve, step.after);
        controller.onAbort = (reason) => {
          clearTimeout(timer);
          reject(reason);
        };
      });
      if (step === 'hang') throw new Error('unreachable');
      return this.#play(step.then, controller);
    }
    if ('error' in step) throw Object.assign(new Error(step.error), { code: step.error });
    return step;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A DispatchController for the scripted dispatcher: pause/resume gate the body, abort ends the exchange with an error. */
class ScriptedController implements Dispatcher.DispatchController {
  readonly #handler: Dispatcher.DispatchHandler;
  #paused = false;
  #reason: Error | null = null;
  #resume: (() => void) | undefined;
  done = false;
  onAbort: ((reason: Error) => void) | undefined;

  constructor(handler: Dispatcher.DispatchHandler) {
    this.#handler = handler;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
  }

  /** resolves at once when not paused, else at the next resume() (or abort) */
  flowing(): Promise<void> {
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve) => (this.#resume = resolve));
  }

  abort(reason: Error): void {
    if (this.#reason !== null || this.done) return;
    const error = Object.assign(reason, { code: (reason as { code?: string }).code ?? 'UND_ERR_ABORTED' });
    this.#reason = error;
    this.onAbort?.(error);
    this.#resume?.();
    this.#handler.onResponseError?.(this, error);
  }

  /** the script's own transport error */
  fail(error: Error): void {
    if (this.#reason !== null || this.done) return;
    this.#reason = error;
    this.#handler.onResponseError?.(this, error);
  }
}

/** what commit does for an answer: settle its attempt (a give-up has none) */
export function settle(r: Answer | GiveUp): Answer | GiveUp {
  if (r.kind === 'answer') r.attempt.settle(r.result.outcome);
  return r;
}

export interface LoopRig {
  runtime: ProxyRuntime;
  upstream: UpstreamRuntime;
  /** per endpoint name, what its (shared) pool was asked */
  dispatchers: Map<string, EndpointCalls>;
  /** how many pools the runtime opened */
  pools(): number;
  /** runs one request through the loop; `appSignal` to play the app going away */
  /** `json` replaces the parsed body as it is (its getters run only when the loop reads it) */
  /** `estimatedTokens`: the request's cost for the rate limits (default 100, 10 of them prompt) */
  run(options?: { model?: string; headers?: Record<string, string>; appSignal?: AbortSignal; json?: Record<string, unknown>; priority?: Priority; estimatedTokens?: number }): Promise<Answer | GiveUp>;
  endpoint(name: string): ReturnType<UpstreamRuntime['endpoints']['at']> & object;
  /** breakwater_upstream_attempts_total by result, as scraped */
  attemptCounts(): Promise<Record<string, number>>;
}

const noAuth = () => new Secret('sk-test');

/** The loop against scripted endpoints; call vi.useFakeTimers() first. */
export function loopRig(doc: UpstreamDocument, script: Script, random: () => number = () => 0): LoopRig {
  const metrics = createMetrics();
  const dispatchers = new Map<string, EndpointCalls>();
  for (const e of doc.spec.endpoints) dispatchers.set(e.name, { calls: 0, inflight: 0, peak: 0 });
  const runtime = new ProxyRuntime({
    clock: systemClock,
    log: silentLogger,
    metrics,
    random,
    dispatcherFactory: () => new ScriptedDispatcher(script, dispatchers),
  });
  runtime.apply([compileUpstream(doc, noAuth)], 'test');
  const u = runtime.snapshot!.upstreams.get(doc.metadata.name)!;
  return {
    runtime,
    upstream: u,
    dispatchers,
    pools: () => runtime.pools,
    endpoint: (name) => u.endpoints.find((e) => e.name === name)!,
    async attemptCounts() {
      const { values } = await metrics.attempts.get();
      return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [String(v.labels.result), v.value]));
    },
    run(options = {}) {
      const model = options.model ?? 'gpt-4.1';
      const json = options.json ?? { model, messages: [] };
      const req: ProxyRequest = {
        requestId: 'r',
        upstream: u,
        method: 'POST',
        path: '/chat/completions',
        search: '',
        headers: {},
        body: Buffer.from(options.json ? '{}' : JSON.stringify(json)),
        json,
        model,
        pathKind: 'generation',
        streaming: false,
        fallbackAllowed: u.config.fallbacks.has(model),
        retryable: true,
        deadline: deadlineFor(Date.now(), u.config.timeouts.totalMs, options.headers ?? {}),
        appSignal: options.appSignal ?? new AbortController().signal,
        timeouts: u.config.timeouts,
        dialect: u.dialect,
        validate: u.config.validate,
        startedAt: performance.now(),
        priority: options.priority ?? 'normal',
        estimatedTokens: options.estimatedTokens ?? 100,
        estimatedPromptTokens: 10,
      };
      return runAttempts(req, { clock: systemClock, log: silentLogger, metrics, random });
    },
  };
}
