// A throwaway certificate authority for the e2e control plane, made with the
// openssl CLI: serving certificates (API server, webhooks), client
// certificates (user = CN, groups = O), and the service-account key pair.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface KeyPair {
  certFile: string;
  keyFile: string;
}

export interface Pki {
  readonly dir: string;
  readonly caFile: string;
  /** The CA certificate, PEM. */
  readonly caPem: string;
  /** A client certificate: Kubernetes user = `user`, groups = `groups`. */
  issueClient(fileBase: string, user: string, groups: readonly string[]): Promise<KeyPair>;
  /** A serving certificate for `hosts` (IP addresses and DNS names). */
  issueServing(fileBase: string, hosts: readonly string[]): Promise<KeyPair>;
  /** An EC key pair for signing and verifying service-account tokens. */
  serviceAccountKeys(): Promise<{ privateKeyFile: string; publicKeyFile: string }>;
}

const DAYS = '7';

async function openssl(args: readonly string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile('openssl', args, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}

function subjectPart(value: string): string {
  if (!/^[A-Za-z0-9:._@ -]+$/.test(value)) {
    throw new Error(`unsupported character in certificate subject part ${JSON.stringify(value)}`);
  }
  return value;
}

function subject(cn: string, orgs: readonly string[] = []): string {
  return `/CN=${subjectPart(cn)}${orgs.map((o) => `/O=${subjectPart(o)}`).join('')}`;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

async function newKey(file: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

/** Creates a CA in `dir` (files ca.crt, ca.key). */
export async function createPki(dir: string): Promise<Pki> {
  // Our own minimal config, so the system's openssl.cnf defaults do not matter.
  const reqConf = join(dir, 'req.cnf');
  await writeFile(
    reqConf,
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const caFile = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  await newKey(caKey);
  await openssl([
    'req', '-x509', '-new', '-key', caKey, '-subj', subject('breakwater-e2e-ca'),
    '-days', DAYS, '-config', reqConf, '-extensions', 'ca', '-set_serial', serial(), '-out', caFile,
  ]);
  const caPem = await readFile(caFile, 'utf8');

  async function issue(fileBase: string, subj: string, extensions: readonly string[]): Promise<KeyPair> {
    const keyFile = join(dir, `${fileBase}.key`);
    const certFile = join(dir, `${fileBase}.crt`);
    const csr = join(dir, `${fileBase}.csr`);
    const ext = join(dir, `${fileBase}.ext`);
    await newKey(keyFile);
    await openssl(['req', '-new', '-key', keyFile, '-subj', subj, '-config', reqConf, '-out', csr]);
    await writeFile(ext, ['[ext]', ...extensions, ''].join('\n'));
    await openssl([
      'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', serial(),
      '-days', DAYS, '-extfile', ext, '-extensions', 'ext', '-out', certFile,
    ]);
    return { certFile, keyFile };
  }

  return {
    dir,
    caFile,
    caPem,
    issueClient: (fileBase, user, groups) =>
      issue(fileBase, subject(user, groups), [
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = clientAuth',
        'authorityKeyIdentifier = keyid',
      ]),
    issueServing: (fileBase, hosts) => {
      if (hosts.length === 0) throw new Error('a serving certificate needs at least one host');
      const sans = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${subjectPart(h)}`)).join(', ');
      return issue(fileBase, subject(hosts[0] ?? 'localhost'), [
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'authorityKeyIdentifier = keyid',
        `subjectAltName = ${sans}`,
      ]);
    },
    serviceAccountKeys: async () => {
      const privateKeyFile = join(dir, 'service-account.key');
      const publicKeyFile = join(dir, 'service-account.pub');
      await newKey(privateKeyFile);
      await openssl(['pkey', '-in', privateKeyFile, '-pubout', '-out', publicKeyFile]);
      return { privateKeyFile, publicKeyFile };
    },
  };
}
