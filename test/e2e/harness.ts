// A real Kubernetes control plane (etcd + kube-apiserver) on loopback ports for
// the e2e tests, with generated certificates and one client identity per role.
//
//   let cp: ControlPlane;
//   beforeAll(async () => { cp = await startControlPlane(); }, CONTROL_PLANE_TIMEOUT_MS);
//   afterAll(() => cp?.stop());
//
// Binaries come from hack/control-plane.sh (cached; see hack/README.md).
// Startup takes a few seconds once they are cached.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries } from './harness/binaries.ts';
import { exec, httpsGet, kubeconfigYaml, type ExecResult } from './harness/clients.ts';
import { createPki, type Pki } from './harness/pki.ts';
import {
  freePort,
  guardDir,
  pauseProcess,
  resumeProcess,
  startProcess,
  stopProcess,
  waitFor,
  type ManagedProcess,
} from './harness/processes.ts';

export { ensureBinaries, pinnedVersion } from './harness/binaries.ts';
export type { ExecResult } from './harness/clients.ts';
export { pidAlive } from './harness/processes.ts';

export type Identity = 'admin' | 'sidecar' | 'controller';

/** The users behind each identity (user = certificate CN, groups = O). */
export const IDENTITIES: Readonly<Record<Identity, { user: string; groups: readonly string[] }>> = {
  admin: { user: 'admin', groups: ['system:masters'] },
  sidecar: { user: 'breakwater-sidecar', groups: ['breakwater:sidecars'] },
  controller: { user: 'breakwater-controller', groups: ['breakwater:controllers'] },
};

/** Enough for a cold build of the binaries; seconds once they are cached. */
export const CONTROL_PLANE_TIMEOUT_MS = 45 * 60_000;

export interface ExecOptions {
  /** Which identity's kubeconfig to use (default admin). */
  as?: Identity;
  /** A kubeconfig path instead of an identity's (e.g. one from mintUser). */
  kubeconfig?: string;
  /** Written to stdin. */
  input?: string;
  /** Kill the command after this long (default 60 s). */
  timeoutMs?: number;
}

export interface MintedUser {
  user: string;
  groups: readonly string[];
  certFile: string;
  keyFile: string;
  kubeconfig: string;
}

