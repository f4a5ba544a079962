// Allocation profile of a running Node process through its inspector (the process is started
// with --inspect=127.0.0.1:PORT, loopback only, for the benchmark's profile step). V8's sampling
// heap profiler, with objects that were already collected included, answers "what does one
// request allocate, and where" — the garbage that drives GC time, heap growth and pauses.
import { sleep } from './procs.ts';

/** Breakwater's own code: the TypeScript sources, or their compiled JavaScript (make build) */
const OWN_CODE = /\/(?:src|build\/dist)\//;

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  id: number;
  children: HeapNode[];
}

export class Inspector {
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    });
  }

  static async connect(port: number): Promise<Inspector> {
    let url: string | undefined;
    for (let i = 0; i < 50 && !url; i++) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(1000) })).json()) as Array<{ webSocketDebuggerUrl: string }>;
        url = list[0]?.webSocketDebuggerUrl;
      } catch {
        await sleep(100);
      }
    }
    if (!url) throw new Error(`no inspector on 127.0.0.1:${port}`);
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('inspector websocket failed')), { once: true });
    });
    return new Inspector(ws);
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

export interface AllocationSummary {
  /** estimated bytes allocated per request (sampled, scaled by V8) */
  bytesPerRequest: number;
  requests: number;
  top: Array<{ name: string; bytesPerRequest: number; pct: number }>;
  /** allocation under each src/ function (inclusive) */
  topSrcInclusive: Array<{ name: string; bytesPerRequest: number; pct: number }>;
}

/** Samples allocations (collected ones included) while `load` runs; load returns the requests served. */
export async function allocationProfile(port: number, load: () => Promise<number>): Promise<AllocationSummary> {
  const insp = await Inspector.connect(port);
  try {
    await insp.send('HeapProfiler.enable');
    await insp.send('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const requests = await load();
    const { profile } = await insp.send<{ profile: { head: HeapNode } }>('HeapProfiler.stopSampling');
    return summarise(profile.head, requests);
  } finally {
    insp.close();
  }
}

function shortUrl(url: string): string {
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + '/node_modules/'.length);
  const s = url.search(OWN_CODE);
  if (s >= 0) return url.slice(s + 1);
  return url;
}

function summarise(head: HeapNode, requests: number): AllocationSummary {
  const self = new Map<string, number>();
  const srcIncl = new Map<string, number>();
  let total = 0;
  const key = (n: HeapNode) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  // returns the subtree total; adds it to each src/ function once per path
  const walk = (n: HeapNode, srcOnStack: Set<string>): number => {
    const k = key(n);
    const isSrc = OWN_CODE.test(n.callFrame.url) && !srcOnStack.has(k);
    if (isSrc) srcOnStack.add(k);
    let sum = n.selfSize;
    if (n.selfSize > 0) self.set(k, (self.get(k) ?? 0) + n.selfSize);
    for (const c of n.children) sum += walk(c, srcOnStack);
    if (isSrc) {
      srcOnStack.delete(k);
      srcIncl.set(k, (srcIncl.get(k) ?? 0) + sum);
    }
    return sum;
  };
  total = walk(head, new Set());
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([name, bytes]) => ({ name, bytesPerRequest: bytes / requests, pct: (100 * bytes) / total }));
  return { bytesPerRequest: total / requests, requests, top: rows(self), topSrcInclusive: rows(srcIncl) };
}

export function allocationMarkdown(title: string, a: AllocationSummary): string {
  const kb = (b: number) => (b / 1024).toFixed(1);
  const list = (rows: AllocationSummary['top']) => rows.map((r) => `| ${kb(r.bytesPerRequest)} | ${r.pct.toFixed(1)} % | \`${r.name}\` |`).join('\n');
  return [
    `#### ${title}: allocation`,
    '',
    `About **${kb(a.bytesPerRequest)} KB allocated per request** (V8 sampling heap profiler, collected objects included, ${a.requests} requests).`,
    '',
    'Top allocation sites (self):',
    '',
    '| KB/req | share | function |',
    '|---:|---:|---|',
    list(a.top),
    '',
    'Allocation under src/ functions (inclusive):',
    '',
    '| KB/req | share | function |',
    '|---:|---:|---|',
    list(a.topSrcInclusive),
    '',
  ].join('\n');
}
