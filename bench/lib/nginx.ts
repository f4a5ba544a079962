// nginx as the reference proxy: one worker, keep-alive to the fake (upstream keepalive),
// response buffering off so SSE passes through as it arrives, no access log. Everything it
// writes (pid, error log, temp files) stays in the benchmark's temp dir. The config itself
// comes from peer-configs.ts (a second fake becomes a `backup` server).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nginxConfig } from './peer-configs.ts';
import { start, which, type Spawned } from './procs.ts';

export function findNginx(): string | undefined {
  return which('nginx') ?? ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => which(p));
}

/** Starts nginx in dir/<name> proxying to the fake(s) on 127.0.0.1 (the first is the primary). */
export function startNginx(binary: string, dir: string, listenPort: number, fakePorts: number | readonly number[], cpus: string | undefined, name = 'nginx'): Spawned {
  const prefix = join(dir, name);
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const ports = typeof fakePorts === 'number' ? [fakePorts] : fakePorts;
  writeFileSync(conf, nginxConfig(prefix, listenPort, ports.map((port) => ({ host: '127.0.0.1', port })), process.getuid?.() === 0));
  return start(binary, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], { cpus });
}
