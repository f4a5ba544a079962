// Where a proxy's CPU goes by Breakwater module, from a V8 .cpuprofile: each busy sample is
// charged to the innermost frame that is JavaScript (has a URL), so the native work a function
// asks for (a hash, a Buffer copy, a regular expression) counts as that function's, while the
// functions it calls count as their own. A module's share is then what its own code costs per
// request as a fraction of everything the process did on its main thread: a ratio inside one
// profile, which a shared machine's noise moves far less than CPU time per request between two
// processes (make bench-features: a feature's bookkeeping is the share of its modules with the
// feature on, less their share without it). GC has no stack in a profile and is reported apart.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ModuleShares {
  busySamples: number;
  /** % of busy samples charged to each own module, keyed like `proxy/cache.js` */
  modules: Map<string, number>;
  /** % of busy samples in the garbage collector */
  gc: number;
}

/** Breakwater's own code: the TypeScript sources, or their compiled JavaScript (make build) */
const OWN_CODE = /\/(?:src|build\/dist)\/(.+)\.[jt]s$/;

/** `proxy/cache.js` for both trees: the name features.sh's module lists use */
export function ownModule(url: string): string | undefined {
  const m = OWN_CODE.exec(url);
  return m ? `${m[1]}.js` : undefined;
}

/** Samples after `skipMs` from the profile's start (start-up and warm-up left out). */
export function moduleShares(file: string, skipMs = 0): ModuleShares {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** per sampled node: the module its sample is charged to ('' for not ours, 'gc', undefined for idle) */
  const chargedTo = new Map<number, string | undefined>();
  const charge = (id: number): string | undefined => {
    if (chargedTo.has(id)) return chargedTo.get(id);
    let out: string | undefined;
    const { functionName } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') out = undefined;
    else if (functionName === '(garbage collector)') out = 'gc';
    else {
      out = '';
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const { url } = byId.get(cur)!.callFrame;
        if (url === '') continue; // native: charged to its JavaScript caller
        out = ownModule(url) ?? '';
        break;
      }
    }
    chargedTo.set(id, out);
    return out;
  };
  const counts = new Map<string, number>();
  let busy = 0;
  let elapsedUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    elapsedUs += p.timeDeltas[i] ?? 0;
    if (elapsedUs < skipMs * 1000) continue;
    const to = charge(p.samples[i]!);
    if (to === undefined) continue;
    busy++;
    counts.set(to, (counts.get(to) ?? 0) + 1);
  }
  const pct = (n: number | undefined) => (busy === 0 ? 0 : (100 * (n ?? 0)) / busy);
  const modules = new Map<string, number>();
  for (const [k, v] of counts) if (k !== '' && k !== 'gc') modules.set(k, pct(v));
  return { busySamples: busy, modules, gc: pct(counts.get('gc')) };
}

/** the summed share of `names` (modules absent from the profile count 0) */
export function shareOf(shares: ModuleShares, names: readonly string[]): number {
  return names.reduce((sum, n) => sum + (shares.modules.get(n) ?? 0), 0);
}
