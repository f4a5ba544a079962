// The second half of make bench-features (bench/features.sh): what each traffic-shaping
// feature's own code costs, read from CPU profiles of one proxy per config under the same load
// (bench/lib/module-shares.ts says how samples are charged). A feature's cost is the share of
// busy samples in its modules with the feature on, less their share in the config without it
// (hedge.ts and select.ts run on every request even with their feature off), as a % of all the
// CPU the proxy spent per request. Issue 10's aim: within 5 % (a cache miss: 10 %).
//
//   node_modules/.bin/node bench/feature-shares.ts DIR SKIP_MS_FILE
// DIR holds <config>.cpuprofile per config of features.sh; SKIP_MS_FILE lines "<config> <ms>"
// (samples before that many ms into a profile are start-up and warm-up, left out).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleShares, shareOf, type ModuleShares } from './lib/module-shares.ts';

/** config -> [its feature's modules, the config it is compared with, the aim in %] */
const FEATURES: Record<string, [modules: string[], baseline: string, aimPct: number]> = {
  // gate.js and endpoint.js hold the glue (a slot, a reservation) and run for every request
  bulkhead: [['proxy/admission.js', 'proxy/gate.js', 'proxy/endpoint.js'], 'plain', 5],
  ratelimit: [['proxy/ratelimit.js', 'proxy/provider-limits.js', 'proxy/gate.js', 'proxy/endpoint.js'], 'plain', 5],
  // scan.js: the request body read for the key (it scans every request anyway)
  'cache-miss': [['proxy/cache.js', 'proxy/canonical.js', 'proxy/scan.js'], 'plain', 10],
  health: [['proxy/health.js'], 'plain', 5],
  hedge: [['proxy/hedge.js'], 'plain', 5],
  'least-latency': [['proxy/select.js'], 'weighted-two', 5],
};

const [dir, skipFile] = process.argv.slice(2);
if (!dir || !skipFile) throw new Error('usage: feature-shares.ts DIR SKIP_MS_FILE');
const skip = new Map(
  readFileSync(skipFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ') as [string, string])
    .map(([name, ms]) => [name, Number(ms)]),
);
const shares = new Map<string, ModuleShares>();
const load = (name: string): ModuleShares => {
  let s = shares.get(name);
  if (!s) shares.set(name, (s = moduleShares(join(dir, `${name}.cpuprofile`), skip.get(name) ?? 0)));
  return s;
};

const rows = Object.entries(FEATURES).map(([name, [modules, baseline, aim]]) => {
  const on = load(name);
  const off = load(baseline);
  const cost = shareOf(on, modules) - shareOf(off, modules);
  return `| ${name} | ${modules.map((m) => `\`${m}\``).join(', ')} | ${shareOf(on, modules).toFixed(2)} % | ${shareOf(off, modules).toFixed(2)} % (${baseline}) | **${cost >= 0 ? '+' : ''}${cost.toFixed(2)} %** | ${cost <= aim ? 'within' : '**over**'} ${aim} % | ${on.gc.toFixed(1)} % / ${off.gc.toFixed(1)} % | ${on.busySamples} |`;
});
console.log(
  [
    '| config | its modules | their share of busy samples, on | without the feature | feature cost | aim | GC share on / without | busy samples |',
    '|---|---|---:|---:|---:|---|---:|---:|',
    ...rows,
  ].join('\n'),
);
