// Summarises a V8 .cpuprofile (node --cpu-prof): where the proxy's CPU goes, as shares of
// the samples in which it was busy (idle excluded). Self time per function, inclusive time per
// function of src/, and inclusive time per area (prom-client, pino, undici, opossum, node's
// http internals, GC, ...). "Inclusive" counts a sample once per function on its stack.
import { readFileSync } from 'node:fs';

/** Breakwater's own code: the TypeScript sources, or their compiled JavaScript (make build) */
const OWN_CODE = /\/(?:src|build\/dist)\//;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Share {
  name: string;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  busySamples: number;
  busyMs: number;
  topSelf: Share[];
  topSrcInclusive: Share[];
  /** innermost frame's owner: sums to 100 % */
  selfAreas: Share[];
  /** every sample with a frame of the package anywhere on its stack */
  packagesInclusive: Share[];
}

function shortUrl(url: string): string {
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + '/node_modules/'.length);
  const s = url.search(OWN_CODE);
  if (s >= 0) return url.slice(s + 1);
  return url.replace(/^file:\/\//, '');
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return `npm: ${m[1]}`;
  if (OWN_CODE.test(url)) return 'Breakwater src/ (self)';
  if (url.startsWith('node:')) {
    if (/^node:(_http|http|internal\/http|internal\/streams|stream|net|internal\/net|internal\/stream_base)/.test(url)) return 'node: http/net/streams';
    return 'node: other internals';
  }
  return 'other';
}

/** Only samples between fromMs and toMs after the profile's start count (start-up and warm-up are left out). */
export function summariseProfile(file: string, fromMs = 0, toMs = Infinity, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // sample counts per node, idle excluded; time from timeDeltas
  const hits = new Map<number, number>();
  const time = new Map<number, number>();
  let busySamples = 0;
  let busyUs = 0;
  let elapsedUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    elapsedUs += p.timeDeltas[i] ?? 0;
    if (elapsedUs < fromMs * 1000 || elapsedUs > toMs * 1000) continue;
    const id = p.samples[i]!;
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
    hits.set(id, (hits.get(id) ?? 0) + 1);
    time.set(id, (time.get(id) ?? 0) + dt);
    busySamples++;
    busyUs += dt;
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const srcIncl = new Map<string, number>();
  const selfArea = new Map<string, number>();
  const pkgIncl = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  for (const [id, us] of time) {
    const n = byId.get(id)!;
    add(self, key(n), us);
    add(selfArea, area(n.callFrame.url, n.callFrame.functionName), us);
    // walk up the stack once; count each src/ function and each package once per sample
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const c = byId.get(cur)!;
      const { url, functionName } = c.callFrame;
      if (functionName === '(root)') break;
      const a = area(url, functionName);
      const k = a.startsWith('npm: ') ? a : OWN_CODE.test(url) ? key(c) : undefined;
      if (k === undefined || seen.has(k)) continue;
      seen.add(k);
      add(k.startsWith('npm: ') ? pkgIncl : srcIncl, k, us);
    }
  }
  const shares = (m: Map<string, number>, limit: number): Share[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => ({ name, pct: (100 * us) / busyUs }));
  return {
    file,
    busySamples,
    busyMs: busyUs / 1000,
    topSelf: shares(self, top),
    topSrcInclusive: shares(srcIncl, top),
    selfAreas: shares(selfArea, 20),
    packagesInclusive: shares(pkgIncl, 20),
  };
}

export function profileMarkdown(title: string, s: ProfileSummary): string {
  const list = (rows: Share[]) => rows.map((r) => `| ${r.pct.toFixed(1)} % | \`${r.name}\` |`).join('\n');
  return [
    `#### ${title}`,
    '',
    `${s.busySamples} busy samples, ${s.busyMs.toFixed(0)} ms of CPU on the main thread (idle excluded). Profile: \`${s.file}\``,
    '',
    'Self time by area (innermost frame; sums to 100 %):',
    '',
    '| share | area |',
    '|---:|---|',
    list(s.selfAreas),
    '',
    'npm packages, inclusive (every sample with the package anywhere on the stack):',
    '',
    '| share | package |',
    '|---:|---|',
    list(s.packagesInclusive),
    '',
    'Top self time:',
    '',
    '| share | function |',
    '|---:|---|',
    list(s.topSelf),
    '',
    'Top inclusive time in src/:',
    '',
    '| share | function |',
    '|---:|---|',
    list(s.topSrcInclusive),
    '',
  ].join('\n');
}
