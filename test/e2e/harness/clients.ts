// Small helpers of the e2e harness: running a CLI, a client-certificate
// kubeconfig, and an HTTPS GET with a client certificate.
import { spawn } from 'node:child_process';
import { request } from 'node:https';

/** A kubeconfig that authenticates with a client certificate (paths, not inline data). */
export function kubeconfigYaml(server: string, caFile: string, user: string, certFile: string, keyFile: string): string {
  const q = JSON.stringify; // JSON strings are valid YAML scalars
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: breakwater-e2e`,
    '  cluster:',
    `    server: ${q(server)}`,
    `    certificate-authority: ${q(caFile)}`,
    'users:',
    `- name: ${q(user)}`,
    '  user:',
    `    client-certificate: ${q(certFile)}`,
    `    client-key: ${q(keyFile)}`,
    'contexts:',
    `- name: ${q(user)}`,
    '  context:',
    '    cluster: breakwater-e2e',
    `    user: ${q(user)}`,
    `current-context: ${q(user)}`,
    '',
  ].join('\n');
}

/** GET over TLS with a client certificate (for /readyz and /version). */
export function httpsGet(url: string, tls: { ca: string; cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion: stdin from `input`, SIGKILL after `timeoutMs` (default 60 s). */
export function exec(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  opts: { input?: string; timeoutMs?: number },
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the command may exit before reading it all
    child.stdin.end(opts.input ?? '');
  });
}
