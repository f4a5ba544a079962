import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_TIMEOUT_MS, pidAlive, pinnedVersion, startControlPlane, type ControlPlane } from './harness.ts';

describe('e2e control plane harness', () => {
  let cp: ControlPlane | undefined;
  const control = (): ControlPlane => {
    if (!cp) throw new Error('control plane not started');
    return cp;
  };

  beforeAll(async () => {
    cp = await startControlPlane();
  }, CONTROL_PLANE_TIMEOUT_MS);

  afterAll(async () => {
    await cp?.stop();
  }, 60_000);

  it('serves the pinned Kubernetes version', async () => {
    const pinned = await pinnedVersion();
    expect(control().version).toBe(pinned);
    const res = await control().kubectl(['version', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const parsed = JSON.parse(res.stdout) as { serverVersion: { gitVersion: string; major: string; minor: string } };
    expect(parsed.serverVersion.gitVersion).toBe(pinned);
    expect(`v${parsed.serverVersion.major}.${parsed.serverVersion.minor}`).toBe(pinned.split('.').slice(0, 2).join('.'));
  });

  it('lets the admin create a namespace and a ConfigMap', async () => {
    const cp = control();
    expect((await cp.kubectl(['create', 'namespace', 'harness'])).code).toBe(0);
    const manifest = JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'greeting', namespace: 'harness' },
      data: { hello: 'world' },
    });
    const applied = await cp.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest });
    expect(applied.code, applied.stderr).toBe(0);
    const got = await cp.kubectl(['get', 'configmap', 'greeting', '-n', 'harness', '-o', 'jsonpath={.data.hello}']);
    expect(got).toMatchObject({ code: 0, stdout: 'world' });
  });

  it('gives the sidecar identity no access to Secrets', async () => {
    const cp = control();
    const denied = await cp.kubectl(['get', 'secrets', '-n', 'harness'], { as: 'sidecar' });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/i);
    expect(denied.stderr).toContain('User "breakwater-sidecar"');

    const canI = await cp.kubectl([
      'auth', 'can-i', 'list', 'secrets', '-n', 'harness',
      '--as=breakwater-sidecar', '--as-group=breakwater:sidecars',
    ]);
    expect(canI.stdout.trim()).toBe('no');
    const whoami = await cp.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { as: 'controller' });
    expect(whoami).toMatchObject({ code: 0, stdout: 'breakwater-controller' });
  });

  it('mints extra users whose groups RBAC sees', async () => {
    const cp = control();
    const user = await cp.mintUser('alice', ['team-a', 'team-b']);
    const res = await cp.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: user.kubeconfig });
    expect(res.code, res.stderr).toBe(0);
    const info = (JSON.parse(res.stdout) as { status: { userInfo: { username: string; groups: string[] } } }).status.userInfo;
    expect(info.username).toBe('alice');
    expect(info.groups).toEqual(expect.arrayContaining(['team-a', 'team-b', 'system:authenticated']));
  });

  it('restarts the API server on the same port and keeps the data in etcd', async () => {
    const cp = control();
    const before = cp.pids().apiServer;
    await cp.stopApiServer();
    expect(cp.pids().apiServer).toBeUndefined();
    expect(before !== undefined && pidAlive(before)).toBe(false);
    const down = await cp.kubectl(['get', 'namespaces', '--request-timeout=2s']);
    expect(down.code).not.toBe(0);

    await cp.startApiServer();
    const got = await cp.kubectl(['get', 'configmap', 'greeting', '-n', 'harness', '-o', 'jsonpath={.data.hello}']);
    expect(got).toMatchObject({ code: 0, stdout: 'world' });
  }, 90_000);

  it('pauses and resumes the API server', async () => {
    const cp = control();
    cp.pauseApiServer();
    const stalled = await cp.kubectl(['get', 'namespaces', '--request-timeout=2s']);
    expect(stalled.code).not.toBe(0);
    cp.resumeApiServer();
    const ok = await cp.kubectl(['get', 'namespace', 'harness', '-o', 'name']);
    expect(ok).toMatchObject({ code: 0, stdout: 'namespace/harness\n' });
  }, 60_000);

  it('leaves no processes behind after stop()', async () => {
    const cp = control();
    const { etcd, apiServer } = cp.pids();
    expect(etcd).toBeDefined();
    expect(apiServer).toBeDefined();
    await cp.stop();
    for (const pid of [etcd, apiServer]) expect(pid !== undefined && pidAlive(pid)).toBe(false);
    expect(cp.pids()).toEqual({ etcd: undefined, apiServer: undefined });
  }, 60_000);
});
