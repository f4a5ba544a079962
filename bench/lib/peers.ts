// The proxies `make bench` compares, and how each is started on 127.0.0.1 for a list of fake
// providers (the first is the primary, a second one the secondary it fails over to). Every peer
// runs as its own process group (killed by its id), pinned with the other servers, with its
// config generated into the run's temp dir (peer-configs.ts) and its output in a log file there.
// Installed versions come from bench/peers/install.sh's manifest.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKLOADS } from './load.ts';
import { breakwaterConfig, litellmConfig, portkeyHeaders } from './peer-configs.ts';
import { startNginx } from './nginx.ts';
import { freePort, sleep, start, type Spawned } from './procs.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export type PeerName = 'breakwater' | 'nginx' | 'portkey' | 'litellm' | 'minimal';

/** bench/peers/install.sh's last line */
export interface Manifest {
  nginx: { bin: string; version: string };
  portkey: { main: string; version: string };
  litellm: { bin: string; version: string };
}

export interface RunningPeer {
  name: PeerName;
  /** chat completions URL */
  url: string;
  /** base URL for the openai SDK */
  baseURL: string;
  /** extra headers on every request (raw load generators send them as they are) */
  headers: Record<string, string>;
  /** the key an SDK client must use (LiteLLM's master key); others ignore the app's key */
  apiKey?: string;
  proc: Spawned;
}

export interface PeerDef {
  name: PeerName;
  label: string;
  version: string;
  /** how it fails over to a secondary, or undefined when it cannot */
  failover: string | undefined;
  /** seconds to wait for its first answer */
  startTimeoutS: number;
  start(providers: readonly number[], ctx: StartContext): Promise<Omit<RunningPeer, 'name'>>;
}

export interface StartContext {
  dir: string;
  cpus: string | undefined;
  /** distinguishes the log/config files of several instances */
  tag: string;
}

const providerUrl = (port: number) => `http://127.0.0.1:${port}/v1`;
const local = (port: number, path: string) => `http://127.0.0.1:${port}${path}`;

export function peerDefs(m: Manifest, breakwaterVersion: string): PeerDef[] {
  const defs: PeerDef[] = [
    {
      name: 'breakwater',
      label: 'Breakwater',
      version: breakwaterVersion,
      failover: 'second endpoint at priority 1 (breakers, retry budget at defaults)',
      startTimeoutS: 20,
      async start(providers, ctx) {
        const port = await freePort();
        const config = join(ctx.dir, `breakwater-${ctx.tag}.yaml`);
        writeFileSync(config, breakwaterConfig(providers.map(providerUrl)));
        const proc = start(join(ROOT, 'bin', 'breakwater'), ['proxy', '--config', config, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--drain', '2s', '--log-level', 'warn'], {
          cpus: ctx.cpus,
          logFile: join(ctx.dir, `breakwater-${ctx.tag}.log`),
        });
        return { url: local(port, '/openai/chat/completions'), baseURL: local(port, '/openai'), headers: {}, proc };
      },
    },
    {
      name: 'minimal',
      label: 'minimal Node proxy',
      version: 'bench/peers/minimal.ts',
      failover: undefined,
      startTimeoutS: 15,
      async start(providers, ctx) {
        const port = await freePort();
        const proc = start(process.execPath, [join(ROOT, 'bench', 'peers', 'minimal.ts'), '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${providers[0]}`], {
          cpus: ctx.cpus,
          logFile: join(ctx.dir, `minimal-${ctx.tag}.log`),
        });
        return { url: local(port, '/v1/chat/completions'), baseURL: local(port, '/v1'), headers: {}, proc };
      },
    },
  ];
  if (m.nginx.bin) {
    defs.push({
      name: 'nginx',
      label: 'nginx',
      version: m.nginx.version,
      failover: '`backup` server, proxy_next_upstream error timeout http_429 http_5xx non_idempotent',
      startTimeoutS: 15,
      async start(providers, ctx) {
        const port = await freePort();
        const proc = startNginx(m.nginx.bin, ctx.dir, port, providers, ctx.cpus, `nginx-${ctx.tag}`);
        return { url: local(port, '/v1/chat/completions'), baseURL: local(port, '/v1'), headers: {}, proc };
      },
    });
  }
  if (m.portkey.main) {
    defs.push({
      name: 'portkey',
      label: 'Portkey gateway',
      version: m.portkey.version,
      failover: '`fallback` strategy over two targets (x-portkey-config)',
      startTimeoutS: 30,
      async start(providers, ctx) {
        const port = await freePort();
        const proc = start(process.execPath, ['--import', join(ROOT, 'bench', 'peers', 'loopback.ts'), m.portkey.main, `--port=${port}`, '--headless'], {
          cpus: ctx.cpus,
          logFile: join(ctx.dir, `portkey-${ctx.tag}.log`),
        });
        return { url: local(port, '/v1/chat/completions'), baseURL: local(port, '/v1'), headers: portkeyHeaders(providers.map(providerUrl)), proc };
      },
    });
  }
  if (m.litellm.bin) {
    defs.push({
      name: 'litellm',
      label: 'LiteLLM proxy',
      version: m.litellm.version,
      failover: 'second model group in `fallbacks` (router defaults)',
      startTimeoutS: 90,
      async start(providers, ctx) {
        const port = await freePort();
        const config = join(ctx.dir, `litellm-${ctx.tag}.yaml`);
        writeFileSync(config, litellmConfig(providers.map(providerUrl)));
        // it refuses to start without a master key: a throwaway one per process, sent by every client
        const key = `sk-${randomBytes(32).toString('hex')}`;
        const proc = start(m.litellm.bin, ['--config', config, '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'], {
          cpus: ctx.cpus,
          // the cost map ships in the package: no fetch from the internet at start-up
          env: { ...process.env, LITELLM_MASTER_KEY: key, LITELLM_LOCAL_MODEL_COST_MAP: 'True', LITELLM_LOG: 'ERROR', DISABLE_SCHEMA_UPDATE: 'true', NO_DOCS: 'True' },
          logFile: join(ctx.dir, `litellm-${ctx.tag}.log`),
        });
        return { url: local(port, '/v1/chat/completions'), baseURL: local(port, '/v1'), headers: { authorization: `Bearer ${key}` }, apiKey: key, proc };
      },
    });
  }
  return defs;
}

/** Starts a peer and waits for its first 200 to a JSON chat completion. */
export async function startPeer(def: PeerDef, providers: readonly number[], ctx: StartContext): Promise<RunningPeer> {
  const p = { name: def.name, ...(await def.start(providers, ctx)) };
  const until = Date.now() + def.startTimeoutS * 1000;
  const w = WORKLOADS[0]!;
  let last = '';
  while (Date.now() < until) {
    if (p.proc.child.exitCode !== null || p.proc.child.signalCode !== null) throw new Error(`${def.label} exited (${p.proc.child.exitCode ?? p.proc.child.signalCode}):\n${p.proc.output().slice(-3000)}`);
    try {
      const res = await fetch(p.url, { method: 'POST', body: w.body, headers: { ...w.headers, ...p.headers }, signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      if (res.status === 200) return p;
      last = `HTTP ${res.status} ${text.slice(0, 200)}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new Error(`${def.label} not ready at ${p.url} after ${def.startTimeoutS} s (${last}):\n${p.proc.output().slice(-3000)}`);
}
