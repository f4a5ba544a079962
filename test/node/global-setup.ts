// Starts the real one-node cluster (hack/node.sh up) once for every test/node file of a vitest
// run and tears it down at the end, whatever happened (a killed run is cleaned by the next
// `up`). Without root the node tests are skipped, with the reason printed; as root (CI) they
// always run, and a cluster that does not come up fails the run.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { NodeClusterInfo } from './harness.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'hack', 'node.sh');
/** A cold start builds kubelet & co. and the images: minutes. Warm: ~20 s. */
const UP_TIMEOUT_MS = 30 * 60_000;
const DOWN_TIMEOUT_MS = 3 * 60_000;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (network namespace, mounts, cgroups); run `sudo make test` or in CI';
  if (process.env['BREAKWATER_SKIP_NODE'] === '1') return 'BREAKWATER_SKIP_NODE=1';
  return undefined;
}

function script(arg: 'up' | 'down', timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    const started = Date.now();
    const child = spawn('bash', [SCRIPT, arg], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BREAKWATER_NODE_OWNER: String(process.pid) },
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', rej);
    child.once('close', (code) => {
      clearTimeout(timer);
      process.stderr.write(`[node] hack/node.sh ${arg}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      if (code === 0) res(stdout.trim().split('\n').at(-1) ?? '');
      else rej(new Error(`hack/node.sh ${arg} exited ${code}`));
    });
  });
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const reason = skipReason();
  if (reason) {
    process.stderr.write(`[node] skipping the real-node tests: ${reason}\n`);
    project.provide('node', { skip: reason });
    return undefined;
  }
  // For iterating on a test: `BREAKWATER_NODE_OWNER=1 hack/node.sh up` once, then runs with
  // BREAKWATER_NODE_REUSE=1 use that cluster and leave it running.
  if (process.env['BREAKWATER_NODE_REUSE'] === '1') {
    const info = JSON.parse(await readFile(join(process.env['BREAKWATER_NODE_DIR'] ?? '/tmp/bwn', 'cluster.json'), 'utf8').catch(() => 'null')) as NodeClusterInfo | null;
    if (info) {
      process.stderr.write(`[node] BREAKWATER_NODE_REUSE=1: using the running cluster in ${info.dir}\n`);
      project.provide('node', { cluster: info });
      return undefined;
    }
  }
  let info: NodeClusterInfo;
  try {
    const file = await script('up', UP_TIMEOUT_MS);
    info = JSON.parse(await readFile(file, 'utf8')) as NodeClusterInfo;
  } catch (err) {
    await script('down', DOWN_TIMEOUT_MS).catch(() => {});
    throw err;
  }
  project.provide('node', { cluster: info });
  return async () => {
    if (process.env['BREAKWATER_NODE_KEEP'] === '1') {
      process.stderr.write(`[node] BREAKWATER_NODE_KEEP=1: cluster left running; hack/node.sh down\n`);
      return;
    }
    await script('down', DOWN_TIMEOUT_MS);
  };
}
