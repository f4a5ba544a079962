// The shared flag table: flags win over their BREAKWATER_* twins, which win over defaults; each
// command accepts only its own flags; the sidecar container is rendered from the same table,
// and the README's plain pod-spec snippet is exactly that rendering.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { envName, FLAGS, parseFlags, sidecarContainer, UsageError } from '../../src/cli.ts';
import { loadSidecarValues, sidecarValues, SidecarValuesError } from '../../src/sidecar.ts';

const README = join(import.meta.dirname, '..', '..', 'README.md');

describe('flag table', () => {
  it('takes a flag over its environment twin, and the twin over the default', () => {
    const env = { BREAKWATER_DRAIN: '5s', BREAKWATER_LISTEN: '127.0.0.1:9000' };
    const flags = parseFlags('proxy', ['--drain', '7s'], env);
    expect(flags.drain).toBe('7s');
    expect(flags.listen).toBe('127.0.0.1:9000');
    expect(flags.admin).toBe('0.0.0.0:7879');
  });

  it('reads boolean twins as true or 1', () => {
    expect(parseFlags('proxy', [], { BREAKWATER_KUBERNETES: '1' }).kubernetes).toBe(true);
    expect(parseFlags('proxy', [], { BREAKWATER_KUBERNETES: 'no' }).kubernetes).toBe(false);
  });

  it('accepts a repeatable flag repeated or as a comma list, and its twin as a comma list', () => {
    expect(parseFlags('controller', ['--webhook-extra-san', '127.0.0.1', '--webhook-extra-san', 'a.example,b.example'], {})['webhook-extra-san']).toEqual(['127.0.0.1', 'a.example', 'b.example']);
    expect(parseFlags('controller', [], { BREAKWATER_WEBHOOK_EXTRA_SAN: '::1, c.example' })['webhook-extra-san']).toEqual(['::1', 'c.example']);
  });

  it('refuses a flag of another command with a usage error', () => {
    expect(() => parseFlags('proxy', ['--webhook-listen', 'off'], {})).toThrow(UsageError);
    expect(() => parseFlags('controller', ['--listen', '127.0.0.1:1'], {})).toThrow(/controller: Unknown option '--listen'/);
  });

  it('names every twin BREAKWATER_ + the flag in upper snake case', () => {
    expect(envName('webhook-cert-secret')).toBe('BREAKWATER_WEBHOOK_CERT_SECRET');
    for (const name of Object.keys(FLAGS)) expect(envName(name as keyof typeof FLAGS)).toMatch(/^BREAKWATER_[A-Z_]+$/);
  });
});

describe('sidecar values', () => {
  it('fills every default from an empty file', () => {
    expect(sidecarValues({})).toMatchObject({ imagePullPolicy: 'IfNotPresent', readiness: 'breakers', unreadyAfter: '10s', drain: '30s', logLevel: 'info', env: [], proxyPort: 7878, adminPort: 7879 });
  });

  it.each([
    [{ readiness: 'sometimes' }, /readiness: must be one of breakers, local/],
    [{ unreadyAfter: 'soon' }, /unreadyAfter/],
    [{ proxyPort: 70000 }, /proxyPort/],
    [{ env: [{ name: 'A', vale: 'typo' }] }, /env\[0\]/],
    [{ imagePullPolicy: 'Sometimes' }, /imagePullPolicy/],
    [{ extra: true }, /\(document\)|extra/],
  ])('refuses %j naming the field', (input, field) => {
    expect(() => sidecarValues(input, 'values.yaml')).toThrow(SidecarValuesError);
    expect(() => sidecarValues(input, 'values.yaml')).toThrow(field);
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadSidecarValues('/nonexistent/values.yaml')).toThrow(/\/nonexistent\/values.yaml: \(file\): cannot read: ENOENT/);
  });
});

describe('sidecar container', () => {
  const container = sidecarContainer(sidecarValues({ image: 'breakwater:1', logLevel: 'debug', env: [{ name: 'HTTPS_PROXY', value: 'http://egress:3128' }] }));

  it('runs `proxy --kubernetes` with each setting as a flag of the shared table', () => {
    expect(container.args).toEqual(['proxy', '--kubernetes', '--listen', '127.0.0.1:7878', '--admin', '0.0.0.0:7879', '--readiness', 'breakers', '--unready-after', '10s', '--drain', '30s', '--log-level', 'debug']);
    const flags = parseFlags('proxy', container.args.slice(1), {});
    expect(flags).toMatchObject({ kubernetes: true, 'log-level': 'debug', listen: '127.0.0.1:7878' });
  });

  it('is a native sidecar, locked down, with the namespace from the downward API', () => {
    expect(container.restartPolicy).toBe('Always');
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.env).toEqual([
      { name: 'BREAKWATER_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'HTTPS_PROXY', value: 'http://egress:3128' },
    ]);
    expect(container.startupProbe.httpGet).toEqual({ path: '/readyz', port: 7879 });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 7879 });
  });

  it("is what the README's plain pod-spec snippet shows", () => {
    const readme = readFileSync(README, 'utf8');
    const m = /<!-- sidecar-snippet:begin -->\n```yaml\n([\s\S]*?)```\n<!-- sidecar-snippet:end -->/.exec(readme);
    expect(m, 'README has the sidecar snippet markers').not.toBeNull();
    expect(m![1]).toBe(plainPodSnippet());
  });
});

/** The README snippet: the default sidecar plus an app container with its base URL. */
function plainPodSnippet(): string {
  const spec = {
    spec: {
      initContainers: [sidecarContainer(sidecarValues({}))],
      containers: [{ name: 'app', image: 'my-app:1.0', env: [{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:7878/openai' }] }],
    },
  };
  return stringify(spec, { lineWidth: 0, flowCollectionPadding: true });
}
