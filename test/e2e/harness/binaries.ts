// Locates the control-plane binaries: hack/control-plane.sh builds them once
// and caches them; every later call only reads the cache.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const CONTROL_PLANE_SCRIPT = join(REPO_ROOT, 'hack', 'control-plane.sh');
export const BINARIES = ['kube-apiserver', 'etcd', 'kubectl', 'helm'] as const;
export type Binary = (typeof BINARIES)[number];

let pending: Promise<string> | undefined;

async function runScript(args: readonly string[]): Promise<string> {
  return await new Promise<string>((resolvePromise, reject) => {
    // stderr is the build's progress: let it through so a cold build is visible.
    const child = spawn('bash', [CONTROL_PLANE_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last !== '') resolvePromise(last);
      else reject(new Error(`${CONTROL_PLANE_SCRIPT} ${args.join(' ')} exited with ${code}`));
    });
  });
}

/** The Kubernetes version that hack/control-plane.sh pins (e.g. "v1.34.10"). */
export async function pinnedVersion(): Promise<string> {
  return await runScript(['--version']);
}

/**
 * The directory holding kube-apiserver, etcd, kubectl and helm. Uses
 * $BREAKWATER_CONTROL_PLANE_BIN when set, otherwise runs hack/control-plane.sh
 * (instant when cached; a cold build takes many minutes).
 */
export async function ensureBinaries(): Promise<string> {
  pending ??= (async () => {
    const dir = process.env['BREAKWATER_CONTROL_PLANE_BIN'] || (await runScript([]));
    for (const name of BINARIES) await access(join(dir, name), constants.X_OK);
    return dir;
  })();
  try {
    return await pending;
  } catch (err) {
    pending = undefined;
    throw err;
  }
}
