/**
 * Test-cluster PKI, made with the openssl CLI: a CA, the kube-apiserver's serving
 * certificate, an admin client certificate and the service-account signing key pair.
 *
 * Keys are EC P-256 (fast to generate) except the service-account key, which is RSA.
 * Each certificate is made by one `openssl req -x509 -CA ...` call (key, request and
 * signature at once), and the calls that don't depend on each other run in parallel.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/** Absolute paths of the generated PEM files. */
export type ClusterCerts = {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
};

/** The kube-apiserver's first service IP (10.96.0.0/16) and in-cluster names. */
const SERVICE_SANS = [
  'IP:10.96.0.1',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
];

/** Writes the PKI into `dir` (created if missing). */
export async function generateCerts(dir: string, opts: { advertiseAddress: string }): Promise<ClusterCerts> {
  await mkdir(dir, { recursive: true });
  const file = (name: string) => join(dir, name);
  const certs: ClusterCerts = {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    apiserverCert: file('apiserver.crt'),
    apiserverKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    serviceAccountKey: file('sa.key'),
    serviceAccountPub: file('sa.pub'),
  };
  const sans = ['IP:127.0.0.1', 'DNS:localhost', `IP:${opts.advertiseAddress}`, ...SERVICE_SANS];
  // Our own config, so the system openssl.cnf's defaults (e.g. CA:TRUE on every
  // `req -x509` certificate) don't leak into the leaf certificates.
  const config = file('openssl.cnf');
  await writeFile(
    config,
    `[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${sans.join(', ')}
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
`,
  );

  const req = (extensions: string, subject: string, cert: string, key: string, signer: string[]) =>
    execa('openssl', [
      'req', '-x509', '-config', config, '-extensions', extensions, '-subj', subject,
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-keyout', key, '-out', cert,
      '-days', '3650', ...signer,
    ]);
  const signedByCa = ['-CA', certs.caCert, '-CAkey', certs.caKey];

  await Promise.all([
    (async () => {
      await req('ca', '/CN=palisade-ca', certs.caCert, certs.caKey, []);
      await Promise.all([
        req('server', '/CN=kube-apiserver', certs.apiserverCert, certs.apiserverKey, signedByCa),
        req('client', '/O=system:masters/CN=palisade-admin', certs.adminCert, certs.adminKey, signedByCa),
      ]);
    })(),
    (async () => {
      await execa('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', certs.serviceAccountKey]);
      await execa('openssl', ['pkey', '-in', certs.serviceAccountKey, '-pubout', '-out', certs.serviceAccountPub]);
    })(),
  ]);
  return certs;
}