export interface ServingCert {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Base64 of the CA certificate PEM, for a webhook's clientConfig.caBundle. */
  caBundle: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** The API server's gitVersion, e.g. "v1.34.10". */
  readonly version: string;
  readonly binDir: string;
  /** Temp dir holding certificates, kubeconfigs, etcd data and logs. */
  readonly dir: string;
  readonly caFile: string;
  readonly kubeconfig: Readonly<Record<Identity, string>>;
  readonly logs: { readonly etcd: string; readonly apiServer: string };
  kubectl(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  helm(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** A client certificate and kubeconfig for another user. */
  mintUser(user: string, groups?: readonly string[]): Promise<MintedUser>;
  /** A serving certificate signed by the cluster CA (default hosts 127.0.0.1, localhost). */
  mintServingCert(hosts?: readonly string[]): Promise<ServingCert>;
  /** Live process ids (undefined once stopped). */
  pids(): { etcd: number | undefined; apiServer: number | undefined };
  /** Stops the API server (SIGTERM, or SIGKILL with graceful: false); etcd keeps running. */
  stopApiServer(opts?: { graceful?: boolean }): Promise<void>;
  /** Starts the API server again on the same port and etcd; resolves when /readyz is ok. */
  startApiServer(): Promise<void>;
  /** SIGSTOP: the port stays open but nothing answers. */
  pauseApiServer(): void;
  /** SIGCONT. */
  resumeApiServer(): void;
  /** Stops everything and removes the temp dir (kept with BREAKWATER_E2E_KEEP=1). */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

export async function startControlPlane(): Promise<ControlPlane> {
  const binDir = await ensureBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'breakwater-e2e-'));
  const keep = process.env['BREAKWATER_E2E_KEEP'] === '1';
  const unguard = keep ? () => {} : guardDir(dir);
  const removeDir = async (): Promise<void> => {
    unguard();
    if (!keep) await rm(dir, { recursive: true, force: true });
  };
  const stack: Array<() => Promise<void>> = [];
  try {
    return await boot(binDir, dir, stack, removeDir);
  } catch (err) {
    for (const undo of stack.reverse()) await undo().catch(() => {});
    await removeDir();
    throw err;
  }
}

async function boot(
  binDir: string,
  dir: string,
  stack: Array<() => Promise<void>>,
  removeDir: () => Promise<void>,
): Promise<ControlPlane> {
  const bin = (name: string) => join(binDir, name);
  const pkiDir = join(dir, 'pki');
  const etcdData = join(dir, 'etcd');
  const logDir = join(dir, 'logs');
  const kubeDir = join(dir, 'kube');
  await Promise.all([pkiDir, logDir, kubeDir].map((d) => mkdir(d, { recursive: true })));
  await mkdir(etcdData, { recursive: true, mode: 0o700 });

  const [etcdClientPort, etcdPeerPort, apiPort] = await uniquePorts(3);
  const server = `https://127.0.0.1:${apiPort}`;
  const logs = { etcd: join(logDir, 'etcd.log'), apiServer: join(logDir, 'kube-apiserver.log') };

  const pki: Pki = await createPki(pkiDir);
  const [serving, sa, ...clients] = await Promise.all([
    pki.issueServing('apiserver', ['127.0.0.1', 'localhost']),
    pki.serviceAccountKeys(),
    ...(Object.keys(IDENTITIES) as Identity[]).map((id) =>
      pki.issueClient(`client-${id}`, IDENTITIES[id].user, IDENTITIES[id].groups),
    ),
  ]);
  const ids = Object.keys(IDENTITIES) as Identity[];
  const kubeconfig = {} as Record<Identity, string>;
  for (const [i, id] of ids.entries()) {
    const pair = clients[i];
    if (!pair) throw new Error(`no client certificate for ${id}`);
    kubeconfig[id] = join(kubeDir, `${id}.kubeconfig`);
    await writeFile(kubeconfig[id], kubeconfigYaml(server, pki.caFile, IDENTITIES[id].user, pair.certFile, pair.keyFile), { mode: 0o600 });
  }
  const adminPair = clients[ids.indexOf('admin')];
  if (!adminPair) throw new Error('no admin certificate');
  const adminTls = {
    ca: pki.caPem,
    cert: await readFile(adminPair.certFile, 'utf8'),
    key: await readFile(adminPair.keyFile, 'utf8'),
  };

  // etcd
  const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  let etcd: ManagedProcess | undefined = await startProcess('etcd', bin('etcd'), [
    '--name=default',
    `--data-dir=${etcdData}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ], logs.etcd);
  stack.push(async () => {
    if (etcd) await stopProcess(etcd);
  });
  await waitFor('etcd /health', async () => {
    const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    return res.ok && (await res.text()).includes('"true"');
  }, { timeoutMs: READY_TIMEOUT_MS, proc: etcd });

  // kube-apiserver, flags as controller-runtime's envtest sets them.
  const apiArgs = [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${serving.certFile}`,
    `--tls-private-key-file=${serving.keyFile}`,
    `--client-ca-file=${pki.caFile}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${server}/`,
    `--service-account-key-file=${sa.publicKeyFile}`,
    `--service-account-signing-key-file=${sa.privateKeyFile}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false',
    '--v=1',
  ];
  let apiServer: ManagedProcess | undefined;
  const startApiServer = async (): Promise<void> => {
    if (apiServer && !apiServer.hasExited()) throw new Error('the API server is already running');
    const proc = await startProcess('kube-apiserver', bin('kube-apiserver'), apiArgs, logs.apiServer);
    apiServer = proc;
    await waitFor('kube-apiserver /readyz', async () => {
      const res = await httpsGet(`${server}/readyz`, adminTls);
      return res.status === 200;
    }, { timeoutMs: READY_TIMEOUT_MS, proc });
  };
  const stopApiServer = async (opts: { graceful?: boolean } = {}): Promise<void> => {
    if (apiServer) await stopProcess(apiServer, opts.graceful === false ? 0 : 10_000);
  };
  stack.push(() => stopApiServer());
  await startApiServer();

  const versionRes = await httpsGet(`${server}/version`, adminTls);
  const version = (JSON.parse(versionRes.body) as { gitVersion: string }).gitVersion;

  const toolEnv = (kc: string): NodeJS.ProcessEnv => ({
    ...process.env,
    KUBECONFIG: kc,
    HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
    HELM_DATA_HOME: join(dir, 'helm', 'data'),
  });
  const pickKubeconfig = (opts: ExecOptions): string => opts.kubeconfig ?? kubeconfig[opts.as ?? 'admin'];

  let minted = 0;
  let stopped = false;

  return {
    server,
    version,
    binDir,
    dir,
    caFile: pki.caFile,
    kubeconfig,
    logs,
    kubectl: (args, opts = {}) => {
      const kc = pickKubeconfig(opts);
      return exec(bin('kubectl'), [`--kubeconfig=${kc}`, `--cache-dir=${join(dir, 'kubectl-cache')}`, ...args], toolEnv(kc), opts);
    },
    helm: (args, opts = {}) => {
      const kc = pickKubeconfig(opts);
      return exec(bin('helm'), args, toolEnv(kc), opts);
    },
    mintUser: async (user, groups = []) => {
      const base = `user-${++minted}`;
      const pair = await pki.issueClient(base, user, groups);
      const kc = join(kubeDir, `${base}.kubeconfig`);
      await writeFile(kc, kubeconfigYaml(server, pki.caFile, user, pair.certFile, pair.keyFile), { mode: 0o600 });
      return { user, groups, ...pair, kubeconfig: kc };
    },
    mintServingCert: async (hosts = ['127.0.0.1', 'localhost']) => {
      const pair = await pki.issueServing(`serving-${++minted}`, hosts);
      return { ...pair, caFile: pki.caFile, caBundle: Buffer.from(pki.caPem).toString('base64') };
    },
    pids: () => ({
      etcd: etcd && !etcd.hasExited() ? etcd.pid : undefined,
      apiServer: apiServer && !apiServer.hasExited() ? apiServer.pid : undefined,
    }),
    stopApiServer,
    startApiServer,
    pauseApiServer: () => {
      if (apiServer) pauseProcess(apiServer);
    },
    resumeApiServer: () => {
      if (apiServer) resumeProcess(apiServer);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopApiServer();
      if (etcd) await stopProcess(etcd);
      await removeDir();
    },
  };
}

async function uniquePorts(n: 3): Promise<[number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  const [a, b, c] = [...ports];
  if (a === undefined || b === undefined || c === undefined) throw new Error('no free ports');
  return [a, b, c];
}
