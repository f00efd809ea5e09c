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
  /** kube-apiserver's front-proxy: its own CA and the client certificate it proxies aggregated APIs with. */
  frontProxyCaCert: string;
  frontProxyCaKey: string;
  proxyClientCert: string;
  proxyClientKey: string;
  /** Palisade's aggregated API server (flows-api), on the advertise address. */
  flowsApiCert: string;
  flowsApiKey: string;
  /** The openssl config the certificates are made with (signCert uses it). */
  config: string;
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
    frontProxyCaCert: file('front-proxy-ca.crt'),
    frontProxyCaKey: file('front-proxy-ca.key'),
    proxyClientCert: file('proxy-client.crt'),
    proxyClientKey: file('proxy-client.key'),
    flowsApiCert: file('flows-api.crt'),
    flowsApiKey: file('flows-api.key'),
    config: file('openssl.cnf'),
  };
  const sans = ['IP:127.0.0.1', 'DNS:localhost', `IP:${opts.advertiseAddress}`, ...SERVICE_SANS];
  // Our own config, so the system openssl.cnf's defaults (e.g. CA:TRUE on every
  // `req -x509` certificate) don't leak into the leaf certificates.
  const config = certs.config;
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
[flows_api]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:${opts.advertiseAddress}, DNS:palisade-flows-api.palisade-system.svc
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
        req('flows_api', '/CN=palisade-flows-api', certs.flowsApiCert, certs.flowsApiKey, signedByCa),
      ]);
    })(),
    (async () => {
      await req('ca', '/CN=front-proxy-ca', certs.frontProxyCaCert, certs.frontProxyCaKey, []);
      await req('client', '/CN=front-proxy-client', certs.proxyClientCert, certs.proxyClientKey, ['-CA', certs.frontProxyCaCert, '-CAkey', certs.frontProxyCaKey]);
    })(),
    (async () => {
      await execa('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', certs.serviceAccountKey]);
      await execa('openssl', ['pkey', '-in', certs.serviceAccountKey, '-pubout', '-out', certs.serviceAccountPub]);
    })(),
  ]);
  return certs;
}

/**
 * A certificate signed by the cluster CA: a server's for `ips` (a node agent's
 * flow API, a real kubelet's API; CN palisade-agent unless named) or a client's
 * for user `user` in `groups` (an RBAC test user, a kubelet, a controller).
 */
export async function signCert(certs: ClusterCerts, out: { cert: string; key: string }, what: { serverIps: string[]; commonName?: string } | { user: string; groups?: string[] }): Promise<void> {
  const ext = 'serverIps' in what
    ? ['-addext', `subjectAltName=${what.serverIps.map((ip) => `IP:${ip}`).join(',')}`, '-addext', 'extendedKeyUsage=serverAuth']
    : ['-addext', 'extendedKeyUsage=clientAuth'];
  const subject = 'serverIps' in what ? `/CN=${what.commonName ?? 'palisade-agent'}` : `${(what.groups ?? []).map((g) => `/O=${g}`).join('')}/CN=${what.user}`;
  await execa('openssl', [
    'req', '-x509', '-config', certs.config, '-subj', subject, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', ...ext,
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-keyout', out.key, '-out', out.cert, '-days', '3650',
    '-CA', certs.caCert, '-CAkey', certs.caKey,
  ]);
}
