// The webhook's own CA and serving certificate: a chain node:crypto verifies, the names the
// Service needs, and the renewal decision on virtual time (now is a parameter).
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  caBundlePatch,
  namesOf,
  newCa,
  pemBlocks,
  RENEW_CA_BEFORE_MS,
  RENEW_SERVING_BEFORE_MS,
  renewalNeeded,
  renewed,
  SERVING_LIFETIME_MS,
  servingNames,
  type CertBundle,
} from '../../../src/controller/certs.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const names = servingNames('breakwater-webhook', 'breakwater-system', ['127.0.0.1']);

describe('webhook certificates', () => {
  let bundle: CertBundle;
  beforeAll(async () => {
    bundle = await renewed(undefined, { kind: 'all', reason: 'test' }, names, T0);
  });

  it('issues a serving certificate signed by its own CA, with the Service names and extra IPs', () => {
    const ca = new X509Certificate(bundle.caCert);
    const tls = new X509Certificate(bundle.tlsCert);
    expect(ca.ca).toBe(true);
    expect(tls.ca).toBe(false);
    expect(tls.checkIssued(ca)).toBe(true);
    expect(tls.verify(ca.publicKey)).toBe(true);
    expect(namesOf(tls)).toEqual([
      'breakwater-webhook',
      'breakwater-webhook.breakwater-system',
      'breakwater-webhook.breakwater-system.svc',
      'breakwater-webhook.breakwater-system.svc.cluster.local',
      '127.0.0.1',
    ]);
    expect(tls.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(tls.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(Date.parse(tls.validTo) - T0).toBe(SERVING_LIFETIME_MS);
  });

  it('needs nothing while the certificates are fresh and match the names', () => {
    expect(renewalNeeded(bundle, names, T0 + 100 * DAY)).toEqual({ kind: 'none' });
  });

  it('renews the serving certificate when less than 30 days remain', () => {
    const expiry = T0 + SERVING_LIFETIME_MS;
    expect(renewalNeeded(bundle, names, expiry - RENEW_SERVING_BEFORE_MS - 1)).toEqual({ kind: 'none' });
    expect(renewalNeeded(bundle, names, expiry - RENEW_SERVING_BEFORE_MS + 1)).toMatchObject({ kind: 'serving', reason: expect.stringMatching(/expires/) });
  });

  it('reads IPv6 names back as they were asked for, so they never look changed', async () => {
    const v6 = servingNames('svc', 'ns', ['::1', 'FE80::1']);
    expect(v6.slice(-2)).toEqual(['::1', 'fe80::1']);
    const withV6 = await renewed(undefined, { kind: 'all', reason: 'test' }, v6, T0);
    expect(renewalNeeded(withV6, v6, T0)).toEqual({ kind: 'none' });
    expect(renewalNeeded(withV6, servingNames('svc', 'ns', ['0:0:0:0:0:0:0:1', 'fe80::1']), T0)).toEqual({ kind: 'none' });
  });

  it('renews the serving certificate when a wanted name is missing, keeping the names it had', async () => {
    const more = [...names, '10.0.0.7'];
    const renewal = renewalNeeded(bundle, more, T0);
    expect(renewal).toEqual({ kind: 'serving', reason: 'names missing: 10.0.0.7' });
    const next = await renewed(bundle, renewal as Exclude<typeof renewal, { kind: 'none' }>, ['breakwater-webhook', '10.0.0.7'], T0);
    expect(namesOf(new X509Certificate(next.tlsCert))).toEqual(expect.arrayContaining(more));
  });

  it('accepts a certificate with more names than wanted (replicas of two releases must not reissue in turn)', () => {
    expect(renewalNeeded(bundle, names.slice(0, 2), T0)).toEqual({ kind: 'none' });
  });

  it('makes everything anew when nothing is stored, or it cannot be read', () => {
    expect(renewalNeeded(undefined, names, T0)).toMatchObject({ kind: 'all' });
    expect(renewalNeeded({ ...bundle, caCert: 'garbage' }, names, T0)).toMatchObject({ kind: 'all' });
    expect(renewalNeeded({ ...bundle, caKey: bundle.tlsKey }, names, T0)).toMatchObject({ kind: 'all', reason: expect.stringMatching(/ca.key/) });
  });

  it('reissues a serving certificate whose key does not match', () => {
    expect(renewalNeeded({ ...bundle, tlsKey: bundle.caKey }, names, T0)).toMatchObject({ kind: 'serving', reason: expect.stringMatching(/tls.key/) });
  });

  it('renews the serving certificate only, keeping the CA, and the result is fresh', async () => {
    const later = T0 + SERVING_LIFETIME_MS - 10 * DAY;
    const next = await renewed(bundle, { kind: 'serving', reason: 'test' }, names, later);
    expect(next.caCert).toBe(bundle.caCert);
    expect(next.tlsCert).not.toBe(bundle.tlsCert);
    expect(renewalNeeded(next, names, later)).toEqual({ kind: 'none' });
  });

  it('rotates the CA before it expires, keeping the old CA in ca.crt for the overlap', async () => {
    const caExpiry = Date.parse(new X509Certificate(bundle.caCert).validTo);
    const late = caExpiry - RENEW_CA_BEFORE_MS + DAY;
    expect(renewalNeeded(bundle, names, late)).toMatchObject({ kind: 'all', reason: expect.stringMatching(/CA expires/) });
    const next = await renewed(bundle, { kind: 'all', reason: 'test' }, names, late);
    const blocks = pemBlocks(next.caCert);
    expect(blocks).toHaveLength(2);
    expect(blocks[1]!.trim()).toBe(pemBlocks(bundle.caCert)[0]!.trim());
    expect(new X509Certificate(next.tlsCert).verify(new X509Certificate(blocks[0]!).publicKey)).toBe(true);
    expect(renewalNeeded(next, names, late)).toEqual({ kind: 'none' });
  });
});

describe('caBundle patch', () => {
  const config = (bundles: (string | undefined)[]) => ({
    metadata: { name: 'breakwater-injector' },
    webhooks: bundles.map((caBundle, i) => ({ name: `w${i}.breakwater.dev`, clientConfig: caBundle === undefined ? { url: 'https://x' } : { caBundle } })),
  });

  it('sets every webhook that lacks the bundle, each guarded by a test of its name', () => {
    expect(caBundlePatch(config([undefined, 'QUJD', 'old']), 'QUJD')).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: 'w0.breakwater.dev' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'QUJD' },
      { op: 'test', path: '/webhooks/2/name', value: 'w2.breakwater.dev' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: 'QUJD' },
    ]);
  });

  it('is empty when every webhook already carries the bundle', () => {
    expect(caBundlePatch(config(['QUJD', 'QUJD']), 'QUJD')).toEqual([]);
  });
});
